"""Turning a template and its values into a page, in the reader's language and time zone.

One Jinja2 environment with autoescaping on for every template: customer names, notes and
import file names are other people's words and must never become markup.  The only
markup that enters unescaped is the SVG the chart helpers build, which escape every text
themselves (:class:`patron.report.charts.Svg`).

Pages never use ``patron.i18n.get_language()``: two readers in two languages are served
by one process at the same time, so every text is looked up with the request's language.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from patron.i18n import LANGUAGES, _, catalogue

if TYPE_CHECKING:
    from patron.crm.tables import User

__all__ = [
    "Viewer",
    "Formats",
    "render",
    "label",
    "grade_reason",
    "DEFAULT_TIMEZONE",
    "SECURITY_HEADERS",
]

DEFAULT_TIMEZONE = "Asia/Shanghai"
MISSING = "—"

#: Everything a page needs comes from this server: no CDN, no inline script, no frames.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: Catalogue sections of coded values: the scoring codes reuse the analyze labels.
_LABEL_SECTIONS = {
    "grade": "value.grade",
    "stage": "value.stage",
    "risk": "value.risk",
    "segment": "value.segment",
    "action": "value.action",
    "channel": "pages.channel",
    "kind": "pages.kind",
    "role": "pages.role",
    "order_status": "pages.order_status",
    "import_kind": "pages.import_kind",
    "run_status": "pages.run_status",
    "gender": "pages.gender",
    "consent": "pages.consent",
    "reject": "reason",
}


def label(kind: str, code: str | None, lang: str) -> str:
    """A coded value (a grade, a stage, a channel) in ``lang``; unknown codes as written.

    Grades and actions may be the business's own words from ``patron.toml``, which have no
    translation and are shown as they are.

    >>> label("stage", "at_risk", "en"), label("grade", "钻石", "en"), label("risk", None, "en")
    ('At risk', '钻石', '—')
    """
    if code is None or code == "":
        return MISSING
    key = f"{_LABEL_SECTIONS[kind]}.{code}"
    text = catalogue(lang).get(key) or catalogue("en").get(key)
    return text if text is not None else str(code)


@cache
def _reason_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Every language's wording of each grade reason, as a pattern giving its values."""
    patterns = []
    for lang in LANGUAGES:
        for key, text in catalogue(lang).items():
            if not key.startswith("value.reason."):
                continue
            pattern = re.escape(text)
            for name in re.findall(r"\\\{(\w+)\\\}", pattern):
                pattern = pattern.replace(rf"\{{{name}\}}", rf"(?P<{name}>.+?)", 1)
            patterns.append((re.compile(f"^{pattern}$"), key))
    # Exact wordings first: "购买 1 次" is "bought once", not "bought 1 times".
    return tuple(sorted(patterns, key=lambda p: p[0].groups))


def grade_reason(text: str | None, lang: str) -> str:
    """A stored grade reason (written in the language of the scoring run) in ``lang``.

    The reason is stored as text, one "; "-separated part per catalogue message; each
    part the catalogue recognises is written again in the reader's language, anything
    else is kept as it is.

    >>> grade_reason("top 5% predicted value; bought 3 times", "zh-CN")
    '预测价值前 5%；购买 3 次'
    >>> grade_reason("预测价值后 40%; 购买 1 次", "en")
    'bottom 40% predicted value; bought once'
    """
    if not text:
        return MISSING
    parts = []
    for part in re.split(r"\s*[;；]\s*", text.strip()):
        for pattern, key in _reason_patterns():
            found = pattern.match(part)
            if found:
                part = _(key, lang=lang, **found.groupdict())
                break
        parts.append(part)
    return ("；" if lang == "zh-CN" else "; ").join(p for p in parts if p)


def _finite(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, Decimal):
        return value.is_finite()
    return math.isfinite(float(value))


