"""The loyalty pages through a TestClient, on SQLite and PostgreSQL: the 360's points panel
and its forms, the ledger page, the programme's settings, the liability on the dashboard."""

from __future__ import annotations

import re

import pytest
from tests.web.test_pages import csrf_of, login, seed_customers, seed_users, text_of

from patron.crm.db import session_scope
from patron.crm.services import loyalty
from patron.crm.services.audit import list_events


@pytest.fixture
def shop(engine):
    """Users of every role and two customers; Li holds 500 points, gold has benefits."""
    ids = seed_users(engine)
    customers = seed_customers(engine)
    with session_scope(engine) as session:
        loyalty.earn(session, customers["li"], 500, reason="开业礼")
        loyalty.save_tiers(
            session,
            [
                {"code": "regular", "threshold": 0, "benefits": "积分兑换\n会员价"},
                {"code": "gold", "threshold": 5000, "multiplier": "1.5", "benefits": "免运费"},
            ],
            actor=None,
        )
    return {**customers, **{f"user_{k}": v for k, v in ids.items()}}


def form_key(html: str, action: str) -> str:
    found = re.search(
        rf'action="/customers/\d+/points/{action}".*?name="idempotency_key" value="([^"]+)"',
        html,
        re.S,
    )
    assert found, f"no {action} form"
    return found.group(1)


def balance_on(html: str) -> str:
    return re.search(r'data-testid="points-balance">([^<]+)<', html).group(1)


