"""Search in one PostgreSQL statement finds exactly the pages the portable search finds."""

import datetime as dt
import itertools
import random

import pytest
from tests.crm.customer_data import QueryCounter, make_run, make_user

from patron.crm.services import customer_search, customer_search_sql, customers, identity
from patron.crm.services import customer_search_ranks as ranks

SURNAMES = "王李张刘陈"
GIVEN = "伟芳娜秀敏强磊"


@pytest.fixture
def crowd(session, engine):
    """Ninety customers: shared name prefixes, phones, emails, external ids, tags, owners,
    merges, and scores with gaps (unscored customers, a score without a CLV)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement search is PostgreSQL's")
    rng = random.Random(11)
    owners = [make_user(session, "wang"), make_user(session, "li")]
    made = []
    for i in range(90):
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(["", *GIVEN])
        if i % 17 == 0:
            name = f"Li {name}" if i % 2 else f"anna {name}"
        made.append(
            customers.create_customer(
                session,
                actor=None,
                name=name,
                phone=f"1{rng.choice('3589')}8{i:08d}" if i % 4 else None,
                email=f"u{i}@example.com" if i % 3 == 0 else None,
                owner_id=owners[i % 2].id if i % 5 == 0 else None,
                tags=["vip"] if i % 6 == 0 else [],
                external_ids={"pos": f"P{i}"} if i % 7 == 0 else None,
            )
        )
    for survivor, merged in ((made[1], made[2]), (made[10], made[11])):
        identity.merge_customers(session, survivor.id, merged.id, rule="manual")
    make_run(session, {c.id: {"grade": "gold"} for c in made[:30]})  # an older run
    scores = {}
    for i, c in enumerate(made):
        if i % 4 == 3:
            continue  # unscored
        scores[c.id] = {
            "grade": ("gold", "silver", "bronze")[i % 3],
            "churn_risk": ("low", "high")[i % 2],
            "predicted_clv": None if i % 9 == 0 else float(i % 11),
            "last_purchase": dt.date(2024, 1, 1) + dt.timedelta(days=i % 13),
        }
    make_run(session, scores)
    session.commit()
    return made, owners


def _searches(made, owners):
    sample = made[3]
    queries = [
        None,
        "",
        "王",
        "王伟",
        "李芳敏",
        "伟",
        "li",
        "Li",
        "anna",
        "13",
        "138",
        "+86 158",
        str(sample.id),
        f"#{sample.id}",
        "P7",
        "P",
        "u3@",
        "U3@EXAMPLE",
        "%",
        "_",
        "zz",
    ]
    filters = [
        {},
        {"grade": "gold"},
        {"risk": "high", "grade": "silver"},
        {"tag": "vip"},
        {"owner_id": owners[0].id},
    ]
    for q, extra, sort in itertools.product(queries, filters, customer_search.SORTS):
        yield {"q": q, **extra, "sort": sort}


def _portable(session, options, limit, offset):
    names = ("q", "grade", "stage", "risk", "tag", "owner_id", "sort")
    values = [options.get(name) for name in names]
    values[-1] = options["sort"]
    return customer_search._search(session, *values, limit, offset)


@pytest.mark.parametrize(
    ("bound", "sift_ratio", "rank_from"),
    [
        (10_000, customer_search_sql.SIFT_RATIO, customer_search_sql.RANK_FROM),
        (4, 12, customer_search_sql.RANK_FROM),
        (10_000, 10**9, customer_search_sql.RANK_FROM),
        (10_000, 12, 1),
    ],
)
def test_every_search_gives_the_portable_page_and_total(
    session, crowd, monkeypatch, bound, sift_ratio, rank_from
):
    # With a bound of 4 most searches are "too many to count": pages walk the scores and
    # totals are estimated (the estimates may differ; the pages may not). With a huge
    # ratio every search of more than one match sorted by a score sifts the run's scores
    # for its page (the cap on how far it reads included), else ranks its matches.
    monkeypatch.setattr(customer_search, "COUNT_EXACT_UP_TO", bound)
    monkeypatch.setattr(customer_search_sql, "SIFT_FROM", 2 if sift_ratio > 10**6 else 200)
    monkeypatch.setattr(customer_search_sql, "SIFT_RATIO", sift_ratio)
    # From one match, every search sorted by a score ranks its matches in this process
    # (the first one loads the run's order).
    monkeypatch.setattr(customer_search_sql, "RANK_FROM", rank_from)
    ranked = []
    page = ranks.RunOrder.page
    monkeypatch.setattr(
        ranks.RunOrder, "page", lambda self, *args: ranked.append(args) or page(self, *args)
    )
    monkeypatch.setattr(customer_search, "_estimates", {})
    monkeypatch.setattr(customer_search_sql, "_estimates", {})
    checked = 0
    for options in _searches(*crowd):
        for limit, offset in ((5, 0), (5, 10), (50, 0), (3, 80)):
            expected = _portable(session, options, limit, offset)
            found = customer_search.search_customers(session, **options, limit=limit, offset=offset)
            assert found[0] == expected[0], (options, limit, offset)
            if expected[1] <= bound:
                assert found[1] == expected[1], (options, limit, offset)
            else:
                assert found[1] > bound
            checked += bool(found[0])
    assert checked > 500  # most searches found someone
    if rank_from == 1:
        assert len(ranked) > 500
    else:
        assert not ranked  # ninety customers: never a hundred matches


def test_a_search_is_one_round_trip(session, crowd, engine):
    with QueryCounter(engine) as counter:
        items, total = customer_search.search_customers(session, q="王", limit=5)
    assert counter.count == 0  # none through SQLAlchemy: one pipeline of the driver's own
    assert total >= len(items) == 5
    assert all(item["name"].startswith("王") for item in items)
    clv = [item["predicted_clv"] for item in items]
    assert clv == sorted(clv, key=lambda v: (v is None, -(v or 0)))


def test_the_settings_are_reset_even_when_the_statement_fails(session, crowd):
    settings = (
        "SELECT current_setting('plan_cache_mode'),"
        " current_setting('max_parallel_workers_per_gather')"
    )
    connection = session.connection().connection.driver_connection
    before = connection.execute(settings).fetchone()
    with pytest.raises(Exception, match="division by zero"):
        customer_search_sql._fetch(connection, "SELECT 1/0 + %(q)s", {"q": 1})
    session.rollback()
    connection = session.connection().connection.driver_connection
    assert connection.execute(settings).fetchone() == before
    customer_search.search_customers(session, q="王")
    assert connection.execute(settings).fetchone() == before


# --- the same search awaited on a pool (the API's path on PostgreSQL) ---------------------


async def _read_pool(engine):
    from psycopg import AsyncRawCursor

    from patron.web.pg_pools import open_pool

    pool = await open_pool(
        engine,
        (1, 2),
        settings=customer_search_sql.PLAN_SETTINGS,
        cursor_factory=AsyncRawCursor,
    )
    assert pool is not None
    url_key = engine.url.render_as_string(hide_password=True)
    return pool, customer_search_sql.AsyncSearch(pool, url_key)


def _criteria(options, limit, offset):
    names = ("q", "grade", "stage", "risk", "tag", "owner_id")
    return {name: options.get(name) for name in names} | {
        "sort": options["sort"],
        "limit": limit,
        "offset": offset,
    }


@pytest.mark.parametrize("bound", [10_000, 4])
def test_the_awaited_search_gives_the_sessions_page_and_total(
    session, crowd, engine, monkeypatch, bound
):
    import asyncio

    monkeypatch.setattr(customer_search, "COUNT_EXACT_UP_TO", bound)
    monkeypatch.setattr(customer_search_sql, "_estimates", {})

    async def compare() -> int:
        pool, search = await _read_pool(engine)
        checked = 0
        try:
            for options in _searches(*crowd):
                for limit, offset in ((5, 0), (5, 10), (3, 80)):
                    criteria = _criteria(options, limit, offset)
                    expected = customer_search.search_customers(session, **criteria)
                    found = await search(**criteria)
                    assert found[0] == expected[0], criteria
                    if expected[1] <= bound:
                        assert found[1] == expected[1], criteria
                    else:
                        assert found[1] > bound
                    checked += bool(found[0])
        finally:
            await pool.close()
        return checked

    assert asyncio.run(compare()) > 300  # most searches found someone


def test_the_pool_plans_as_the_search_needs_and_counts_a_total_once(
    session, crowd, engine, monkeypatch
):
    import asyncio

    monkeypatch.setattr(customer_search, "COUNT_EXACT_UP_TO", 4)
    monkeypatch.setattr(customer_search_sql, "_estimates", {})
    counted = []
    steps, run = customer_search_sql._steps, customer_search_sql.AsyncSearch._run

    def counting_steps(found, remembered, order):
        counted.append(remembered is None)
        return steps(found, remembered, order)

    async def slow_run(self, steps):
        await asyncio.sleep(0.2)  # the others arrive while the first one counts
        return await run(self, steps)

    monkeypatch.setattr(customer_search_sql, "_steps", counting_steps)
    monkeypatch.setattr(customer_search_sql.AsyncSearch, "_run", slow_run)

    async def scenario():
        pool, search = await _read_pool(engine)
        try:
            async with pool.connection() as connection:
                cursor = await connection.execute(
                    "SELECT current_setting('plan_cache_mode'),"
                    " current_setting('max_parallel_workers_per_gather'),"
                    " current_setting('jit')"
                )
                settings = await cursor.fetchone()
            criteria = _criteria({"q": "王", "sort": "-predicted_clv"}, 5, 0)
            found = await asyncio.gather(*(search(**criteria) for _ in range(6)))
        finally:
            await pool.close()
        return settings, found

    settings, found = asyncio.run(scenario())
    assert settings == ("force_generic_plan", "0", "off")
    assert counted.count(True) == 1 and len(counted) == 6
    assert len({total for _items, total in found}) == 1 and found[0][1] > 4
    assert all(items == found[0][0] and len(items) == 5 for items, _total in found)
