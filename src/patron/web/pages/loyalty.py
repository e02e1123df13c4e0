"""Loyalty pages: the 360's points panel, the ledger, the settings, the liability.

The points panel of the 360 carries the forms to earn, redeem and adjust; a customer's
full ledger has its own page; managers edit the programme's settings; the dashboard shows
the points liability.

Each points form carries an idempotency key made when the form was drawn, so a double
click or a browser's resend after a timeout earns or redeems once
(:mod:`patron.web.idempotency`); a refusal redraws the ledger page with the message.
"""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from patron.crm.services import customers, loyalty, views
from patron.crm.services.errors import Forbidden, Invalid
from patron.crm.tables import REFUND_POLICIES, REWARD_KINDS, TIER_BASES
from patron.i18n import _
from patron.web.deps import SessionDep, csrf_protect
from patron.web.idempotency import run_once
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, viewer

__all__ = ["router", "points_panel", "liability_panel", "tier_name", "HISTORY_PAGE"]

router = APIRouter(route_class=PageRoute)

HISTORY_PAGE = 50
ACTIONS = {"earn": "points.write", "redeem": "points.write", "adjust": "points.adjust"}


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form as text fields (files are not expected here)."""
    form = await request.form()
    return {key: value for key, value in form.multi_items() if isinstance(value, str)}


FormFields = Annotated[dict[str, str], Depends(form_fields)]


def tier_name(tier: dict[str, Any] | None, lang: str) -> str:
    """A tier's own name, else its code's translation (普通/白银/黄金/钻石), else the code."""
    if not tier:
        return "—"
    if tier.get("name"):
        return tier["name"]
    from patron.i18n import catalogue

    key = f"loyalty.tier.{tier['code']}"
    return catalogue(lang).get(key) or catalogue("en").get(key) or tier["code"]


def points_panel(session: Session, v: Viewer, customer_id: int) -> dict[str, Any]:
    """The 360's points panel: the summary, and a fresh key for each form."""
    summary = loyalty.account_summary(session, customer_id)
    return {
        **summary,
        "tier_label": tier_name(summary["tier"], v.lang),
        "next_tier_label": tier_name(summary["next_tier"], v.lang),
        "form_keys": {action: uuid.uuid4().hex for action in ACTIONS},
    }


def liability_panel(session: Session, v: Viewer) -> dict[str, Any] | None:
    """The dashboard's points liability, for readers of customers."""
    if not v.can("customers.read"):
        return None
    return loyalty.liability(session)


def _points_page(
    request: Request,
    session: Session,
    v: Viewer,
    customer_id: int,
    *,
    page: int = 1,
    action: str = "",
    form: dict[str, str] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    status_code: int = 200,
) -> Response:
    found = customers.get_customer(session, customer_id)
    customer = views.customer_view({"id": found.id, "name": found.name}, mask=v.masked)
    panel = points_panel(session, v, customer["id"])
    view = loyalty.points_view(
        session,
        customer["id"],
        history_limit=HISTORY_PAGE,
        history_offset=(page - 1) * HISTORY_PAGE,
    )
    return render(
        request,
        "loyalty/points.html.j2",
        v,
        status_code=status_code,
        customer=customer,
        points=panel,
        history=view["history"],
        page=page,
        pages=max(math.ceil(view["history_total"] / HISTORY_PAGE), 1),
        action=action,
        form=form or {},
        error=error,
        error_field=error_field,
    )


@router.get("/customers/{customer_id}/points", name="customer_points")
def customer_points(
    request: Request,
    customer_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("customers.read"))],
    page: str = "1",
) -> Response:
    """A customer's points: balance, tier and benefits, open lots, the whole ledger."""
    try:
        number = max(int(page), 1)
    except ValueError:
        number = 1
    return _points_page(request, session, v, customer_id, page=number)