@dataclass(frozen=True)
class Formats:
    """Numbers, money and times as a reader in ``lang`` and ``timezone`` expects them."""

    lang: str = "en"
    timezone: str = DEFAULT_TIMEZONE

    @property
    def zone(self) -> ZoneInfo:
        """The reader's zone (Asia/Shanghai for a name this machine does not know)."""
        return _zone(self.timezone)

    def money(self, value: Any) -> str:
        """Yuan with two decimals and grouped thousands.

        >>> Formats().money(Decimal("1234.5")), Formats().money(-12), Formats().money(None)
        ('¥1,234.50', '-¥12.00', '—')
        """
        if not _finite(value):
            return MISSING
        value = Decimal(str(value)).quantize(Decimal("0.01"))
        sign = "-" if value < 0 else ""
        return f"{sign}¥{abs(value):,.2f}"

    def number(self, value: Any, decimals: int = 0) -> str:
        """A count or measure with grouped thousands.

        >>> Formats().number(12345), Formats().number(0.5, 2), Formats().number(float("nan"))
        ('12,345', '0.50', '—')
        """
        if not _finite(value):
            return MISSING
        return f"{float(value):,.{decimals}f}"

    def percent(self, value: Any, decimals: int = 1) -> str:
        """A share 0..1 as a percentage.

        >>> Formats().percent(0.1234)
        '12.3%'
        """
        if not _finite(value):
            return MISSING
        return f"{float(value) * 100:.{decimals}f}%"

    def when(self, value: dt.datetime | None, seconds: bool = False) -> str:
        """A stored UTC time in the reader's zone (Asia/Shanghai unless they chose another).

        >>> Formats().when(dt.datetime(2025, 3, 5, 6, 30, tzinfo=dt.UTC))
        '2025-03-05 14:30'
        """
        if value is None:
            return MISSING
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(self.zone).strftime(
            "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        )

    def iso_local(self, value: dt.datetime | None) -> str:
        """The value for an ``<input type="datetime-local">`` in the reader's zone."""
        if value is None:
            return ""
        return value.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")

    def day(self, value: dt.date | dt.datetime | str | None) -> str:
        """A calendar date (a datetime is first put in the reader's zone)."""
        if value is None or value == "":
            return MISSING
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(self.zone)
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value)[:10]


@cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


@dataclass(frozen=True)
class Person:
    """What a page shows of its reader, copied out of the session.

    An error page is drawn after the request's transaction was rolled back, when the
    ``User`` row can no longer be read; these plain values still can.
    """

    id: int
    username: str
    display_name: str
    role: str
    active: bool
    timezone: str

    @classmethod
    def of(cls, user: User) -> Person:
        """The copy of ``user``."""
        return cls(
            user.id,
            user.username,
            user.display_name or "",
            user.role,
            bool(user.active),
            user.timezone or DEFAULT_TIMEZONE,
        )


@dataclass
class Viewer:
    """The logged-in reader of a page: who, in which language and zone, and their form token.

    ``user`` is the session's row, to hand to services as the actor; templates read
    ``me``, a copy that stays readable after a rollback.
    """

    user: User
    lang: str
    csrf_token: str = ""
    me: Person = field(init=False)
    formats: Formats = field(init=False)

    def __post_init__(self) -> None:
        self.me = Person.of(self.user)
        self.formats = Formats(self.lang, self.me.timezone)

    @property
    def masked(self) -> bool:
        """Whether personal data is masked for this reader (analysts)."""
        from patron.crm.services import permissions

        return permissions.masks_personal_data(self.me)  # type: ignore[arg-type]

    def can(self, permission: str) -> bool:
        """Whether the reader's role allows ``permission`` (to show a button or a link)."""
        from patron.crm.services import permissions

        return permissions.can(self.me, permission)  # type: ignore[arg-type]


@cache
def environment() -> Environment:
    """The pages' Jinja2 environment (autoescaped, strict about undefined names)."""
    folder = resources.files("patron.web").joinpath("templates")
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["query"] = _query
    return env


def _query(params: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2`` from ``params`` with ``changes`` applied; empty values are left out."""
    merged = {**params, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else "?"


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    lang: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page ``template`` for ``viewer`` (``None`` on the login page, then ``lang``)."""
    lang = viewer.lang if viewer is not None else (lang or "en")
    formats = viewer.formats if viewer is not None else Formats(lang)

    def t(key: str, **values: Any) -> str:
        return _(f"pages.{key}", lang=lang, **values)

    def lbl(kind: str, code: str | None) -> str:
        return label(kind, code, lang)

    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            v=viewer,
            lang=lang,
            t=t,
            label=lbl,
            reason=lambda text: grade_reason(text, lang),
            f=formats,
            path=request.url.path,
            current=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        )
    )
    return HTMLResponse(
        html, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
    )


def svg(markup: str) -> Markup:
    """Chart markup from :mod:`patron.report.charts`, which escapes its own text."""
    return Markup(markup)
