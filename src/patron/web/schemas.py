"""What the API accepts and answers: pydantic models, one per request body and response.

Inputs are strict where a guess would store the wrong thing: text must be text (``123`` is
not a name), numbers numbers, booleans booleans, dates ISO text, times ISO text with a time
zone. Every text has the length of its column, and no NUL character (PostgreSQL refuses it),
so bad input is a 422 here and never a database error later. Outputs list the fields the
services guarantee and let further ones through, so the OpenAPI document is useful while the
services may grow.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_ID",
    "Text",
    "NoNul",
    "Gender",
    "Role",
    "Channel",
    "Kind",
    "ConsentChannel",
    "ImportKind",
    "Model",
    "SortKey",
    "MigrationBy",
    "TokenRequest",
    "TokenOut",
    "UserOut",
    "CustomerCreate",
    "CustomerPatch",
    "TouchpointCreate",
    "ScoringRunCreate",
    "ErrorOut",
    "Page",
    "CustomerOut",
    "CustomerListItem",
    "Customer360",
    "TouchpointOut",
    "ImportBatchOut",
    "ImportResultOut",
    "ScoringRunOut",
    "MigrationOut",
    "MergeOut",
]

#: The largest id a BIGINT (and SQLite's INTEGER) holds; larger ones are a 422, not a 500.
MAX_ID = 2**63 - 1

Gender = Literal["female", "male", "other"]
Role = Literal["admin", "manager", "staff", "analyst"]
Channel = Literal["phone", "wechat", "email", "store", "web", "app"]
Kind = Literal["call", "message", "visit", "email", "complaint", "service", "note"]
ConsentChannel = Literal["sms", "phone", "email", "wechat", "app"]
ImportKind = Literal["orders", "customers"]
Model = Literal["auto", "bgnbd", "pnbd", "mbgnbd"]
Language = Literal["en", "zh-CN"]
SortKey = Literal[
    "predicted_clv", "-predicted_clv", "last_purchase", "-last_purchase", "name", "-created_at"
]
MigrationBy = Literal["grade", "lifecycle_stage"]


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise PydanticCustomError("string_pattern_mismatch", "NUL characters are not allowed")
    return value


def _iso_text(kind: str) -> Any:
    # JSON has no date type: a date is ISO text, never a number read as Unix time.
    def check(value: Any) -> Any:
        if isinstance(value, str | dt.date) or value is None:
            return value
        raise PydanticCustomError(f"{kind}_type", f"{kind} must be ISO 8601 text")

    return BeforeValidator(check)


NoNul = AfterValidator(_no_nul)


def Text(max_length: int, *, min_length: int = 0) -> Any:  # noqa: N802 (a type factory)
    """Strict text of at most ``max_length`` characters, without NUL."""
    return Annotated[StrictStr, Field(min_length=min_length, max_length=max_length), NoNul]


IsoDate = Annotated[dt.date, _iso_text("date")]
IsoTime = Annotated[dt.datetime, _iso_text("datetime"), AfterValidator(lambda v: _aware(v))]
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timezone_aware", "a time zone is required")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TokenRequest(_Input):
    """A login: the same fields as the OAuth2 password form."""

    model_config = ConfigDict(extra="ignore")  # OAuth2 clients add grant_type, scope, ...

    username: Text(64, min_length=1)
    password: Annotated[StrictStr, Field(min_length=1, max_length=1024)]


class CustomerCreate(_Input):
    """A new customer; phone and email are normalised and must not belong to another."""

    name: Text(128) = ""
    phone: Text(32) | None = None
    email: Text(255) | None = None
    birthday: IsoDate | None = None
    gender: Gender | None = None
    region: Text(64) | None = None
    channel: Text(32) | None = Field(None, description="acquisition channel")
    language: Language | None = None
    owner_id: Id | None = None
    tags: Annotated[list[Text(64, min_length=1)], Field(max_length=50)] = []
    consents: dict[ConsentChannel, StrictBool] | None = None
    external_ids: dict[Text(64, min_length=1), Text(128, min_length=1)] | None = Field(
        None, description="{source system: the id it gives the customer}", max_length=20
    )


class CustomerPatch(_Input):
    """The fields to change; a field left out stays as it is, ``null`` clears it."""

    name: Text(128) | None = None
    phone: Text(32) | None = None
    email: Text(255) | None = None
    birthday: IsoDate | None = None
    gender: Gender | None = None
    region: Text(64) | None = None
    channel: Text(32) | None = None
    language: Language | None = None
    owner_id: Id | None = None
    tags: Annotated[list[Text(64, min_length=1)], Field(max_length=50)] | None = Field(
        None, description="replaces all tags"
    )
    consents: dict[ConsentChannel, StrictBool] | None = None


class TouchpointCreate(_Input):
    """A contact with the customer; ``occurred_at`` defaults to now."""

    channel: Channel
    kind: Kind
    note: Annotated[StrictStr, Field(max_length=4000), NoNul] = ""
    occurred_at: IsoTime | None = None


class ScoringRunCreate(_Input):
    """Options of a scoring run, as ``patron score`` takes them."""

    as_of: IsoDate | None = None
    model: Model = "auto"
    horizon: Annotated[StrictStr, Field(pattern=r"^[1-9][0-9]{0,3}[DWMY]$")] = "12M"


class ErrorOut(BaseModel):
    """Every error answer."""

    code: str
    message: str
    field: str | None = None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list and the number of matches in all."""

    items: list[T]
    total: int


