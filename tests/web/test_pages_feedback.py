"""The feedback pages through a TestClient, on SQLite and PostgreSQL: the public survey page
(the customer's language, answered once, clear pages for bad, expired and used links), the
feedback list with its forms, the survey page with links shown once and the NPS/CSAT
tables, the 360 panel, the dashboard card, and analysts reading masked."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select
from tests.crm.customer_data import make_run
from tests.web.test_pages import csrf_of, login, seed_customers, seed_users, text_of

from patron.crm.db import session_scope
from patron.crm.services import customers as customer_service
from patron.crm.services import feedback
from patron.crm.services.feedback import signing
from patron.crm.tables import FeedbackRecord, SurveyInvitation, SurveyResponse, Task
from patron.crm.tables.base import utcnow
from patron.i18n import _


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch):
    monkeypatch.delenv(signing.SECRET_ENV, raising=False)


def t(key: str, lang: str = "en", **values) -> str:
    return _(f"pages.{key}", lang=lang, **values)


def link(engine, customer_id: int, kind: str = "nps") -> str:
    with session_scope(engine) as session:
        batch = feedback.create_invitations(session, kind=kind, customer_id=customer_id, actor=None)
        return batch.created[0].token


def customer(engine, **values) -> int:
    with session_scope(engine) as session:
        return customer_service.create_customer(session, actor=None, **values).id


# -- the public survey page -------------------------------------------------------------------


def test_the_survey_is_in_the_customer_s_language_and_answered_once(client, engine):
    zh = customer(engine, name="王芳", language="zh-CN")
    token = link(engine, zh)
    page = client.get(f"/s/{token}", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert t("survey.question_nps", "zh-CN") in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in page.headers["x-robots-tag"]
    assert "no-store" in page.headers["cache-control"]
    assert 'name="csrf_token"' not in page.text and "/logout" not in page.text  # no staff chrome
    assert len(re.findall(r'type="radio" id="score-\d+" name="score"', page.text)) == 11
    thanks = client.post(f"/s/{token}", data={"score": "9", "comment": "很好"})
    assert thanks.status_code == 200
    assert t("survey.thanks_title", "zh-CN") in thanks.text
    again = client.get(f"/s/{token}")
    assert again.status_code == 200 and t("survey.answered_text", "zh-CN") in again.text
    twice = client.post(f"/s/{token}", data={"score": "0"})
    assert twice.status_code == 409 and t("survey.answered_title", "zh-CN") in twice.text
    with session_scope(engine) as session:
        [response] = session.scalars(select(SurveyResponse)).all()
        assert (response.score, response.language, response.customer_id) == (9, "zh-CN", zh)


def test_without_a_customer_language_the_browser_s_is_used(client, engine):
    plain = customer(engine, name="Grace")
    token = link(engine, plain, kind="csat")
    en = client.get(f"/s/{token}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in en.text and t("survey.question_csat") in en.text
    assert len(re.findall(r'name="score"', en.text)) == 5
    zh = client.get(f"/s/{token}", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in zh.text and t("survey.question_csat", "zh-CN") in zh.text


def test_bad_tampered_and_expired_links_get_a_clear_page(client, engine):
    someone = customer(engine, name="Grace")
    token = link(engine, someone)
    tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
    for bad in (tampered, "nonsense", "a.b", "x" * 500, "%E4%BD%A0.%00"):
        for method in ("get", "post"):
            response = getattr(client, method)(
                f"/s/{bad}", **({"data": {"score": "5"}} if method == "post" else {})
            )
            assert response.status_code == 404, (bad, method)
            assert t("survey.invalid_title") in response.text
    with session_scope(engine) as session:
        invitation = session.get(
            SurveyInvitation, signing.read_token(signing.signing_key(session), token).invitation_id
        )
        past = utcnow().replace(microsecond=0) - dt.timedelta(hours=1)
        expired = signing.make_token(signing.signing_key(session), invitation.id, past)
        invitation.expires_at, invitation.token_hash = past, signing.token_digest(expired)
    gone = client.get(f"/s/{expired}")
    assert gone.status_code == 410 and t("survey.expired_title") in gone.text
    assert client.post(f"/s/{expired}", data={"score": "10"}).status_code == 410
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_an_answer_without_a_score_shows_the_form_again(client, engine):
    someone = customer(engine, name="Grace")
    token = link(engine, someone)
    for score in ("", "11", "abc", "-1"):
        response = client.post(f"/s/{token}", data={"score": score, "comment": "keep me"})
        assert response.status_code == 422, score
        assert t("survey.error_score") in response.text and "keep me" in response.text
    long = client.post(f"/s/{token}", data={"score": "5", "comment": "x" * 2001})
    assert long.status_code == 422 and t("survey.error_comment") in long.text
    assert client.post(f"/s/{token}", data={"score": "5"}).status_code == 200


def test_a_detractor_answer_opens_a_task_for_the_owner(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, owner_id=ids["staff"])
    token = link(engine, customers["li"])
    assert client.post(f"/s/{token}", data={"score": "3"}).status_code == 200
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task)).all()
        assert task.owner_id == ids["staff"] and task.kind == "detractor"


# -- staff pages ------------------------------------------------------------------------------


def test_staff_record_feedback_on_the_page(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, owner_id=ids["staff"])
    assert login(client, "staff").status_code == 303
    page = client.get(f"/feedback?customer={customers['li']}")
    assert page.status_code == 200 and t("feedback.record") in page.text
    assert f'value="{customers["li"]}"' in page.text  # the form names the customer
    nav = client.get("/customers").text
    assert 'href="/feedback"' in nav and 'href="/surveys"' in nav
    saved = client.post(
        "/feedback",
        data={
            "csrf_token": csrf_of(page.text),
            "customer_id": str(customers["li"]),
            "channel": "store",
            "type": "complaint",
            "text": "包装破了，东西也坏了，非常失望",
            "occurred_at": "2025-03-01T09:30",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    shown = client.get(saved.headers["location"])
    assert t("feedback.saved") in shown.text
    text = text_of(shown.text)
    assert "包装破了" in text and _("feedback.sentiment.negative", lang="en") in text
    assert "2025-03-01 09:30" in text  # the reader's zone (Asia/Shanghai)
    with session_scope(engine) as session:
        record = session.scalars(select(FeedbackRecord)).one()
        assert record.occurred_at == dt.datetime(2025, 3, 1, 1, 30, tzinfo=dt.UTC)
        assert session.scalar(select(func.count()).select_from(Task)) == 1
    refused = client.post(
        "/feedback",
        data={
            "csrf_token": csrf_of(page.text),
            "customer_id": str(customers["li"]),
            "channel": "store",
            "type": "complaint",
            "text": "   ",
        },
    )
    assert refused.status_code == 422
    assert _("feedback_records.text_required", lang="en") in refused.text
    forged = client.post("/feedback", data={"csrf_token": "nope", "customer_id": "1", "text": "x"})
    assert forged.status_code == 403


def test_a_csv_is_imported_on_the_page_with_its_rejected_rows(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, owner_id=ids["staff"])
    login(client, "manager")
    page = client.get("/feedback")
    data = (
        "customer_id,channel,type,text\n"
        f"{customers['grace']},email,praise,Lovely people\n"
        f"{customers['grace']},pigeon,praise,coo\n"
    ).encode()
    response = client.post(
        "/feedback/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("log.csv", data, "text/csv")},
    )
    assert response.status_code == 200
    assert 'data-testid="import-result"' in response.text and "pigeon" in response.text
    assert "Lovely people" in response.text
    bad = client.post(
        "/feedback/import",
        data={"csrf_token": csrf_of(page.text)},
        files={"file": ("bad.csv", b"x,y\n1,2\n", "text/csv")},
    )
    assert bad.status_code == 422 and 'data-testid="import-error"' in bad.text


def test_links_are_shown_once_on_the_survey_page(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, owner_id=ids["staff"])
    login(client, "staff")
    page = client.get("/surveys")
    assert page.status_code == 200 and t("surveys.invite") in page.text
    made = client.post(
        "/surveys",
        data={
            "csrf_token": csrf_of(page.text),
            "kind": "nps",
            "customer_id": str(customers["li"]),
            "days": "14",
        },
    )
    assert made.status_code == 201
    urls = re.findall(r'data-testid="survey-link"[^>]*>([^<]+)<', made.text)
    assert len(urls) == 1 and urls[0].startswith("http://testserver/s/")
    token = urls[0].rsplit("/", 1)[1]
    later = client.get("/surveys")
    assert token not in later.text and t("feedback.status.pending") in later.text
    assert (
        client.post(urls[0].replace("http://testserver", ""), data={"score": "10"}).status_code
        == 200
    )
    answered = client.get("/surveys?status=answered")
    assert 'data-testid="invitation-' in answered.text
    assert '<span class="kpi-value" data-testid="nps">+100</span>' in answered.text
    wrong = client.post(
        "/surveys",
        data={"csrf_token": csrf_of(page.text), "kind": "nps", "grade": "gold"},
    )
    assert wrong.status_code == 422 and _("surveys.no_run", lang="en") in wrong.text
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(SurveyInvitation)) == 1


def test_the_survey_page_shows_nps_and_csat_by_grade_stage_and_month_in_chinese(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, owner_id=ids["staff"])
    with session_scope(engine) as session:
        make_run(
            session,
            {
                customers["li"]: {"grade": "gold", "lifecycle_stage": "at_risk"},
                customers["grace"]: {"grade": "silver", "lifecycle_stage": "mature"},
            },
        )
    for who, kind, score in (("li", "nps", "10"), ("grace", "nps", "2"), ("li", "csat", "5")):
        assert (
            client.post(
                f"/s/{link(engine, customers[who], kind)}", data={"score": score}
            ).status_code
            == 200
        )
    login(client, "analyst")
    client.cookies.set("lang", "zh-CN")
    page = client.get("/surveys")
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert (
        t("surveys.by_grade", "zh-CN") in page.text and t("surveys.by_month", "zh-CN") in page.text
    )
    by_grade = page.text.split('data-testid="by-grade"')[1].split("</table>")[0]
    assert "黄金" in text_of(by_grade) and "+100" in by_grade and "-100" in by_grade
    assert 'data-testid="invite-form"' not in page.text  # analysts read only
    assert "李*" in page.text and "李娜" not in page.text
    refused = client.post("/surveys", data={"csrf_token": csrf_of(page.text), "kind": "nps"})
    assert refused.status_code == 403


def test_the_360_and_the_dashboard_show_satisfaction(client, engine):
    ids = seed_users(engine)
    customers = seed_customers(engine, owner_id=ids["staff"])
    client.post(
        f"/s/{link(engine, customers['li'])}", data={"score": "4", "comment": "请回电 13812345678"}
    )
    with session_scope(engine) as session:
        feedback.record_feedback(
            session, customers["li"], channel="phone", kind="praise", text="店员很热情", actor=None
        )
    login(client, "staff")
    page = client.get(f"/customers/{customers['li']}")
    assert page.status_code == 200 and 'data-testid="customer-feedback"' in page.text
    panel = page.text.split('data-testid="customer-feedback"')[1].split("</section>")[0]
    assert "4</strong>/10" in panel and "店员很热情" in panel and "13812345678" in panel
    assert 'data-testid="invite-customer"' in panel
    made = client.post(
        "/surveys",
        data={
            "csrf_token": csrf_of(page.text),
            "kind": "csat",
            "customer_id": str(customers["li"]),
        },
    )
    assert made.status_code == 201 and 'data-testid="survey-link"' in made.text
    client.cookies.clear()
    login(client, "analyst")
    masked = client.get(f"/customers/{customers['li']}").text
    panel = masked.split('data-testid="customer-feedback"')[1].split("</section>")[0]
    assert "13812345678" not in panel and "138****5678" in panel
    assert 'data-testid="invite-customer"' not in panel
    client.cookies.clear()
    login(client, "manager")
    dashboard = client.get("/")
    assert dashboard.status_code == 200 and 'data-testid="dashboard-nps"' in dashboard.text
    card = dashboard.text.split('data-testid="dashboard-nps"')[1].split("</section>")[0]
    assert "-100" in card  # one answer of 4: a detractor