def test_the_360_shows_balance_tier_and_benefits_and_staff_earn_once(client, shop):
    login(client, "staff")
    page = client.get(f"/customers/{shop['li']}")
    assert page.status_code == 200
    assert balance_on(page.text) == "500"
    text = text_of(page.text)
    assert "Regular" in text and "积分兑换" in text and "会员价" in text
    assert "points-adjust-form" not in page.text  # staff do not adjust

    form = {
        "csrf_token": csrf_of(page.text),
        "idempotency_key": form_key(page.text, "earn"),
        "points": "1,200",
        "reason": "门店活动",
    }
    done = client.post(f"/customers/{shop['li']}/points/earn", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/customers/{shop['li']}?saved=points_earn#points"
    resent = client.post(f"/customers/{shop['li']}/points/earn", data=form, follow_redirects=False)
    assert resent.status_code == 303  # the browser's resend: answered, not earned again
    after = client.get(done.headers["location"])
    assert balance_on(after.text) == "1,700" and 'data-testid="points-saved"' in after.text


def test_a_redemption_beyond_the_balance_shows_why_and_keeps_the_form(client, shop):
    login(client, "staff")
    page = client.get(f"/customers/{shop['li']}")
    form = {
        "csrf_token": csrf_of(page.text),
        "idempotency_key": form_key(page.text, "redeem"),
        "points": "800",
        "reason": "券",
    }
    refused = client.post(f"/customers/{shop['li']}/points/redeem", data=form)
    assert refused.status_code == 409
    assert "Cannot redeem 800 points: the balance is 500." in refused.text
    assert 'value="800"' in refused.text
    form.update(idempotency_key=form_key(refused.text, "redeem"), points="abc")
    bad = client.post(f"/customers/{shop['li']}/points/redeem", data=form)
    assert bad.status_code == 422 and "abc" in text_of(bad.text)
    form.update(idempotency_key=form_key(bad.text, "redeem"), points="200")
    spent = client.post(f"/customers/{shop['li']}/points/redeem", data=form, follow_redirects=False)
    assert spent.status_code == 303
    ledger = client.get(f"/customers/{shop['li']}/points")
    assert ledger.status_code == 200
    assert balance_on(ledger.text) == "300"
    assert ledger.text.count('<tr data-kind="') == 2
    lots = re.search(r'data-testid="points-lots".*?</table>', ledger.text, re.S).group(0)
    assert ">300<" in lots


def test_only_managers_adjust_and_analysts_only_read(client, shop, engine):
    login(client, "staff")
    page = client.get(f"/customers/{shop['li']}")
    form = {
        "csrf_token": csrf_of(page.text),
        "idempotency_key": "a1",
        "points": "-5",
        "reason": "x",
    }
    assert client.post(f"/customers/{shop['li']}/points/adjust", data=form).status_code == 403
    client.cookies.clear()
    login(client, "manager")
    page = client.get(f"/customers/{shop['li']}")
    form = {
        "csrf_token": csrf_of(page.text),
        "idempotency_key": form_key(page.text, "adjust"),
        "points": "-500",
        "reason": "重复发放",
    }
    done = client.post(f"/customers/{shop['li']}/points/adjust", data=form, follow_redirects=False)
    assert done.status_code == 303
    with session_scope(engine) as session:
        events, _total = list_events(session, action="loyalty.adjust")
        assert events[0].actor_name == "manager" and events[0].after["balance"] == 0
    client.cookies.clear()
    login(client, "analyst")
    page = client.get(f"/customers/{shop['li']}")
    assert page.status_code == 200 and 'data-testid="customer-points"' in page.text
    assert "points-earn-form" not in page.text and "points-redeem-form" not in page.text


def test_managers_edit_the_programme_and_mistakes_are_shown_on_the_form(client, shop, engine):
    login(client, "staff")
    assert client.get("/loyalty/settings").status_code == 403
    client.cookies.clear()
    login(client, "manager")
    page = client.get("/loyalty/settings")
    assert page.status_code == 200
    assert 'href="/loyalty/settings"' in page.text  # in the navigation
    form = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    form.update(
        {
            "csrf_token": csrf_of(page.text),
            "active": "on",
            "points_per_unit": "2",
            "expiry_months": "24",
            "refund_policy": "allow_negative",
            "tier_basis": "spend",
            "review_months": "3",
            "multipliers": "category:生鲜 = 2",
            "tier_benefits_0": "会员价",
            "tier_benefits_1": "免运费\n专属客服",
            "reward_kind_0": "coupon",
            "reward_name_0": "¥10 券",
            "reward_points_cost_0": "1000",
            "reward_value_0": "10",
            "reward_active_0": "on",
        }
    )
    saved = client.post("/loyalty/settings", data=form, follow_redirects=False)
    assert saved.status_code == 303, text_of(saved.text)[:400]
    with session_scope(engine) as session:
        program = loyalty.get_program(session)
        assert program.points_per_unit == 2 and program.expiry_months == 24
        assert program.refund_policy == "allow_negative" and program.review_months == 3
        assert program.multipliers == {"sku": {}, "category": {"生鲜": 2.0}}
        assert [r.name for r in loyalty.program_rewards(session, program)] == ["¥10 券"]
        tiers = loyalty.program_tiers(session, program)
        assert tiers[1].benefits == "免运费\n专属客服"
    page = client.get("/loyalty/settings?saved=1")
    assert 'data-testid="saved"' in page.text and "¥10 券" in page.text

    form.update(csrf_token=csrf_of(page.text), points_per_unit="-1")
    refused = client.post("/loyalty/settings", data=form)
    assert refused.status_code == 422
    assert (
        'id="s-ppu" name="points_per_unit" inputmode="decimal" value="-1" aria-invalid="true"'
        in (refused.text)
    )
    form.update(points_per_unit="1", tier_threshold_1="0")
    refused = client.post("/loyalty/settings", data=form)
    assert refused.status_code == 422 and "higher than the tier below" in refused.text
    with session_scope(engine) as session:
        assert loyalty.get_program(session).points_per_unit == 2  # nothing of it was saved


def test_the_dashboard_shows_the_points_liability(client, shop, engine):
    with session_scope(engine) as session:
        loyalty.update_program(session, {"point_value": "0.05"}, actor=None)
        loyalty.earn(session, shop["grace"], 300, reason="x")
    login(client, "manager")
    page = client.get("/")
    assert page.status_code == 200
    assert re.search(r'data-testid="liability-points">800<', page.text)
    assert re.search(r'data-testid="liability-value">¥40.00<', page.text)


def test_the_panel_in_chinese(client, shop):
    client.cookies.set("lang", "zh-CN")
    login(client, "staff")
    page = client.get(f"/customers/{shop['li']}")
    text = text_of(page.text)
    assert "会员积分" in text and "积分余额" in text and "普通" in text and "发放积分" in text
