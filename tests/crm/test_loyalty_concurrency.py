"""Concurrent redemptions with real threads against the real databases.

64 threads redeem 100 points each against a balance of 1,000, every round: exactly 10
succeed, 54 are refused, the balance ends at 0 and the ledger's sums agree -- on SQLite and
on PostgreSQL. Then the same race without the protection, to show it is what makes the
difference:

- PostgreSQL without the account row lock (``SELECT ... FOR UPDATE``) oversells: every
  transaction reads the same balance and lots, and all of them "succeed";
- SQLite with a plain deferred ``BEGIN`` instead of ``BEGIN IMMEDIATE``: the transactions
  that read first and write later fail with "database is locked" (SQLite never oversells,
  but the requests fail instead of waiting their turn).

On PostgreSQL the API's one-round-trip path (:mod:`patron.crm.services.loyalty.fast_path`)
runs the same race, each thread with its own idempotency key, and half of the threads
through the Python path at the same time.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from tests.crm.loyalty_data import NOW, new_customer

from patron.crm.db import make_engine, session_scope
from patron.crm.services import idempotency, loyalty, users
from patron.crm.services.loyalty import accounts, fast_path, ledger
from patron.crm.tables import LoyaltyEntry

THREADS = 64
ROUNDS = 5


@pytest.fixture
def wide_engine(db_url):
    """An engine with a connection per thread, so all 64 really run at once."""
    engine = make_engine(db_url, pool_size=THREADS, max_overflow=0)
    yield engine
    engine.dispose()


def funded(engine, points: int) -> int:
    """A new customer holding ``points`` (committed); their id."""
    with session_scope(engine) as session:
        customer_id = new_customer(session)
        loyalty.earn(session, customer_id, points, reason="funding", now=NOW)
    return customer_id


def race(engine, customer_id: int, threads: int, *, begin: str | None = None) -> Counter:
    """``threads`` threads each redeem 100 points at the same moment; outcomes counted."""
    start = threading.Barrier(threads)

    def redeem() -> str:
        start.wait(timeout=120)
        try:
            with session_scope(engine) as session:
                if begin is not None:
                    session.connection(execution_options={"sqlite_begin": begin})
                loyalty.redeem(session, customer_id, 100, reason="race", now=NOW)
            return "redeemed"
        except loyalty.InsufficientPoints:
            return "refused"
        except OperationalError as exc:
            if "database is locked" in str(exc):
                return "locked"
            raise

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(redeem) for _ in range(threads)]
        return Counter(future.result() for future in futures)


def state(engine, customer_id: int) -> tuple[int, int, list[str]]:
    """(balance, redemptions recorded, broken invariants) of the customer."""
    with session_scope(engine) as session:
        view = loyalty.points_view(session, customer_id)
        account = accounts.find_account(session, customer_id)
        redemptions = session.scalar(
            select(func.count()).where(
                LoyaltyEntry.account_id == account.id, LoyaltyEntry.kind == "redeem"
            )
        )
        return view["balance"], redemptions, loyalty.check_invariants(session, [account.id])


def test_64_concurrent_redemptions_against_1000_succeed_exactly_10_times(wide_engine):
    for _round in range(ROUNDS):
        customer_id = funded(wide_engine, 1000)
        outcomes = race(wide_engine, customer_id, THREADS)
        assert outcomes == {"redeemed": 10, "refused": 54}
        assert state(wide_engine, customer_id) == (0, 10, [])


def race_fast(engine, customer_id: int, threads: int, user) -> Counter:
    """:func:`race` through the one-round-trip path; odd threads take the Python path."""
    start = threading.Barrier(threads)

    def redeem(number: int) -> str:
        request = fast_path.PointsWrite(
            kind="redeem",
            user_id=user.id,
            actor_name=user.username,
            key=f"race-{customer_id}-{number}",
            fingerprint=idempotency.fingerprint("POST", "/redeem", {"points": 100}),
            customer_id=customer_id,
            points=100,
            reason="race",
            now=NOW,
            created_at=NOW.isoformat(),
        )
        start.wait(timeout=120)
        if number % 2:
            try:
                with session_scope(engine) as session:
                    loyalty.redeem(session, customer_id, 100, reason="race", now=NOW)
                return "redeemed"
            except loyalty.InsufficientPoints:
                return "refused"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            answer = fast_path.write(connection, request)
        assert answer is not None, "the common case took the Python path"
        return {201: "redeemed", 409: "refused"}[answer.status_code]

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(redeem, number) for number in range(threads)]
        return Counter(future.result() for future in futures)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_64_concurrent_redemptions_through_the_one_round_trip_path(wide_engine):
    with session_scope(wide_engine) as session:
        user, _password = users.create_user(
            session, username="racer", role="staff", password="correct horse battery"
        )
    for _round in range(ROUNDS):
        customer_id = funded(wide_engine, 1000)
        outcomes = race_fast(wide_engine, customer_id, THREADS, user)
        assert outcomes == {"redeemed": 10, "refused": 54}
        assert state(wide_engine, customer_id) == (0, 10, [])


def _read_together(monkeypatch, parties: int) -> None:
    """Make every redemption wait, after reading the lots, until all have read them."""
    together = threading.Barrier(parties)
    read = ledger.lots_for_debit

    def read_then_wait(session, account, points, now):
        lots = read(session, account, points, now)
        together.wait(timeout=120)
        return lots

    monkeypatch.setattr(ledger, "lots_for_debit", read_then_wait)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_without_the_row_lock_postgres_oversells(wide_engine, monkeypatch):
    monkeypatch.setattr(accounts, "LOCK_ROWS", False)
    # Forced: 8 redemptions of 100 read a balance of 500 before any writes.
    customer_id = funded(wide_engine, 500)
    with monkeypatch.context() as forced:
        _read_together(forced, 8)
        outcomes = race(wide_engine, customer_id, 8)
    assert outcomes == {"redeemed": 8}  # 800 points out of 500
    balance, redemptions, problems = state(wide_engine, customer_id)
    assert redemptions == 8 and balance == 400  # each wrote 500 - 100
    assert any("sum of entries -300" in p for p in problems)

    # Unforced: the test above, without the lock, fails within a few rounds.
    failures = []
    for _round in range(ROUNDS):
        customer_id = funded(wide_engine, 1000)
        outcomes = race(wide_engine, customer_id, THREADS)
        balance, redemptions, problems = state(wide_engine, customer_id)
        if outcomes != {"redeemed": 10, "refused": 54} or balance != 0 or problems:
            failures.append((outcomes, balance, redemptions, problems[:1]))
            break
    assert failures, "without the lock the race went right every round"
    print("\nwithout the lock:", failures)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_needs_begin_immediate_a_deferred_begin_fails_with_database_is_locked(
    wide_engine, monkeypatch
):
    # Forced: 8 deferred transactions read the lots, then all try to write.
    customer_id = funded(wide_engine, 500)
    with monkeypatch.context() as forced:
        _read_together(forced, 8)
        outcomes = race(wide_engine, customer_id, 8, begin="DEFERRED")
    assert outcomes["locked"] >= 1 and outcomes["redeemed"] + outcomes["locked"] == 8
    balance, redemptions, problems = state(wide_engine, customer_id)
    assert balance == 500 - 100 * redemptions and problems == []

    # Unforced: 64 threads, deferred BEGIN; some fail instead of waiting their turn.
    locked = 0
    for _round in range(ROUNDS):
        customer_id = funded(wide_engine, 1000)
        outcomes = race(wide_engine, customer_id, THREADS, begin="DEFERRED")
        locked += outcomes["locked"]
        balance, redemptions, problems = state(wide_engine, customer_id)
        assert balance == 1000 - 100 * redemptions and problems == []  # never oversold
        if locked:
            break
    assert locked, "a deferred BEGIN never met a locked database"
    print("\ndeferred BEGIN:", outcomes)

    # And with BEGIN IMMEDIATE (patron's default) the same race goes right.
    customer_id = funded(wide_engine, 1000)
    assert race(wide_engine, customer_id, THREADS) == {"redeemed": 10, "refused": 54}