@router.post(
    "/customers/{customer_id}/points/{action}",
    name="points_action",
    dependencies=[Depends(csrf_protect)],
)
def points_action(
    request: Request,
    customer_id: int,
    action: str,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("customers.read"))],
    fields: FormFields,
) -> Response:
    """Earn, redeem or adjust from the 360's forms; back to the 360 when done."""
    if action not in ACTIONS:
        raise Invalid(_("pages.points.unknown_action", lang=v.lang), field="action")
    if not v.can(ACTIONS[action]):
        raise Forbidden(
            _("api.forbidden", lang=v.lang, role=v.me.role, permission=ACTIONS[action]),
            code="forbidden",
        )
    form = {name: fields.get(name, "").strip() for name in ("points", "reason", "reward_id")}
    try:
        payload = _payload(action, form, v.lang)
    except Invalid as refusal:
        return _points_page(
            request,
            session,
            v,
            customer_id,
            action=action,
            form=form,
            error=refusal.message,
            error_field=refusal.field,
            status_code=422,
        )

    def write() -> tuple[int, dict[str, Any]]:
        if action == "earn":
            entry = loyalty.earn(
                session, customer_id, payload["points"], reason=payload["reason"], actor=v.user
            )
        elif action == "redeem":
            entry = loyalty.redeem(
                session,
                customer_id,
                payload["points"],
                reason=payload["reason"],
                reward_id=payload["reward_id"],
                actor=v.user,
            )
        else:
            entry = loyalty.adjust(
                session, customer_id, payload["points"], reason=payload["reason"], actor=v.user
            )
        return 201, {"balance": entry.balance_after, "entry_id": entry.id}

    key = fields.get("idempotency_key", "")
    outcome = run_once(request, session, v.user, key_or_missing(key), payload, write)
    if outcome.status_code == 201:
        return redirect(f"/customers/{customer_id}?saved=points_{action}#points")
    return _points_page(
        request,
        session,
        v,
        customer_id,
        action=action,
        form=form,
        error=outcome.body.get("message"),
        error_field=outcome.body.get("field"),
        status_code=outcome.status_code,
    )


def key_or_missing(key: str) -> str:
    """The form's idempotency key (400 when a form came without one)."""
    from patron.crm.services import idempotency

    return idempotency.parse_key(key or None)


def _payload(action: str, form: dict[str, str], lang: str) -> dict[str, Any]:
    """The form's values as the service takes them (the request's fingerprint too)."""
    reward_id = None
    if action == "redeem" and form["reward_id"]:
        reward_id = _whole(form["reward_id"], "reward_id", lang)
    points: int | None
    if action == "redeem" and reward_id is not None and not form["points"]:
        points = None
    else:
        points = _whole(form["points"], "points", lang)
    return {"points": points, "reason": form["reason"], "reward_id": reward_id}


def _whole(text: str, field: str, lang: str) -> int:
    cleaned = text.replace(",", "").replace("，", "").strip()
    sign = cleaned.startswith("-")
    digits = cleaned[1:] if sign else cleaned
    if not digits.isdigit() or len(digits) > 12:
        raise Invalid(_("loyalty.points_not_integer", lang=lang, value=text or "—"), field=field)
    return -int(digits) if sign else int(digits)


# -- the programme's settings ---------------------------------------------------------------

TIER_ROWS_EXTRA = 1
FIELDS_TEXT = (
    "name",
    "points_per_unit",
    "points_per_order",
    "min_amount",
    "birthday_multiplier",
    "birthday_bonus",
    "expiry_months",
    "point_value",
    "started_on",
    "refund_policy",
    "tier_basis",
    "tier_grace_days",
    "review_months",
    "timezone",
)
FIELDS_CHECKBOX = ("active", "earn_on_import")


def _multipliers_text(multipliers: dict[str, dict[str, Any]]) -> str:
    lines = []
    for kind in ("sku", "category"):
        for name, factor in sorted((multipliers or {}).get(kind, {}).items()):
            lines.append(
                f"{kind}:{name} = {factor:g}"
                if isinstance(factor, float)
                else f"{kind}:{name} = {factor}"
            )
    return "\n".join(lines)


def _settings_form(session: Session) -> dict[str, Any]:
    program = loyalty.get_program(session)
    values = loyalty.program_dict(program)
    form = {name: "" if values[name] is None else str(values[name]) for name in FIELDS_TEXT}
    form.update({name: bool(values[name]) for name in FIELDS_CHECKBOX})
    form["multipliers"] = _multipliers_text(values["multipliers"])
    tiers = [
        {
            "code": t.code,
            "name": t.name,
            "threshold": str(t.threshold),
            "multiplier": str(t.multiplier),
            "benefits": t.benefits,
        }
        for t in loyalty.program_tiers(session, program)
    ]
    rewards = [
        {
            "id": str(r.id),
            "name": r.name,
            "kind": r.kind,
            "points_cost": str(r.points_cost),
            "value": str(r.value),
            "active": r.active,
        }
        for r in loyalty.program_rewards(session, program)
    ]
    return {"program": form, "tiers": tiers, "rewards": rewards}


