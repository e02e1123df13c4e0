"""The business's own rules, from ``patron.toml``: grade cut-offs, stage thresholds, playbook.

Defaults are what a shop without a config file gets; a ``patron.toml`` overrides any part
of them.  Every key is checked when the file is read, so a typo (``cutofs``) or a bad value
is an :class:`InputError` naming the file and the key, not a silently ignored setting.

Example ``patron.toml``::

    [analyze]
    horizon = "12M"
    discount_rate = 0.10

    [grades]
    names = ["钻石", "黄金", "白银", "普通"]
    cutoffs = [0.05, 0.15, 0.35]

    [grades.weights]
    predicted_clv = 0.5
    total_spend = 0.2
    repeat_rate = 0.1
    recency = 0.1
    satisfaction = 0.1

    [lifecycle]
    mature_purchases = 5

    [[playbook]]
    grade = "gold"
    stage = "at_risk"
    action = "personal_call"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from patron.errors import InputError
from patron.i18n import _

__all__ = ["Settings", "GradeRules", "StageRules", "RiskRules", "Play", "load_settings"]

GRADE_CODES = ("gold", "silver", "regular")


@dataclass(frozen=True)
class GradeRules:
    """Grades from a composite of value and loyalty.

    ``cutoffs`` are cumulative shares from the top: ``[0.10, 0.30]`` makes the top 10% the
    first grade, the next 20% the second and the rest the last.  ``names`` are either the
    built-in codes (shown translated) or the business's own labels, used as given.
    """

    names: tuple[str, ...] = GRADE_CODES
    cutoffs: tuple[float, ...] = (0.10, 0.30)
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "predicted_clv": 0.40,
            "total_spend": 0.20,
            "repeat_rate": 0.15,
            "recency": 0.15,
            "satisfaction": 0.10,
        }
    )


@dataclass(frozen=True)
class StageRules:
    """Lifecycle stage thresholds, in multiples of the customer's own purchase rhythm.

    A customer's rhythm is their mean time between purchases (the population's median for
    one-time buyers); "overdue" is the time since the last purchase divided by it.
    """

    new_within_rhythms: float = 1.0
    mature_purchases: int = 4
    at_risk_overdue: float = 2.0
    churned_overdue: float = 4.0
    at_risk_p_alive: float = 0.5
    churned_p_alive: float = 0.2
    reactivated_gap_rhythms: float = 3.0


@dataclass(frozen=True)
class RiskRules:
    """Churn risk from P(alive): below ``high`` is high risk, below ``medium`` medium."""

    high: float = 0.3
    medium: float = 0.6


@dataclass(frozen=True)
class Play:
    """One playbook rule: the first rule whose grade, stage and risk all match wins.

    ``"*"`` matches anything; grade codes are positions too: ``"top"`` is the first grade
    and ``"bottom"`` the last, so a playbook survives renaming grades.
    """

    action: str
    grade: str = "*"
    stage: str = "*"
    risk: str = "*"
    min_value_share: float = 0.0  # only customers in the top share of historical spend


DEFAULT_PLAYBOOK: tuple[Play, ...] = (
    Play("personal_call", grade="top", stage="at_risk"),
    Play("personal_call", grade="top", risk="high", stage="mature"),
    Play("winback_offer", stage="churned", min_value_share=0.30),
    Play("reactivation_nudge", stage="at_risk"),
    Play("welcome_back", stage="reactivated"),
    Play("welcome_series", stage="new"),
    Play("vip_care", grade="top"),
    Play("upsell_offer", stage="growing"),
    Play("loyalty_reward", stage="mature"),
    Play("no_action", stage="churned"),
    Play("nurture"),
)


@dataclass(frozen=True)
class Settings:
    """Everything ``patron analyze`` lets a business decide."""

    horizon: str = "12M"
    discount_rate: float = 0.10
    model: str = "auto"
    grades: GradeRules = field(default_factory=GradeRules)
    lifecycle: StageRules = field(default_factory=StageRules)
    risk: RiskRules = field(default_factory=RiskRules)
    playbook: tuple[Play, ...] = DEFAULT_PLAYBOOK


def _bad(file: str, key: str, value: object, why: str) -> InputError:
    return InputError(
        _("value.bad_setting", file=file, key=key, value=value, why=why),
        file=file,
        column=key,
        value=value,
    )


def _section(cls: type, table: dict[str, Any], file: str, prefix: str) -> dict[str, Any]:
    known = {f.name: f for f in fields(cls)}
    defaults = cls(action="") if cls is Play else cls()
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise _bad(
                file, f"{prefix}{key}", value, _("value.unknown_key", known=", ".join(known))
            )
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise _bad(file, f"{prefix}{key}", value, _("value.want_list"))
            value = tuple(value)
        elif isinstance(default, dict):
            if not isinstance(value, dict) or not all(k in default for k in value):
                raise _bad(
                    file, f"{prefix}{key}", value, _("value.unknown_key", known=", ".join(default))
                )
            value = {k: float(value.get(k, 0.0)) for k in default}
        elif isinstance(default, bool | int | float) and not isinstance(default, bool):
            if not isinstance(value, int | float) or value < 0:
                raise _bad(file, f"{prefix}{key}", value, _("value.want_number"))
        elif isinstance(default, str) and not isinstance(value, str):
            raise _bad(file, f"{prefix}{key}", value, _("value.want_text"))
        out[key] = value
    return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read ``patron.toml`` (if given) over the defaults, then apply ``overrides``."""
    settings = Settings()
    if path is not None:
        file = str(path)
        try:
            data = tomllib.loads(Path(path).read_text("utf-8"))
        except FileNotFoundError:
            raise InputError(_("value.no_config", file=file), file=file) from None
        except tomllib.TOMLDecodeError as error:
            raise InputError(_("value.bad_toml", file=file, error=error), file=file) from None
        analyze = _section(Settings, data.pop("analyze", {}), file, "analyze.")
        analyze = {k: v for k, v in analyze.items() if k in ("horizon", "discount_rate", "model")}
        grades = _section(GradeRules, data.pop("grades", {}), file, "grades.")
        stages = _section(StageRules, data.pop("lifecycle", {}), file, "lifecycle.")
        risk = _section(RiskRules, data.pop("risk", {}), file, "risk.")
        plays = data.pop("playbook", None)
        # Tables other parts read: follow-up task service levels
        # (patron.crm.services.task_levels) and the feedback analyser (patron.feedback).
        for elsewhere in ("tasks", "feedback"):
            data.pop(elsewhere, None)
        for key, value in data.items():
            known = "analyze, grades, lifecycle, risk, playbook, tasks, feedback"
            raise _bad(file, key, value, _("value.unknown_key", known=known))
        settings = replace(
            settings,
            **analyze,
            grades=replace(settings.grades, **grades),
            lifecycle=replace(settings.lifecycle, **stages),
            risk=replace(settings.risk, **risk),
        )
        if plays is not None:
            rules = []
            for i, play in enumerate(plays):
                values = _section(Play, play, file, f"playbook[{i}].")
                if "action" not in values:
                    raise _bad(file, f"playbook[{i}].action", None, _("value.want_text"))
                rules.append(Play(**values))
            settings = replace(settings, playbook=tuple(rules))
        _check(settings, file)
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    _check(settings, "")
    return settings


def _check(settings: Settings, file: str) -> None:
    g = settings.grades
    cutoffs = list(g.cutoffs)
    if len(g.names) != len(cutoffs) + 1:
        raise _bad(file, "grades.cutoffs", cutoffs, _("value.cutoffs_count", n=len(g.names)))
    if cutoffs != sorted(cutoffs) or not all(0 < c < 1 for c in cutoffs):
        raise _bad(file, "grades.cutoffs", cutoffs, _("value.cutoffs_order"))
    if sum(g.weights.values()) <= 0:
        raise _bad(file, "grades.weights", g.weights, _("value.want_number"))
    if not 0 <= settings.discount_rate < 1:
        raise _bad(file, "analyze.discount_rate", settings.discount_rate, _("value.want_rate"))
    r = settings.risk
    if not 0 <= r.high <= r.medium <= 1:
        raise _bad(file, "risk", (r.high, r.medium), _("value.risk_order"))
