"""The public survey page behind a signed link: no login, in the customer's language.

``GET /s/<token>`` shows the question (0-10 for NPS, 1-5 for CSAT) and a comment box;
``POST /s/<token>`` records the answer once. The page is in the language the customer
chose (``Customer.language``), else their browser's. A link that is not ours, expired or
already answered gets a page saying so, with its own status (404, 410, 409/200), never
a 500 and never the staff pages' header. The link itself is the credential, so no
session or CSRF token is involved; the page is not cached and sends no referrer.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request, Response

from patron.crm.services import feedback
from patron.crm.services.errors import Invalid
from patron.crm.services.feedback.answers import SCORES
from patron.web.deps import SessionDep, client_ip, request_language
from patron.web.pages.render import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: Survey pages must not be indexed nor their link leak to other sites.
_HEADERS = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}


def _language(session, request: Request, invitation) -> str:
    chosen = feedback.customer_language(session, invitation) if invitation is not None else None
    if chosen and chosen.lower().startswith("zh"):
        return "zh-CN"
    if chosen and chosen.lower().startswith("en"):
        return "en"
    return request_language(request)


def _closed(request: Request, error: feedback.SurveyLinkError, lang: str) -> Response:
    state = {
        feedback.LinkInvalid: "invalid",
        feedback.LinkExpired: "expired",
        feedback.AlreadyAnswered: "answered",
    }[type(error)]
    return render(
        request,
        "survey/closed.html.j2",
        None,
        lang=lang,
        status_code=error.status,
        headers=_HEADERS,
        state=state,
    )


def _form(request, invitation, lang, *, score=None, comment="", error=None, status_code=200):
    return render(
        request,
        "survey/form.html.j2",
        None,
        lang=lang,
        status_code=status_code,
        headers=_HEADERS,
        kind=invitation.kind,
        scores=list(SCORES[invitation.kind]),
        score=score,
        comment=comment,
        error=error,
        action=request.url.path,
    )


@router.get("/s/{token}", name="survey")
def survey_page(request: Request, token: str, session: SessionDep) -> Response:
    """The survey behind a link, or why it can no longer be answered."""
    try:
        invitation = feedback.open_survey(session, token)
    except feedback.LinkInvalid as error:
        return _closed(request, error, request_language(request))
    except feedback.SurveyLinkError as error:
        invitation = _invitation_of(session, token)
        lang = _language(session, request, invitation)
        if isinstance(error, feedback.AlreadyAnswered):
            error.status = 200  # reopening one's own answered link is no error
        return _closed(request, error, lang)
    return _form(request, invitation, _language(session, request, invitation))


@router.post("/s/{token}", name="survey_answer")
def survey_answer(
    request: Request,
    token: str,
    session: SessionDep,
    score: str = Form(""),
    comment: str = Form(""),
) -> Response:
    """Record the answer, then thank the customer (or say why it cannot be recorded)."""
    invitation = _invitation_of(session, token)
    lang = _language(session, request, invitation)
    try:
        with session.begin_nested():
            feedback.answer_survey(
                session,
                token,
                score=_score(score),
                comment=comment,
                language=lang,
                ip=client_ip(request),
            )
    except feedback.SurveyLinkError as error:
        return _closed(request, error, lang)
    except Invalid as refusal:
        return _form(
            request,
            invitation,
            lang,
            score=score,
            comment=comment[:2000],
            error=refusal,
            status_code=422,
        )
    return render(request, "survey/thanks.html.j2", None, lang=lang, headers=_HEADERS)


def _score(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) <= 2 else None


def _invitation_of(session, token: str):
    """The invitation a genuinely signed link names (for its language), whatever its state."""
    from patron.crm.services.feedback import signing
    from patron.crm.tables import SurveyInvitation

    try:
        claim = signing.read_token(signing.signing_key(session), token)
    except signing.BadToken:
        return None
    return session.get(SurveyInvitation, claim.invitation_id)