def _settings_page(
    request: Request,
    v: Viewer,
    form: dict[str, Any],
    *,
    error: str | None = None,
    error_field: str | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    tiers = (
        list(form["tiers"])
        + [{"code": "", "name": "", "threshold": "", "multiplier": "1", "benefits": ""}]
        * TIER_ROWS_EXTRA
    )
    rewards = list(form["rewards"]) + [
        {"id": "", "name": "", "kind": "coupon", "points_cost": "", "value": "", "active": True}
    ]
    return render(
        request,
        "loyalty/settings.html.j2",
        v,
        status_code=status_code,
        program=form["program"],
        tiers=tiers,
        rewards=rewards,
        policies=REFUND_POLICIES,
        bases=TIER_BASES,
        reward_kinds=REWARD_KINDS,
        review_choices=(1, 3, 6, 12),
        error=error,
        error_field=error_field,
        saved=saved,
        tier_label=lambda code: tier_name({"code": code, "name": ""}, v.lang),
    )


@router.get("/loyalty/settings", name="loyalty_settings")
def settings_page(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("loyalty.manage"))],
    saved: str = "",
) -> Response:
    """The programme: earn rules, expiry, refunds, tier review, tiers and rewards."""
    return _settings_page(request, v, _settings_form(session), saved=bool(saved))


@router.post(
    "/loyalty/settings", name="save_loyalty_settings", dependencies=[Depends(csrf_protect)]
)
def save_settings(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("loyalty.manage"))],
    fields: FormFields,
) -> Response:
    """Save the whole form in one transaction: all of it, or (on a refusal) none of it."""
    program = {name: fields.get(name, "") for name in FIELDS_TEXT}
    program.update({name: fields.get(name, "") for name in FIELDS_CHECKBOX})
    program["multipliers"] = fields.get("multipliers", "")
    tiers = []
    for index in range(16):
        row = {
            name: fields.get(f"tier_{name}_{index}", "").strip()
            for name in ("code", "name", "threshold", "multiplier", "benefits")
        }
        if row["code"]:
            tiers.append(row)
    rewards = []
    for index in range(200):
        if f"reward_name_{index}" not in fields:
            continue
        rewards.append(
            {
                "id": fields.get(f"reward_id_{index}", "").strip(),
                "name": fields.get(f"reward_name_{index}", "").strip(),
                "kind": fields.get(f"reward_kind_{index}", "coupon"),
                "points_cost": fields.get(f"reward_points_cost_{index}", "").strip(),
                "value": fields.get(f"reward_value_{index}", "").strip() or "0",
                "active": bool(fields.get(f"reward_active_{index}")),
            }
        )
    form = {
        "program": {**program, **{k: bool(program[k]) for k in FIELDS_CHECKBOX}},
        "tiers": tiers,
        "rewards": rewards,
    }
    try:
        with session.begin_nested():
            loyalty.update_program(session, program, actor=v.user)
            loyalty.save_tiers(session, tiers, actor=v.user)
            for index, reward in enumerate(rewards):
                if not reward["id"] and not reward["name"]:
                    continue
                try:
                    loyalty.save_reward(
                        session,
                        reward_id=int(reward["id"]) if reward["id"].isdigit() else None,
                        name=reward["name"],
                        kind=reward["kind"],
                        points_cost=reward["points_cost"],
                        value=reward["value"],
                        active=reward["active"],
                        actor=v.user,
                    )
                except Invalid as refusal:
                    raise Invalid(
                        refusal.message, field=f"rewards.{index}.{refusal.field}"
                    ) from None
    except Invalid as refusal:
        return _settings_page(
            request, v, form, error=refusal.message, error_field=refusal.field, status_code=422
        )
    return redirect("/loyalty/settings?saved=1")
