"""Imports, scoring runs, the dashboard, users and the audit log as pages, on both databases;
``patron serve`` and the demo database.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from tests.web.test_pages import csrf_of, login, seed_users, text_of
from typer.testing import CliRunner

import patron
from patron.crm.db import session_scope
from patron.crm.services import imports, scoring
from patron.crm.tables import ImportBatch, Order, ScoreSnapshot, ScoringRun, User
from patron.i18n import _


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A small demo shop export (its damaged rows give the import something to reject)."""
    folder = tmp_path_factory.mktemp("shop")
    return patron.datasets.demo_shop(folder / "悦购订单.csv", customers=150, seed=21)


def upload(client, path, token, **fields):
    with open(path, "rb") as handle:
        return client.post(
            "/imports",
            data={"csrf_token": token, "kind": "orders", **fields},
            files={"file": (path.name, handle, "text/csv")},
            follow_redirects=False,
        )


def test_an_upload_is_imported_once_and_reports_its_rejected_rows(client, engine, export):
    seed_users(engine)
    assert login(client, "manager").status_code == 303
    page = client.get("/imports")
    assert 'data-testid="upload-form"' in page.text
    response = upload(client, export, csrf_of(page.text), source="shop")
    assert response.status_code == 303
    batch_url = response.headers["location"]
    assert re.fullmatch(r"/imports/\d+", batch_url)
    with session_scope(engine) as session:
        batch = session.scalars(select(ImportBatch)).one()
        orders = session.scalar(select(func.count()).select_from(Order))
        assert batch.filename == "悦购订单.csv" and batch.source == "shop"
        assert batch.inserted == orders > 0 and batch.rejected > 0
    report = client.get(batch_url)
    counts = re.search(r'data-testid="batch-counts".*?</section>', report.text, re.S).group(0)
    assert f'<span class="kpi-value">{batch.inserted:,}</span>' in counts
    assert f"/imports/{batch.id}/rejected.csv" in report.text
    assert "悦购订单.csv" in client.get("/imports").text

    # The same file again changes nothing, and says so.
    again = upload(client, export, csrf_of(page.text), source="shop")
    assert again.headers["location"] == f"{batch_url}?again=1"
    assert _("pages.imports.already", lang="en") in client.get(again.headers["location"]).text
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == orders
        assert session.scalar(select(func.count()).select_from(ImportBatch)) == 1

    rejected = client.get(f"/imports/{batch.id}/rejected.csv")
    assert rejected.status_code == 200
    assert rejected.headers["content-type"].startswith("text/csv")
    assert "attachment" in rejected.headers["content-disposition"]
    assert rejected.content.startswith("\ufeff".encode())
    lines = rejected.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == batch.rejected + 1  # a header and one line per rejected row

    # An analyst reads the report, but not the raw rejected rows (unmasked personal data).
    client.cookies.clear()
    assert login(client, "analyst").status_code == 303
    analyst = client.get(batch_url)
    assert analyst.status_code == 200 and "rejected.csv" not in analyst.text
    assert _("pages.imports.rejected_masked", lang="en") in analyst.text
    assert 'data-testid="upload-form"' not in client.get("/imports").text
    assert client.get(f"/imports/{batch.id}/rejected.csv").status_code == 403


def test_an_unreadable_upload_shows_why_and_stores_nothing(client, engine, tmp_path):
    seed_users(engine)
    bad = tmp_path / "colours.csv"
    bad.write_text("name,colour\nx,red\n", encoding="utf-8")
    assert login(client, "manager").status_code == 303
    token = csrf_of(client.get("/imports").text)
    response = upload(client, bad, token)
    assert response.status_code == 422
    assert 'data-testid="import-error"' in response.text and "colour" in response.text
    missing = client.post("/imports", data={"csrf_token": token, "kind": "orders"})
    assert missing.status_code == 422
    assert _("pages.imports.no_file", lang="en") in missing.text
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(ImportBatch)) == 0

    client.cookies.clear()
    assert login(client, "staff").status_code == 303
    token = csrf_of(client.get("/").text)
    assert upload(client, bad, token).status_code == 403


