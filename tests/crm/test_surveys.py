"""Survey links on SQLite and PostgreSQL: signed, expiring, single use, only a digest kept.

Also: the answer lands on the customer (a merged one's survivor), a detractor opens a
follow-up task, and two answers of one link at the same moment make one response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from tests.crm.customer_data import make_run, make_user

from patron.crm.db import session_factory, session_scope
from patron.crm.services import customers as customer_service
from patron.crm.services import feedback
from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.feedback import signing
from patron.crm.services.identity import merge_customers
from patron.crm.tables import (
    AuditEvent,
    SurveyInvitation,
    SurveyKey,
    SurveyResponse,
    Task,
    User,
)
from patron.crm.tables.base import utcnow


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch):
    monkeypatch.delenv(signing.SECRET_ENV, raising=False)


def new_customer(session, name="王芳", **values):
    return customer_service.create_customer(session, actor=None, name=name, **values)


def invite(session, customer_id, kind="nps", **options):
    batch = feedback.create_invitations(
        session, kind=kind, customer_id=customer_id, actor=None, **options
    )
    assert len(batch.created) == 1
    return batch.created[0]


# -- the token itself -------------------------------------------------------------------------

KEY = b"k" * 32
LATER = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_a_token_says_which_invitation_and_until_when():
    token = signing.make_token(KEY, 42, LATER)
    claim = signing.read_token(KEY, token)
    assert claim.invitation_id == 42 and claim.expires_at == LATER
    assert signing.make_token(KEY, 42, LATER) != token  # random part: never the same link


@pytest.mark.parametrize("position", [0, 5, 20, 43, 50, -1])
def test_any_altered_character_breaks_the_signature(position):
    token = signing.make_token(KEY, 42, LATER)
    chars = list(token)
    if chars[position] == ".":
        position += 1
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(signing.BadToken):
        signing.read_token(KEY, "".join(chars))


@pytest.mark.parametrize(
    "bad",
    ["", "abc", "abc.def", ".", "x" * 300, "ä.ö", "a=.b=", "AAAA.AAAA", None, 12],
)
def test_malformed_tokens_are_refused_not_crashed_on(bad):
    with pytest.raises(signing.BadToken):
        signing.read_token(KEY, bad)


def test_a_token_of_another_key_or_no_key_is_refused():
    token = signing.make_token(KEY, 42, LATER)
    with pytest.raises(signing.BadToken):
        signing.read_token(b"other key" * 4, token)
    with pytest.raises(signing.BadToken):
        signing.read_token(None, token)


def test_the_expiry_cannot_be_extended_by_editing_the_payload():
    import base64
    import struct

    token = signing.make_token(KEY, 42, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    payload_text, signature = token.split(".")
    payload = base64.urlsafe_b64decode(payload_text + "=" * (-len(payload_text) % 4))
    invitation, _expiry, nonce = struct.unpack(">QQ16s", payload)
    forged = struct.pack(">QQ16s", invitation, int(LATER.timestamp()), nonce)
    text_ = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    with pytest.raises(signing.BadToken):
        signing.read_token(KEY, f"{text_}.{signature}")


# -- invitations and answers on the database --------------------------------------------------


def test_an_invitation_stores_only_the_digest_of_its_link(session):
    customer = new_customer(session)
    new = invite(session, customer.id)
    session.commit()
    stored = session.get(SurveyInvitation, new.invitation.id)
    assert stored.token_hash == hashlib.sha256(new.token.encode()).hexdigest()
    assert stored.expires_at - stored.created_at == dt.timedelta(days=30)
    # The token appears in no column of the invitation.
    row = session.execute(
        text("SELECT * FROM survey_invitations WHERE id = :id"), {"id": stored.id}
    ).one()
    assert all(new.token not in str(value) for value in row)
    listed = feedback.get_invitation(session, stored.id)
    assert listed["status"] == "pending" and "token" not in listed and "url" not in listed
    assert session.scalar(select(func.count()).select_from(AuditEvent)) >= 1


def test_a_link_is_answered_once_and_lands_on_the_customer(session):
    customer = new_customer(session, language="zh-CN")
    new = invite(session, customer.id, kind="csat")
    session.commit()
    opened = feedback.open_survey(session, new.token)
    assert opened.id == new.invitation.id and opened.kind == "csat"
    assert feedback.customer_language(session, opened) == "zh-CN"
    response = feedback.answer_survey(
        session, new.token, score=4, comment="送货很快，包装也很好", language="zh-CN"
    )
    session.commit()
    assert response.customer_id == customer.id and response.score == 4
    assert response.sentiment == "positive" and "delivery" in response.topics
    assert session.get(SurveyInvitation, new.invitation.id).answered_at is not None
    with pytest.raises(feedback.AlreadyAnswered):
        feedback.answer_survey(session, new.token, score=5, language="zh-CN")
    session.rollback()
    with pytest.raises(feedback.AlreadyAnswered):
        feedback.open_survey(session, new.token)
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
    assert feedback.get_invitation(session, new.invitation.id)["response"]["score"] == 4
    answers = session.scalars(select(AuditEvent).where(AuditEvent.action == "survey.answer"))
    assert [a.after["score"] for a in answers] == [4]


def test_a_tampered_link_is_invalid_and_a_forged_one_without_the_nonce_too(session):
    customer = new_customer(session)
    new = invite(session, customer.id)
    other = invite(session, customer.id)
    session.commit()
    tampered = new.token[:-2] + ("AA" if not new.token.endswith("AA") else "BB")
    with pytest.raises(feedback.LinkInvalid):
        feedback.open_survey(session, tampered)
    # Even someone holding the signing key cannot answer without the link's random part.
    key = signing.signing_key(session)
    forged = signing.make_token(key, new.invitation.id, new.invitation.expires_at)
    with pytest.raises(feedback.LinkInvalid):
        feedback.open_survey(session, forged)
    # A genuine link names its own invitation only: another's id does not match its digest.
    assert feedback.open_survey(session, other.token).id == other.invitation.id
    with pytest.raises(feedback.LinkInvalid):
        feedback.answer_survey(session, "garbage", score=9)
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_an_expired_link_is_refused_and_an_answered_one_says_answered(session):
    customer = new_customer(session)
    new = invite(session, customer.id)
    key = signing.signing_key(session)
    past = utcnow().replace(microsecond=0) - dt.timedelta(minutes=1)
    expired_token = signing.make_token(key, new.invitation.id, past)
    new.invitation.expires_at = past
    new.invitation.token_hash = signing.token_digest(expired_token)
    session.commit()
    with pytest.raises(feedback.LinkExpired) as refused:
        feedback.answer_survey(session, expired_token, score=10)
    assert refused.value.status == 410
    assert feedback.get_invitation(session, new.invitation.id)["status"] == "expired"
    fresh = invite(session, customer.id)
    feedback.answer_survey(session, fresh.token, score=10)
    session.commit()
    with pytest.raises(feedback.AlreadyAnswered):
        feedback.open_survey(session, fresh.token)


def test_scores_outside_the_scale_are_refused_and_the_link_stays_usable(session):
    customer = new_customer(session)
    nps = invite(session, customer.id, kind="nps")
    csat = invite(session, customer.id, kind="csat")
    session.commit()
    for token, score in ((nps.token, 11), (nps.token, -1), (csat.token, 0), (csat.token, 6)):
        with pytest.raises(Invalid) as refused:
            with session.begin_nested():
                feedback.answer_survey(session, token, score=score)
        assert refused.value.field == "score"
    with pytest.raises(Invalid):
        feedback.answer_survey(session, nps.token, score=True)
    with pytest.raises(Invalid) as refused:
        feedback.answer_survey(session, nps.token, score=5, comment="x" * 2001)
    assert refused.value.field == "comment"
    session.rollback()
    assert feedback.answer_survey(session, nps.token, score=10).score == 10
    assert feedback.answer_survey(session, csat.token, score=1).score == 1


def test_the_database_refuses_a_second_response_and_a_score_off_the_scale(session):
    customer = new_customer(session)
    new = invite(session, customer.id)
    feedback.answer_survey(session, new.token, score=8)
    session.commit()
    row = {"customer_id": customer.id, "kind": "nps", "language": "en", "topics": []}
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(SurveyResponse(invitation_id=new.invitation.id, score=9, **row))
    other = invite(session, customer.id)
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(SurveyResponse(invitation_id=other.invitation.id, score=11, **row))


def test_the_generated_key_is_stored_once_and_an_env_key_wins(session, monkeypatch):
    assert signing.signing_key(session) is None  # checking a link never creates a key
    customer = new_customer(session)
    first = invite(session, customer.id)
    invite(session, customer.id)
    session.commit()
    assert session.scalar(select(func.count()).select_from(SurveyKey)) == 1
    monkeypatch.setenv(signing.SECRET_ENV, "a secret shared by every server of the shop")
    # Links made under the generated key do not verify under another one.
    with pytest.raises(feedback.LinkInvalid):
        feedback.open_survey(session, first.token)
    env_link = invite(session, customer.id)
    assert feedback.open_survey(session, env_link.token).id == env_link.invitation.id
    monkeypatch.setenv(signing.SECRET_ENV, "another secret")
    with pytest.raises(feedback.LinkInvalid):
        feedback.open_survey(session, env_link.token)


def test_the_answer_of_a_merged_customer_lands_on_the_survivor(session):
    survivor = new_customer(session, "李雷", phone="13800000001")
    merged = new_customer(session, "李雷", phone="13800000002")
    new = invite(session, merged.id)
    merge_customers(session, survivor.id, merged.id, rule="manual")
    session.commit()
    response = feedback.answer_survey(session, new.token, score=9)
    assert response.customer_id == survivor.id


# -- invitations for a segment ----------------------------------------------------------------


def test_a_segment_is_invited_from_the_latest_run_and_pending_customers_are_skipped(session):
    ids = [new_customer(session, f"客户{i}").id for i in range(5)]
    with pytest.raises(Invalid) as refused:
        feedback.create_invitations(session, kind="nps", grade="gold", actor=None)
    assert refused.value.message == feedback.invitations._("surveys.no_run")
    make_run(session, {i: {"grade": "silver"} for i in ids}, as_of=dt.date(2024, 1, 1))
    make_run(
        session,
        {
            ids[0]: {"grade": "gold", "lifecycle_stage": "at_risk"},
            ids[1]: {"grade": "gold", "lifecycle_stage": "mature"},
            ids[2]: {"grade": "gold", "lifecycle_stage": "at_risk"},
            ids[3]: {"grade": "silver", "lifecycle_stage": "at_risk"},
        },
    )
    batch = feedback.create_invitations(
        session, kind="nps", grade="gold", stage="at_risk", actor=None
    )
    assert sorted(n.invitation.customer_id for n in batch.created) == [ids[0], ids[2]]
    again = feedback.create_invitations(session, kind="nps", grade="gold", actor=None)
    assert [n.invitation.customer_id for n in again.created] == [ids[1]] and again.skipped == 2
    csat = feedback.create_invitations(session, kind="csat", stage="at_risk", actor=None)
    assert len(csat.created) == 3 and csat.skipped == 0  # another survey: not pending
    with pytest.raises(Invalid):
        feedback.create_invitations(session, kind="nps", grade="diamond", actor=None)
    for wrong in (
        {"kind": "ces", "customer_id": ids[0]},
        {"kind": "nps"},
        {"kind": "nps", "customer_id": ids[0], "grade": "gold"},
        {"kind": "nps", "customer_id": ids[0], "expires_in_days": 0},
        {"kind": "nps", "customer_id": ids[0], "expires_in_days": 366},
    ):
        with pytest.raises(Invalid):
            feedback.create_invitations(session, actor=None, **wrong)
    with pytest.raises(NotFound):
        feedback.create_invitations(session, kind="nps", customer_id=10**9, actor=None)


def test_invitations_are_listed_by_status_kind_and_customer(session):
    a, b = new_customer(session, "甲").id, new_customer(session, "乙").id
    answered = invite(session, a)
    invite(session, a, kind="csat")
    invite(session, b)
    feedback.answer_survey(session, answered.token, score=3)
    session.commit()
    assert feedback.list_invitations(session)[1] == 3
    assert [i["id"] for i in feedback.list_invitations(session, status="answered")[0]] == [
        answered.invitation.id
    ]
    assert feedback.list_invitations(session, status="pending")[1] == 2
    assert feedback.list_invitations(session, status="expired")[1] == 0
    assert feedback.list_invitations(session, kind="csat")[1] == 1
    assert feedback.list_invitations(session, customer_id=b)[1] == 1
    with pytest.raises(Invalid):
        feedback.list_invitations(session, status="lost")
    with pytest.raises(NotFound):
        feedback.get_invitation(session, 10**9)
    responses, total = feedback.list_responses(session, detractors=True)
    assert total == 1 and responses[0]["score"] == 3 and responses[0]["customer_name"] == "甲"


# -- detractors open follow-up tasks ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "score", "opens"),
    [("nps", 0, True), ("nps", 6, True), ("nps", 7, False), ("nps", 10, False)]
    + [("csat", 1, True), ("csat", 2, True), ("csat", 3, False), ("csat", 5, False)],
)
def test_a_detractor_opens_a_task_for_the_customer_s_owner(session, kind, score, opens):
    owner = make_user(session, "owner", "staff")
    customer = new_customer(session, owner_id=owner.id)
    new = invite(session, customer.id, kind=kind)
    response = feedback.answer_survey(session, new.token, score=score, comment="太慢了")
    session.commit()
    tasks = session.scalars(select(Task)).all()
    if not opens:
        assert tasks == []
        return
    [task] = tasks
    assert task.kind == "detractor" and task.customer_id == customer.id
    assert task.owner_id == owner.id and task.status == "open"
    assert (task.source_type, task.source_id) == ("survey_response", str(response.id))
    assert task.detail.startswith(f"{kind.upper()} {score}/") and "太慢了" in task.detail


# -- two answers at the same moment -------------------------------------------------------------


def test_two_concurrent_answers_of_one_link_make_one_response(engine):
    with session_scope(engine) as session:
        owner = make_user(session, "owner", "staff")
        customer = new_customer(session, owner_id=owner.id)
        links = [invite(session, customer.id).token for _ in range(3)]
    for token in links:
        outcomes = _race(engine, token, clients=4)
        assert sorted(outcomes) == ["already", "already", "already", "ok"], outcomes
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 3
        assert session.scalar(select(func.count()).select_from(Task)) == 3
        assert (
            session.scalar(
                select(func.count())
                .select_from(SurveyInvitation)
                .where(SurveyInvitation.answered_at.is_(None))
            )
            == 0
        )
        assert session.get(User, owner.id) is not None


def _race(engine, token: str, clients: int) -> list[str]:
    """Answer ``token`` from ``clients`` threads that each checked the link first."""
    barrier = threading.Barrier(clients)
    outcomes: list[str] = []
    lock = threading.Lock()

    def client(score: int) -> None:
        try:
            with session_factory(engine)() as session:
                # Every client sees an open link (as each browser showed the form) ...
                with session.begin():
                    session.connection(execution_options={"sqlite_begin": "DEFERRED"})
                    feedback.open_survey(session, token)
                barrier.wait(timeout=60)
                # ... then all of them answer at once.
                with session.begin():
                    feedback.answer_survey(session, token, score=score)
            outcome = "ok"
        except feedback.AlreadyAnswered:
            outcome = "already"
        except Exception as error:  # noqa: BLE001 (reported by the assertion)
            outcome = repr(error)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
