"""The programme: one per business, made with sensible defaults on first use, edited by managers.

Odoo's vocabulary: a *program* holds the earn *rules* (here columns of the programme row:
points per yuan, per order, the minimum amount, product and category multipliers, the
birthday month's multiplier), the *rewards* points buy, and, patron's addition, the
membership *tiers*. Values arrive from a form as text or from code as numbers; each is
checked here and refused with the field it belongs to, so the settings page can mark it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from patron.crm.services.errors import Invalid, NotFound
from patron.crm.services.loyalty import events
from patron.crm.services.loyalty.rules import EarnRules
from patron.crm.services.loyalty.sql import insert_ignore
from patron.crm.tables import (
    REFUND_POLICIES,
    REWARD_KINDS,
    TIER_BASES,
    LoyaltyProgram,
    LoyaltyReward,
    LoyaltyTier,
)
from patron.crm.tables.base import utcnow
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = [
    "PROGRAM_ID",
    "DEFAULTS",
    "DEFAULT_TIERS",
    "PROGRAM_FIELDS",
    "MAX_POINTS",
    "get_program",
    "read_program",
    "program_tiers",
    "program_rewards",
    "earn_rules",
    "update_program",
    "save_tiers",
    "save_reward",
    "get_reward",
    "program_dict",
]

#: One programme per business: its row always has this id.
PROGRAM_ID = 1
#: The most points one operation may move (a typo of three zeros must not become a debt).
MAX_POINTS = 100_000_000

#: (code, threshold, multiplier): 普通/白银/黄金/钻石 by rolling 12-month spend in yuan.
DEFAULT_TIERS = (
    ("regular", Decimal(0), Decimal(1)),
    ("silver", Decimal(2000), Decimal("1.2")),
    ("gold", Decimal(5000), Decimal("1.5")),
    ("diamond", Decimal(20000), Decimal(2)),
)

#: A new programme: a point per yuan, expiring after 12 months, a point worth ¥0.01.
DEFAULTS: dict[str, Any] = {
    "name": "",
    "active": True,
    "points_per_unit": Decimal(1),
    "points_per_order": 0,
    "min_amount": Decimal(0),
    "multipliers": {},
    "birthday_multiplier": Decimal(2),
    "birthday_bonus": 0,
    "expiry_months": 12,
    "point_value": Decimal("0.01"),
    "earn_on_import": False,
    "refund_policy": "claw_back",
    "tier_basis": "spend",
    "tier_grace_days": 30,
    "review_months": 1,
    "timezone": "Asia/Shanghai",
}

#: The programme's editable fields and how each is read.
PROGRAM_FIELDS = (
    "name",
    "active",
    "points_per_unit",
    "points_per_order",
    "min_amount",
    "multipliers",
    "birthday_multiplier",
    "birthday_bonus",
    "expiry_months",
    "point_value",
    "earn_on_import",
    "started_on",
    "refund_policy",
    "tier_basis",
    "tier_grace_days",
    "review_months",
    "timezone",
)


def get_program(session: Session) -> LoyaltyProgram:
    """The business's programme, created with the default rules and tiers on first use.

    Two first uses at once both try to create it; the row's fixed id lets the second
    insert do nothing, so there is never a second programme.
    """
    program = session.get(LoyaltyProgram, PROGRAM_ID)
    if program is not None:
        return program
    now = utcnow()
    session.execute(
        insert_ignore(session, LoyaltyProgram, ["id"]).values(
            id=PROGRAM_ID, **DEFAULTS, created_at=now, updated_at=now
        )
    )
    for rank, (code, threshold, multiplier) in enumerate(DEFAULT_TIERS):
        session.execute(
            insert_ignore(session, LoyaltyTier, ["program_id", "rank"]).values(
                program_id=PROGRAM_ID,
                code=code,
                name="",
                rank=rank,
                threshold=threshold,
                multiplier=multiplier,
                benefits="",
            )
        )
    return session.get(LoyaltyProgram, PROGRAM_ID)  # type: ignore[return-value]


def read_program(session: Session) -> tuple[LoyaltyProgram, list[LoyaltyTier]]:
    """The programme and its tiers for reading: the defaults, unsaved, before first use.

    Pages that only show points must not write (a read on SQLite does not take the
    write lock), so they never create the programme.
    """
    program = session.get(LoyaltyProgram, PROGRAM_ID)
    if program is not None:
        return program, program_tiers(session, program)
    program = LoyaltyProgram(id=PROGRAM_ID, **DEFAULTS)
    tiers = [
        LoyaltyTier(
            program_id=PROGRAM_ID,
            code=code,
            name="",
            rank=rank,
            threshold=threshold,
            multiplier=multiplier,
            benefits="",
        )
        for rank, (code, threshold, multiplier) in enumerate(DEFAULT_TIERS)
    ]
    return program, tiers


def program_tiers(session: Session, program: LoyaltyProgram) -> list[LoyaltyTier]:
    """The programme's tiers, lowest first."""
    query = select(LoyaltyTier).where(LoyaltyTier.program_id == program.id)
    return list(session.scalars(query.order_by(LoyaltyTier.rank)))


