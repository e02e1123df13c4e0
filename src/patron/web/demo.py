"""The demo database: the demo shop's export imported, scored twice, with contacts and a login.

``patron demo`` builds it beside the analyze report and serves it, so a fresh clone shows
every page with realistic data: about 5,000 customers, two scoring runs (mid-2025 and the
end of the export) so the dashboard has a grade migration to show, a few hundred recorded
contacts on the timelines, and an admin whose generated password is printed once.
Everything goes through the same services as the pages and the CLI.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

__all__ = ["DemoDatabase", "build_demo_database", "FIRST_RUN_AS_OF"]

#: The first scoring run looks at the shop half a year before the export ends.
FIRST_RUN_AS_OF = dt.date(2025, 6, 30)
ADMIN = "admin"

_NOTES = (
    ("phone", "call", "询问会员积分怎么使用，已说明积分规则。"),
    ("phone", "call", "回访上次购买的体验，客户表示满意。"),
    ("wechat", "message", "发送新品推荐，客户有兴趣，约下周到店试用。"),
    ("wechat", "message", "生日祝福并赠送优惠券。"),
    ("store", "visit", "到店试用新品，购买意向较强。"),
    ("phone", "complaint", "投诉物流太慢，已补发优惠券并致歉。"),
    ("email", "email", "Sent the spring catalogue and a 10% welcome-back code."),
    ("app", "service", "App 内咨询退货流程，已指导完成退货申请。"),
    ("web", "note", "官网留言咨询发票开具，已转财务处理。"),
    (
        "phone",
        "call",
        "Called about the loyalty programme; the customer asked for a callback in May.",
    ),
)


@dataclass(frozen=True)
class DemoDatabase:
    """What ``patron demo`` prints: where the database is and how to log in."""

    url: str
    username: str
    password: str
    customers: int
    orders: int
    runs: tuple[int, ...]
    touchpoints: int


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def build_demo_database(
    export: str | Path,
    path: str | Path,
    *,
    seed: int = 7,
    touchpoints: int = 400,
    step: Callable[[str], object] | None = None,
) -> DemoDatabase:
    """Build a fresh SQLite demo database at ``path`` from the demo shop ``export``.

    Parameters
    ----------
    export
        The demo shop's order export (:func:`patron.datasets.demo_shop`).
    path
        The SQLite file to (re)create; an existing one is replaced.
    seed
        Seed for the contacts' customers, kinds and times.
    touchpoints
        How many contacts to record on random customers' timelines.
    step
        Called with each step's key (``"migrate"``, ``"import"``, ``"score"``,
        ``"contacts"``) as it starts; a context manager, or None.
    """
    from patron.crm.db import make_engine, session_scope
    from patron.crm.migrate import upgrade
    from patron.crm.services import imports, scoring, users
    from patron.crm.services import touchpoints as contacts
    from patron.crm.tables import Customer, Order

    def stage(key: str):
        import contextlib

        return step(key) if step is not None else contextlib.nullcontext()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove(path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    try:
        with stage("migrate"):
            upgrade(engine)
            with session_scope(engine) as session:
                admin, password = users.create_user(
                    session, username=ADMIN, role="admin", display_name="Demo admin"
                )
                admin_id = admin.id
        with stage("import"), session_scope(engine) as session:
            imports.import_file(session, Path(export), kind="orders", source="demo_shop")
        runs = []
        with stage("score"):
            for as_of in (FIRST_RUN_AS_OF, None):
                with session_scope(engine) as session:
                    runs.append(scoring.run_scoring(session, as_of=as_of).id)
        with stage("contacts"), session_scope(engine) as session:
            actor = users.get_user(session, admin_id)
            recorded = _record_contacts(session, contacts, actor, touchpoints, seed)
        with session_scope(engine) as session:
            n_customers = session.scalar(
                select(func.count()).select_from(Customer).where(Customer.merged_into_id.is_(None))
            )
            n_orders = session.scalar(select(func.count()).select_from(Order))
    finally:
        engine.dispose()
    assert password is not None  # create_user generates one when none is given
    return DemoDatabase(
        url=url,
        username=ADMIN,
        password=password,
        customers=int(n_customers or 0),
        orders=int(n_orders or 0),
        runs=tuple(runs),
        touchpoints=recorded,
    )


def _record_contacts(session, contacts, actor, n: int, seed: int) -> int:
    """Record ``n`` contacts on random customers, each after their first order."""
    from patron.crm.tables import Order

    rows = session.execute(
        select(Order.customer_id, func.min(Order.ordered_at), func.max(Order.ordered_at))
        .group_by(Order.customer_id)
        .order_by(Order.customer_id)
    ).all()
    if not rows:
        return 0
    rng = random.Random(seed)
    chosen = rng.sample(rows, min(n, len(rows)))
    for customer_id, first, last in chosen:
        channel, kind, note = rng.choice(_NOTES)
        span = max((last - first).total_seconds(), 0) + 30 * 86_400
        when = first + dt.timedelta(seconds=rng.uniform(3_600, span))
        when = min(when, dt.datetime.now(dt.UTC))
        contacts.record_touchpoint(
            session,
            customer_id,
            channel=channel,
            kind=kind,
            note=note,
            occurred_at=when,
            actor=actor,
        )
    return len(chosen)
