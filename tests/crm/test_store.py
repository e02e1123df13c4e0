import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from patron.crm.db import make_engine
from patron.crm.migrate import SchemaError, check_schema, current_revision, head_revision
from patron.crm.tables import Customer, ImportBatch, Order


def test_migrated_database_passes_the_check(engine):
    assert current_revision(engine) == head_revision()
    check_schema(engine)


def test_empty_database_is_refused_with_the_command_to_run(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaError, match="patron db upgrade"):
        check_schema(engine)


def test_money_is_exact_and_times_come_back_in_utc(session):
    shanghai = dt.timezone(dt.timedelta(hours=8))
    customer = Customer(name="张三")
    session.add(customer)
    session.flush()
    session.add(
        Order(
            source="shop",
            order_no="SO1",
            customer_id=customer.id,
            ordered_at=dt.datetime(2024, 3, 5, 9, 30, tzinfo=shanghai),
            amount=Decimal("1234.50"),
        )
    )
    session.commit()
    session.expunge_all()
    order = session.scalars(select(Order)).one()
    assert order.amount == Decimal("1234.50")
    assert order.ordered_at == dt.datetime(2024, 3, 5, 1, 30, tzinfo=dt.UTC)
    assert order.ordered_at.tzinfo is not None


def test_naive_times_are_refused(session):
    session.add(Customer(name="x", created_at=dt.datetime(2024, 1, 1)))
    with pytest.raises(Exception, match="naive datetime"):
        session.flush()


def test_the_same_file_cannot_be_recorded_twice(session):
    for _ in range(2):
        session.add(ImportBatch(kind="orders", filename="a.csv", sha256="ab" * 32, source="a"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_migrations_create_exactly_the_tables_the_code_declares(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from patron.crm.tables import Base

    def declared_here(obj, _name, _type, _reflected, _compare_to) -> bool:
        # An index declared for one database only (``ddl_if``) exists on that one only.
        only = getattr(obj, "_ddl_if", None)
        return only is None or only.dialect in (None, engine.dialect.name)

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": declared_here}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_migrations_give_every_index_the_columns_the_code_includes(engine):
    """What ``compare_metadata`` does not look at: an index's INCLUDE columns (PostgreSQL).

    Search reads the score snapshots from their indexes alone only while every column it
    needs is carried there (migrations 0008-0010).
    """
    from sqlalchemy import text

    from patron.crm.tables import Base

    if engine.dialect.name != "postgresql":
        pytest.skip("INCLUDE columns exist on PostgreSQL only")
    declared = {}
    for table in Base.metadata.tables.values():
        for item in [*table.indexes, *table.constraints]:
            include = item.dialect_options["postgresql"].get("include")
            if include:
                declared[str(item.name)] = [str(getattr(c, "name", c)) for c in include]
    assert "pk_score_snapshots" in declared
    with engine.connect() as connection:
        found = dict(
            connection.execute(
                text(
                    "SELECT c.relname, array(SELECT a.attname FROM unnest(i.indkey[i.indnkeyatts:])"
                    " WITH ORDINALITY k(attnum, n) JOIN pg_attribute a"
                    " ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)"
                    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE c.relname = ANY(:names)"
                ),
                {"names": list(declared)},
            ).all()
        )
    assert found == declared