def program_rewards(
    session: Session, program: LoyaltyProgram, *, active_only: bool = False
) -> list[LoyaltyReward]:
    """The programme's rewards, cheapest first."""
    query = select(LoyaltyReward).where(LoyaltyReward.program_id == program.id)
    if active_only:
        query = query.where(LoyaltyReward.active.is_(True))
    return list(session.scalars(query.order_by(LoyaltyReward.points_cost, LoyaltyReward.id)))


def get_reward(session: Session, reward_id: int) -> LoyaltyReward:
    """The reward ``reward_id``; :class:`NotFound` when there is none."""
    reward = session.get(LoyaltyReward, reward_id) if 0 < reward_id < 2**63 else None
    if reward is None:
        raise NotFound(_("loyalty.reward_not_found", id=reward_id), field="reward_id")
    return reward


def earn_rules(program: LoyaltyProgram) -> EarnRules:
    """The programme's earn rules as plain values for :func:`rules.order_points`."""
    return EarnRules(
        points_per_unit=Decimal(program.points_per_unit),
        points_per_order=int(program.points_per_order),
        min_amount=Decimal(program.min_amount),
        birthday_multiplier=Decimal(program.birthday_multiplier),
        multipliers=program.multipliers or {},
    )


def program_dict(program: LoyaltyProgram) -> dict[str, Any]:
    """The programme's editable fields (for the audit trail and the settings page)."""
    return {name: getattr(program, name) for name in PROGRAM_FIELDS}


def update_program(
    session: Session, changes: Mapping[str, Any], *, actor: User | None
) -> LoyaltyProgram:
    """Change the programme's fields given in ``changes``; audited with before and after.

    Raises
    ------
    Invalid
        For an unknown field or a value that cannot be used, naming the field.
    """
    program = get_program(session)
    values = {}
    for name, raw in changes.items():
        if name not in PROGRAM_FIELDS:
            raise Invalid(_("loyalty.unknown_field", field=name), field=name)
        values[name] = _READERS[name](raw, name)
    before = {k: getattr(program, k) for k in values if getattr(program, k) != values[k]}
    if not before:
        return program
    for name in before:
        setattr(program, name, values[name])
    program.updated_by_id = actor.id if actor is not None else None
    session.flush()
    events.program_updated(
        session, program, before=before, after={k: values[k] for k in before}, actor=actor
    )
    return program


