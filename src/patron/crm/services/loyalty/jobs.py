"""The daily job's steps: expiry, the birthday bonus, the tier review, in batches.

``patron jobs run`` calls each step batch after batch, one transaction per batch (a
million members are not locked at once), and records the step for its period in
``loyalty_job_runs`` once it has finished, so a second run of the day -- or of the month,
for the birthday bonus and the review -- skips it. A run that stopped half-way is simply
run again: every step is idempotent for each account on its own (a lot expires once, by
its key; a bonus is given once a year, by its key; an account is reviewed once a period,
by its marker), so redoing a batch changes nothing.

Each batch locks its accounts in primary-key order, as every multi-account lock must.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import extract, select

from patron.crm.services.loyalty import ledger, tiers
from patron.crm.services.loyalty.accounts import ensure_accounts, lock_accounts
from patron.crm.services.loyalty.program import get_program, program_tiers
from patron.crm.services.loyalty.rules import period_key
from patron.crm.services.loyalty.sql import insert_ignore
from patron.crm.tables import Customer, LoyaltyAccount, LoyaltyEntry, LoyaltyJobRun, LoyaltyLot
from patron.crm.tables.base import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import LoyaltyProgram

__all__ = [
    "JOBS",
    "Batch",
    "job_period",
    "start_job",
    "finish_job",
    "expire_batch",
    "birthday_batch",
    "review_batch",
    "enroll_qualified",
]

#: The steps of the daily run, in order.
JOBS = ("expire", "birthday", "tier_review")
BATCH = 500


@dataclass
class Batch:
    """What one batch did; ``last_id`` is where the next begins (None: the step is done)."""

    last_id: int | None
    counts: dict[str, int] = field(default_factory=dict)


def local_day(program: LoyaltyProgram, now: dt.datetime) -> dt.date:
    """``now``'s date in the programme's time zone."""
    return now.astimezone(ZoneInfo(program.timezone)).date()


def job_period(program: LoyaltyProgram, job: str, now: dt.datetime) -> str:
    """The period a step runs once in (``2026-11-30``, ``2026-11``, ``2026-Q4``...).

    A day for expiry, a month for birthdays, the review period for the tier review.
    """
    day = local_day(program, now)
    if job == "expire":
        return day.isoformat()
    if job == "birthday":
        return period_key(day, 1)
    if job == "tier_review":
        return period_key(day, program.review_months)
    raise ValueError(f"unknown job {job!r}")


def start_job(session: Session, job: str, period: str) -> LoyaltyJobRun | None:
    """The run of ``job`` for ``period``, begun or resumed; None when it already finished.

    Two runs started at once both go on (each step is idempotent account by account);
    the period's row is made once.
    """
    session.execute(
        insert_ignore(session, LoyaltyJobRun, ["job", "period"]).values(
            job=job, period=period, started_at=utcnow(), counts={}
        )
    )
    run = session.scalars(
        select(LoyaltyJobRun).where(LoyaltyJobRun.job == job, LoyaltyJobRun.period == period)
    ).one()
    return None if run.finished_at is not None else run


def finish_job(session: Session, job: str, period: str, counts: dict[str, Any]) -> None:
    """Mark the run of ``job`` for ``period`` finished, with what it did."""
    run = session.scalars(
        select(LoyaltyJobRun).where(LoyaltyJobRun.job == job, LoyaltyJobRun.period == period)
    ).one()
    run.counts = dict(counts)
    run.finished_at = utcnow()
    session.flush()


def expire_batch(
    session: Session, *, now: dt.datetime, after_id: int = 0, limit: int = BATCH
) -> Batch:
    """Expire the due lots of the next ``limit`` accounts that have any."""
    ids = list(
        session.scalars(
            select(LoyaltyLot.account_id)
            .where(
                LoyaltyLot.remaining > 0,
                LoyaltyLot.expires_at <= now,
                LoyaltyLot.account_id > after_id,
            )
            .group_by(LoyaltyLot.account_id)
            .order_by(LoyaltyLot.account_id)
            .limit(limit)
        )
    )
    counts = {"accounts": 0, "lots": 0, "points": 0}
    for account in lock_accounts(session, ids):
        entries, _open = ledger.expire_due(
            session, account, ledger.open_lots(session, account), now
        )
        counts["accounts"] += bool(entries)
        counts["lots"] += len(entries)
        counts["points"] -= sum(e.points for e in entries)
    return Batch(ids[-1] if len(ids) == limit else None, counts)


def birthday_batch(
    session: Session, *, now: dt.datetime, after_id: int = 0, limit: int = BATCH
) -> Batch:
    """Give the birthday bonus to the next ``limit`` members born in this month.

    Once a year per member (the entry's key is ``birthday:<account>:<year>``), in the
    birthday month of the programme's time zone.
    """
    program = get_program(session)
    counts = {"accounts": 0, "points": 0}
    if not program.active or program.birthday_bonus <= 0:
        return Batch(None, counts)
    day = local_day(program, now)
    ids = list(
        session.scalars(
            select(LoyaltyAccount.id)
            .join(Customer, Customer.id == LoyaltyAccount.customer_id)
            .where(
                LoyaltyAccount.id > after_id,
                Customer.merged_into_id.is_(None),
                extract("month", Customer.birthday) == day.month,
            )
            .order_by(LoyaltyAccount.id)
            .limit(limit)
        )
    )
    keys = {account_id: f"birthday:{account_id}:{day.year}" for account_id in ids}
    given = set(
        session.scalars(
            select(LoyaltyEntry.dedupe_key).where(LoyaltyEntry.dedupe_key.in_(keys.values()))
        )
    )
    todo = [account_id for account_id, key in keys.items() if key not in given]
    for account in lock_accounts(session, todo):
        posting = ledger.Posting(
            source_type="job", source_id=f"birthday:{day.year}", dedupe_key=keys[account.id]
        )
        ledger.credit(
            session,
            account,
            program,
            kind="earn",
            points=program.birthday_bonus,
            posting=posting,
            now=now,
        )
        if program.tier_basis == "points":
            tiers.upgrade_if_qualified(session, account, program, now=now)
        counts["accounts"] += 1
        counts["points"] += program.birthday_bonus
    return Batch(ids[-1] if len(ids) == limit else None, counts)


def enroll_qualified(session: Session, *, now: dt.datetime) -> int:
    """Open accounts for customers whose 12-month spend reaches a tier above the lowest."""
    program = get_program(session)
    tier_list = program_tiers(session, program)
    customers = list(tiers.qualified_customers(session, program, tier_list, now))
    ensure_accounts(session, customers, program=program, now=now)
    return len(customers)


def review_batch(
    session: Session, *, now: dt.datetime, after_id: int = 0, limit: int = BATCH
) -> Batch:
    """Review the tiers of the next ``limit`` accounts not yet reviewed this period."""
    program = get_program(session)
    tier_list = program_tiers(session, program)
    period = job_period(program, "tier_review", now)
    ids = list(
        session.scalars(
            select(LoyaltyAccount.id)
            .where(
                LoyaltyAccount.id > after_id,
                (LoyaltyAccount.reviewed_period.is_(None))
                | (LoyaltyAccount.reviewed_period != period),
            )
            .order_by(LoyaltyAccount.id)
            .limit(limit)
        )
    )
    counts = {"accounts": 0, "up": 0, "down": 0, "grace": 0}
    accounts = [a for a in lock_accounts(session, ids) if a.reviewed_period != period]
    values = tiers.qualifications(session, program, accounts, now)
    for account in accounts:
        outcome = tiers.review_account(
            session, account, program, tier_list, values[account.id], now=now, period=period
        )
        counts["accounts"] += 1
        if outcome:
            counts[outcome] += 1
    session.flush()
    return Batch(ids[-1] if len(ids) == limit else None, counts)