def test_scoring_runs_the_dashboard_and_the_migration_matrix(client, engine, export):
    seed_users(engine)
    with session_scope(engine) as session:
        imports.import_file(session, export, kind="orders")
    with session_scope(engine) as session:
        first = scoring.run_scoring(session, as_of="2025-06-30").id
    assert login(client, "manager").status_code == 303
    empty = client.get("/")
    assert _("pages.dashboard.one_run", lang="en") in empty.text

    page = client.get("/scoring")
    assert 'data-testid="run-form"' in page.text
    response = client.post(
        "/scoring", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    second = int(response.headers["location"].rsplit("/", 1)[1])
    with session_scope(engine) as session:
        run = session.get(ScoringRun, second)
        assert run.status == "done" and run.actor_id is not None and run.customers > 0

    dashboard = client.get("/")
    assert dashboard.status_code == 200
    assert dashboard.text.count('<svg class="chart"') == 2
    assert '<div class="kpi card" data-kpi="customers">' in dashboard.text
    assert f"{run.customers:,}" in text_of(dashboard.text)
    matrix = re.search(r'<table class="matrix".*?</table>', dashboard.text, re.S).group(0)
    counts = [int(n.replace(",", "")) for n in re.findall(r'class="count">([\d,]+)<', matrix)]
    assert sum(counts) == 2 * run.customers  # every cell, then each row's total
    assert "Gold" in matrix and "Regular" in matrix

    detail = client.get(f"/scoring/{second}", params={"compare": str(first), "by": "stage"})
    assert detail.status_code == 200
    stage_matrix = re.search(r'<table class="matrix".*?</table>', detail.text, re.S).group(0)
    assert "Churned" in stage_matrix and "Gold" not in stage_matrix
    assert _("pages.scoring.params", lang="en") in detail.text
    listing = client.get("/scoring")
    assert (
        f'href="/scoring/{first}"' in listing.text and f'href="/scoring/{second}"' in listing.text
    )

    # A scored customer's 360 in Chinese: value card, reason and action translated.
    client.get("/language/zh-CN")
    top = client.get("/customers", params={"sort": "-predicted_clv"})
    first_customer = re.search(r'href="/customers/(\d+)" class="strong"', top.text).group(1)
    card = client.get(f"/customers/{first_customer}")
    assert "预测 CLV" in card.text and "下一步最佳行动" in card.text
    reason = re.search(r'data-testid="grade-reason">([^<]*)<', card.text).group(1)
    assert "预测价值" in reason and "predicted value" not in reason
    with session_scope(engine) as session:
        scored_twice = session.scalars(
            select(ScoreSnapshot.customer_id)
            .where(ScoreSnapshot.predicted_clv.is_not(None))
            .group_by(ScoreSnapshot.customer_id)
            .having(func.count() == 2)
            .order_by(ScoreSnapshot.customer_id)
            .limit(1)
        ).one()
    history = client.get(f"/customers/{scored_twice}")
    chart = re.search(r'data-testid="history-chart">(<svg.*?</svg>)', history.text, re.S)
    assert chart and chart.group(1).count("<circle") == 2  # one point per run

    # Staff read the runs but cannot start one.
    client.cookies.clear()
    assert login(client, "staff").status_code == 303
    staff_page = client.get("/scoring")
    assert 'data-testid="run-form"' not in staff_page.text
    assert client.post("/scoring", data={"csrf_token": csrf_of(staff_page.text)}).status_code == 403
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(ScoringRun)) == 2


def test_admins_create_change_and_disable_users_and_read_the_audit_log(client, engine):
    seed_users(engine)
    assert login(client, "admin").status_code == 303
    page = client.get("/admin/users")
    token = csrf_of(page.text)
    created = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "wang.fang",
            "display_name": "王芳",
            "role": "staff",
        },
    )
    assert created.status_code == 201
    password = re.search(r'data-testid="generated-password">([^<]+)<', created.text).group(1)
    duplicate = client.post(
        "/admin/users", data={"csrf_token": token, "username": "wang.fang", "role": "staff"}
    )
    assert duplicate.status_code == 409 and 'class="field-error"' in duplicate.text
    with session_scope(engine) as session:
        user_id = session.scalars(select(User.id).where(User.username == "wang.fang")).one()

    changed = client.post(
        f"/admin/users/{user_id}",
        data={"csrf_token": token, "role": "analyst"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    with session_scope(engine) as session:
        assert session.get(User, user_id).role == "analyst"

    newcomer = type(client)(client.app)
    assert login(newcomer, "wang.fang", password=password).status_code == 303
    assert "Analyst" in newcomer.get("/").text

    disabled = client.post(
        f"/admin/users/{user_id}", data={"csrf_token": token, "active": "0"}, follow_redirects=False
    )
    assert disabled.status_code == 303
    assert newcomer.get("/", follow_redirects=False).status_code == 303  # the login ended
    assert login(newcomer, "wang.fang", password=password).status_code == 401

    audit = client.get("/admin/audit", params={"action": "user.update"})
    rows = re.search(r'<table class="list responsive audit".*?</table>', audit.text, re.S).group(0)
    assert rows.count("<tr>") == 1 + 2  # the header and the two changes
    assert "analyst" in rows and "user.create" not in rows
    everything = client.get("/admin/audit")
    assert "user.create" in everything.text and "user.login" in everything.text


def test_serve_refuses_an_unmigrated_database_with_exit_2(tmp_path):
    from patron.cli import app

    result = CliRunner().invoke(app, ["serve", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert "patron db upgrade" in result.output


def test_the_demo_database_can_be_logged_into_and_shows_a_migration(tmp_path):
    from fastapi.testclient import TestClient

    from patron.web.app import create_app
    from patron.web.demo import build_demo_database

    export = patron.datasets.demo_shop(tmp_path / "demo_shop.csv", customers=150, seed=7)
    demo = build_demo_database(export, tmp_path / "patron.db", touchpoints=25)
    assert demo.customers > 100 and demo.orders > demo.customers
    assert len(demo.runs) == 2 and demo.touchpoints == 25
    assert len(demo.password) >= 12
    app = create_app(demo.url)
    with TestClient(app) as client:
        assert login(client, demo.username, password=demo.password).status_code == 303
        dashboard = client.get("/")
        assert '<table class="matrix"' in dashboard.text
        assert client.get("/admin/users").status_code == 200
        timeline = client.get("/customers?sort=-predicted_clv")
        assert timeline.status_code == 200