def save_tiers(
    session: Session, tiers: Sequence[Mapping[str, Any]], *, actor: User | None
) -> list[LoyaltyTier]:
    """Replace the tiers by ``tiers`` (lowest first): code, name, threshold, multiplier, benefits.

    A tier keeps its row (and its members) while its rank stays; thresholds must rise
    with the rank and the lowest must be 0, so every member has a tier.

    Raises
    ------
    Invalid
        With ``field`` ``tiers.<rank>.<name>``.
    """
    program = get_program(session)
    if not 1 <= len(tiers) <= 8:
        raise Invalid(_("loyalty.tiers_count"), field="tiers")
    rows = []
    for rank, tier in enumerate(tiers):
        where = f"tiers.{rank}"
        code = _text(tier.get("code"), f"{where}.code", 32, required=True)
        threshold = _decimal(tier.get("threshold", 0), f"{where}.threshold", minimum=Decimal(0))
        if rank == 0 and threshold != 0:
            raise Invalid(_("loyalty.lowest_tier_threshold"), field=f"{where}.threshold")
        if rows and threshold <= rows[-1]["threshold"]:
            raise Invalid(_("loyalty.tier_thresholds_rise"), field=f"{where}.threshold")
        if any(r["code"] == code for r in rows):
            raise Invalid(_("loyalty.tier_code_taken", code=code), field=f"{where}.code")
        rows.append(
            {
                "code": code,
                "name": _text(tier.get("name", ""), f"{where}.name", 64),
                "rank": rank,
                "threshold": threshold,
                "multiplier": _decimal(
                    tier.get("multiplier", 1), f"{where}.multiplier", minimum=Decimal(1)
                ),
                "benefits": _text(tier.get("benefits", ""), f"{where}.benefits", 2000),
            }
        )
    existing = {tier.rank: tier for tier in program_tiers(session, program)}
    before = [_tier_dict(t) for t in existing.values()]
    # Codes are unique per programme: clear the old ones first, so tiers can swap codes.
    for tier in existing.values():
        tier.code = f"~{tier.id}"
    session.flush()
    for rank in sorted(set(existing) - {r["rank"] for r in rows}, reverse=True):
        session.delete(existing.pop(rank))
    session.flush()
    for row in rows:
        tier = existing.get(row["rank"])
        if tier is None:
            tier = LoyaltyTier(program_id=program.id, rank=row["rank"])
            session.add(tier)
        for name, value in row.items():
            setattr(tier, name, value)
    session.flush()
    saved = program_tiers(session, program)
    after = [_tier_dict(t) for t in saved]
    if after != before:
        events.program_updated(
            session, program, before={"tiers": before}, after={"tiers": after}, actor=actor
        )
    return saved


def save_reward(
    session: Session,
    *,
    reward_id: int | None = None,
    name: Any,
    kind: Any = "coupon",
    points_cost: Any,
    value: Any = 0,
    active: Any = True,
    actor: User | None,
) -> LoyaltyReward:
    """Create a reward, or change one.

    Rewards are deactivated, never deleted: the ledger's redemptions point at them.
    """
    program = get_program(session)
    values = {
        "name": _text(name, "name", 128, required=True),
        "kind": _choice(kind, "kind", REWARD_KINDS),
        "points_cost": _integer(points_cost, "points_cost", minimum=1, maximum=MAX_POINTS),
        "value": _decimal(value, "value", minimum=Decimal(0)),
        "active": _boolean(active, "active"),
    }
    if reward_id is None:
        reward = LoyaltyReward(program_id=program.id, **values)
        session.add(reward)
        session.flush()
        events.program_updated(
            session,
            program,
            before=None,
            after={"reward": {"id": reward.id, **values}},
            actor=actor,
        )
        return reward
    reward = get_reward(session, reward_id)
    before = {k: getattr(reward, k) for k, v in values.items() if getattr(reward, k) != v}
    if before:
        for key in before:
            setattr(reward, key, values[key])
        session.flush()
        events.program_updated(
            session,
            program,
            before={"reward": {"id": reward.id, **before}},
            after={"reward": {"id": reward.id, **{k: values[k] for k in before}}},
            actor=actor,
        )
    return reward


def _tier_dict(tier: LoyaltyTier) -> dict[str, Any]:
    return {
        "rank": tier.rank,
        "code": tier.code,
        "name": tier.name,
        "threshold": Decimal(tier.threshold),
        "multiplier": Decimal(tier.multiplier),
        "benefits": tier.benefits,
    }


# -- reading values ----------------------------------------------------------------------


def _bad(field: str, value: Any) -> Invalid:
    return Invalid(_("loyalty.bad_value", field=field, value=str(value)[:80]), field=field)


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or "\x00" in value:
        raise _bad(field, value)
    value = value.strip()
    if required and not value:
        raise Invalid(_("loyalty.required", field=field), field=field)
    if len(value) > limit:
        raise Invalid(_("loyalty.too_long", field=field, limit=limit), field=field)
    return value


