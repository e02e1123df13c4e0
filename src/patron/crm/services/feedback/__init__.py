"""The feedback loop: surveys (NPS, CSAT) by signed links, feedback records, their metrics.

- :mod:`.invitations` makes single-use survey links for a customer or a segment;
  :mod:`.answers` checks a link and records the answer (public, no login);
  :mod:`.signing` signs and verifies the links.
- :mod:`.records` stores feedback staff write down, :mod:`.importing` reads it from a CSV;
  both analyse the text on save (:mod:`.text`).
- :mod:`.metrics` computes NPS and CSAT overall, per grade, stage and month;
  :mod:`.satisfaction` gives each customer one satisfaction figure (for the grades) and
  the 360's view of their feedback.
- :mod:`.followup` opens a follow-up task for a detractor or a negative complaint.

Services take a session and never commit.
"""

from patron.crm.services.feedback.answers import (
    AlreadyAnswered,
    LinkExpired,
    LinkInvalid,
    SurveyLinkError,
    answer_survey,
    customer_language,
    open_survey,
)
from patron.crm.services.feedback.importing import ImportResult, import_feedback
from patron.crm.services.feedback.invitations import (
    InvitationBatch,
    NewInvitation,
    create_invitations,
    get_invitation,
    latest_run_id,
    list_invitations,
)
from patron.crm.services.feedback.metrics import csat_summary, nps_summary, survey_metrics
from patron.crm.services.feedback.records import (
    get_feedback,
    list_feedback,
    record_feedback,
    record_view,
)
from patron.crm.services.feedback.responses import list_responses
from patron.crm.services.feedback.satisfaction import customer_feedback, satisfaction_by_customer

__all__ = [
    "AlreadyAnswered",
    "ImportResult",
    "InvitationBatch",
    "LinkExpired",
    "LinkInvalid",
    "NewInvitation",
    "SurveyLinkError",
    "answer_survey",
    "create_invitations",
    "csat_summary",
    "customer_feedback",
    "customer_language",
    "get_feedback",
    "get_invitation",
    "import_feedback",
    "latest_run_id",
    "list_feedback",
    "list_invitations",
    "list_responses",
    "nps_summary",
    "open_survey",
    "record_feedback",
    "record_view",
    "satisfaction_by_customer",
    "survey_metrics",
]