class _Output(BaseModel):
    model_config = ConfigDict(extra="allow", from_attributes=True)


class TokenOut(BaseModel):
    """A new API token: send it as ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"


class UserOut(_Output):
    """Who the token or session belongs to."""

    id: int
    username: str
    display_name: str = ""
    role: Role
    language: str | None = None
    timezone: str | None = None


class CustomerOut(_Output):
    """A customer's profile (personal fields masked for analysts)."""

    id: int
    name: str | None = ""
    phone: str | None = None
    email: str | None = None
    birthday: dt.date | str | None = None
    gender: str | None = None
    region: str | None = None
    channel: str | None = None
    language: str | None = None
    owner_id: int | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class CustomerListItem(CustomerOut):
    """A search hit: the profile and the latest run's scores (None before any run)."""

    grade: str | None = None
    lifecycle_stage: str | None = None
    churn_risk: str | None = None
    predicted_clv: float | None = None
    p_alive: float | None = None
    last_purchase: dt.date | str | None = None
    next_best_action: str | None = None


class Customer360(_Output):
    """Everything about one customer: profile, orders, contacts, scores and their history."""

    customer: CustomerOut
    external_ids: list[Any] = []
    tags: list[Any] = []
    consents: dict[str, Any] = {}
    orders: list[dict[str, Any]] = []
    orders_total: int = 0
    touchpoints: list[dict[str, Any]] = []
    score: dict[str, Any] | None = None
    score_history: list[dict[str, Any]] = []
    merges: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []


class TouchpointOut(_Output):
    """A recorded contact (times in UTC)."""

    id: int
    customer_id: int
    channel: Channel
    kind: str
    occurred_at: dt.datetime
    note: str = ""
    staff_id: int | None = None
    created_at: dt.datetime | None = None


class ImportBatchOut(_Output):
    """An import: what was read, inserted, updated, left alone and rejected."""

    id: int
    kind: ImportKind
    filename: str
    source: str
    sha256: str
    status: str
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    customers_created: int
    customers_merged: int
    report: dict[str, Any] = {}
    actor_id: int | None = None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None


class ImportResultOut(ImportBatchOut):
    """The batch of an upload; ``already_imported`` when the same file came before."""

    already_imported: bool


class ScoringRunOut(_Output):
    """A scoring run: its status, options, KPIs, model parameters and backtest."""

    id: int
    status: str
    as_of: dt.date | None = None
    model: str | None = None
    customers: int = 0
    kpis: dict[str, Any] = {}
    params: dict[str, Any] = {}
    backtest: dict[str, Any] = {}
    message: str = ""
    actor_id: int | None = None
    started_at: dt.datetime
    finished_at: dt.datetime | None = None


class MigrationOut(_Output):
    """Customers moving between labels from one run to another (rows: from, cols: to)."""

    rows: list[str | None]
    cols: list[str | None]
    counts: list[list[int]]
    value: list[list[float | None]]
    from_run: Any = None
    to_run: Any = None


class MergeOut(_Output):
    """Two customer records found to be one person, by ``rule`` on ``key``."""

    id: int
    survivor_id: int
    merged_id: int
    rule: str
    key: str = ""
    batch_id: int | None = None
    actor_id: int | None = None
    created_at: dt.datetime