def _decimal(value: Any, field: str, *, minimum: Decimal | None = None) -> Decimal:
    if isinstance(value, bool):
        raise _bad(field, value)
    try:
        number = Decimal(str(value).strip().replace(",", "")) if value != "" else None
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite() or abs(number) >= Decimal(10) ** 12:
        raise _bad(field, value)
    if minimum is not None and number < minimum:
        raise Invalid(_("loyalty.at_least", field=field, minimum=minimum), field=field)
    return number


def _integer(value: Any, field: str, *, minimum: int = 0, maximum: int = MAX_POINTS) -> int:
    if isinstance(value, bool):
        raise _bad(field, value)
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit():
            raise _bad(field, value)
        value = int(text)
    if not isinstance(value, int):
        raise _bad(field, value)
    if not minimum <= value <= maximum:
        raise Invalid(
            _("loyalty.between", field=field, minimum=minimum, maximum=maximum), field=field
        )
    return value


def _boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "on", "yes", ""):
        return value.strip() != ""
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "off", "no"):
        return False
    raise _bad(field, value)


def _choice(value: Any, field: str, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise Invalid(
            _("loyalty.choice", field=field, choices=", ".join(map(str, choices))), field=field
        )
    return value


def _optional_months(value: Any, field: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _integer(value, field, minimum=1, maximum=120)


def _optional_day(value: Any, field: str) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        raise _bad(field, value)
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise _bad(field, value) from None


def _zone(value: Any, field: str) -> str:
    name = _text(value, field, 64, required=True)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _bad(field, value) from None
    return name


def _multipliers(value: Any, field: str) -> dict[str, dict[str, float]]:
    """``{"sku": {...}, "category": {...}}``, or the settings form's text.

    The text holds one ``sku:A1 = 3`` or ``category:生鲜 = 2`` per line.
    """
    if isinstance(value, str):
        parsed: dict[str, dict[str, Any]] = {"sku": {}, "category": {}}
        for number, line in enumerate(value.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            target, sep, factor = line.rpartition("=")
            kind, colon, name = target.strip().partition(":")
            if not sep or not colon or kind.strip() not in parsed or not name.strip():
                raise Invalid(_("loyalty.bad_multiplier_line", line=number, text=line), field=field)
            parsed[kind.strip()][name.strip()] = factor.strip()
        value = parsed
    if not isinstance(value, Mapping) or set(value) - {"sku", "category"}:
        raise _bad(field, value)
    out: dict[str, dict[str, float]] = {"sku": {}, "category": {}}
    for kind, table in value.items():
        if not isinstance(table, Mapping):
            raise _bad(field, value)
        for name, factor in table.items():
            number = _decimal(factor, field, minimum=Decimal(0))
            if number > 100:
                raise Invalid(_("loyalty.multiplier_too_big", name=name), field=field)
            out[kind][_text(name, field, 64, required=True)] = float(number)
    return out


_READERS = {
    "name": lambda v, f: _text(v, f, 128),
    "active": _boolean,
    "points_per_unit": lambda v, f: _decimal(v, f, minimum=Decimal(0)),
    "points_per_order": lambda v, f: _integer(v, f, minimum=0, maximum=1_000_000),
    "min_amount": lambda v, f: _decimal(v, f, minimum=Decimal(0)),
    "multipliers": _multipliers,
    "birthday_multiplier": lambda v, f: _decimal(v, f, minimum=Decimal(1)),
    "birthday_bonus": lambda v, f: _integer(v, f, minimum=0, maximum=1_000_000),
    "expiry_months": _optional_months,
    "point_value": lambda v, f: _decimal(v, f, minimum=Decimal(0)),
    "earn_on_import": _boolean,
    "started_on": _optional_day,
    "refund_policy": lambda v, f: _choice(v, f, REFUND_POLICIES),
    "tier_basis": lambda v, f: _choice(v, f, TIER_BASES),
    "tier_grace_days": lambda v, f: _integer(v, f, minimum=0, maximum=3650),
    "review_months": lambda v, f: _choice(_integer(v, f, minimum=1, maximum=12), f, (1, 3, 6, 12)),
    "timezone": _zone,
}
