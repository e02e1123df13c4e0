"""A run's order held by the process ranks as PostgreSQL's ORDER BY does, and follows new runs."""

import asyncio
import datetime as dt
import logging
import random

import pytest
from tests.crm.customer_data import make_run
from tests.crm.test_customer_search_sql import _criteria, _portable, _read_pool

from patron.crm.services import customer_search, customer_search_sql, customers
from patron.crm.services import customer_search_ranks as ranks

#: CLVs PostgreSQL orders in its own way: NaN above infinity, -0 equal to 0; ties; NULL.
CLVS = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1.5, 1.5, 2.0, None, 1e-300]
SORTS = ("predicted_clv", "-predicted_clv", "last_purchase", "-last_purchase")


@pytest.fixture
def people(session, engine):
    """Sixty customers named 王…; the first fifty scored, with every kind of CLV and date."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the process holds a run's order for PostgreSQL's one-statement search")
    made = [customers.create_customer(session, actor=None, name=f"王{i:02d}") for i in range(60)]
    rng = random.Random(3)
    scores = {
        c.id: {
            "predicted_clv": rng.choice(CLVS),
            "last_purchase": rng.choice([None, dt.date(1969, 12, 31), dt.date(2024, 2, 29)]),
        }
        for c in made[:50]
    }
    make_run(session, scores)
    session.commit()
    return made


def _sql_page(connection, run_id, ids, sort, limit, offset):
    key = sort.removeprefix("-")
    direction = "DESC" if sort.startswith("-") else "ASC"
    rows = connection.execute(
        f"""SELECT h.id FROM unnest(%(ids)s::bigint[]) h(id)
        LEFT JOIN score_snapshots s ON s.run_id = %(run)s AND s.customer_id = h.id
        ORDER BY s.{key} {direction} NULLS LAST, h.id LIMIT {limit} OFFSET {offset}""",
        {"ids": ids, "run": run_id},
    )
    return [row[0] for row in rows]


def test_the_held_order_is_postgresqls_order(session, people):
    connection = session.connection().connection.driver_connection
    order = ranks.load(connection)
    assert order is not None
    rng = random.Random(5)
    ids = [c.id for c in people]
    stranger = max(ids) + 10**6  # not in the run, beyond the held tables
    checked = 0
    for sort in SORTS:
        for _ in range(40):
            hits = rng.sample(ids, rng.randint(1, len(ids))) + [stranger] * rng.randint(0, 1)
            limit, offset = rng.choice([(5, 0), (20, 0), (7, 14), (50, 40)])
            expected = _sql_page(connection, order.run_id, hits, sort, limit, offset)
            assert order.page(hits, sort, limit, offset) == expected, (sort, hits)
            checked += len(expected)
    assert checked > 500


def test_a_new_run_replaces_the_held_order(session, people, monkeypatch):
    monkeypatch.setattr(customer_search_sql, "RANK_FROM", 1)
    ranked = []
    page = ranks.RunOrder.page
    monkeypatch.setattr(
        ranks.RunOrder, "page", lambda self, *args: ranked.append(self.run_id) or page(self, *args)
    )
    options = {"q": "王", "sort": "-predicted_clv"}

    def search():
        found = customer_search.search_customers(session, **options, limit=10)
        assert found == _portable(session, options, 10, 0)
        return [item["id"] for item in found[0]]

    search()  # loads the run's order
    first = search()
    assert len(ranked) == 1
    held = ranks.held(session.get_bind().url.render_as_string(hide_password=True))
    # The next run reverses the order: by CLV, the last ten are now the first.
    scores = {c.id: {"predicted_clv": float(-i)} for i, c in enumerate(people)}
    newer = make_run(session, scores)
    session.commit()
    assert search() == [c.id for c in people[:10]] != first  # the database ranked
    assert len(ranked) == 1
    assert search() == [c.id for c in people[:10]]  # ranked here, by the newer run
    assert ranked == [held.run_id, newer.id]


def test_a_failed_load_leaves_the_search_answered_and_is_not_tried_again(
    session, people, monkeypatch, caplog
):
    monkeypatch.setattr(customer_search_sql, "RANK_FROM", 1)
    monkeypatch.setattr(ranks, "_held", {})
    monkeypatch.setattr(ranks, "_claimed", {})
    tries = []

    def failing(connection):
        tries.append(1)
        connection.execute("SELECT 1/0")

    monkeypatch.setattr(ranks, "load", failing)
    options = {"q": "王", "sort": "predicted_clv"}
    with caplog.at_level(logging.WARNING, logger=ranks.__name__):
        for _ in range(3):
            found = customer_search.search_customers(session, **options, limit=10)
            assert found == _portable(session, options, 10, 0)
    assert len(tries) == 1
    assert "division by zero" in caplog.text


def test_the_awaited_search_ranks_as_the_portable_search(session, people, engine, monkeypatch):
    monkeypatch.setattr(customer_search_sql, "RANK_FROM", 1)
    monkeypatch.setattr(ranks, "_held", {})
    monkeypatch.setattr(ranks, "_claimed", {})
    ranked = []
    page = ranks.RunOrder.page
    monkeypatch.setattr(
        ranks.RunOrder, "page", lambda self, *args: ranked.append(args) or page(self, *args)
    )
    searches = [
        ({"q": q, "sort": sort}, limit, offset)
        for q in ("王", "王0", "王1", None)
        for sort in SORTS
        for limit, offset in ((5, 0), (10, 45), (50, 0))
    ]

    async def run_all():
        pool, search = await _read_pool(engine)
        try:
            await search(**_criteria(searches[0][0], 5, 0))  # loads the run's order
            return [await search(**_criteria(*each)) for each in searches]
        finally:
            await pool.close()

    found = asyncio.run(run_all())
    for (options, limit, offset), answer in zip(searches, found, strict=True):
        assert answer == _portable(session, options, limit, offset), (options, limit, offset)
    assert len(ranked) == len(searches)
