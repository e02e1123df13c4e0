"""Importing a shop's export into the store: one file, one batch, one transaction.

The file is read by the same ingest as :func:`patron.read_transactions` (every format and
mess it handles), so ``patron analyze`` and the CRM agree on what a file holds. An import
is all or nothing: the caller's transaction holds the batch, the customers and the orders,
and commits them together.

Importing the same file twice must change nothing, even when two people upload it at the
same moment. The batch row, unique by (kind, sha256), is therefore written *first*: the
second import waits on it (PostgreSQL's unique index, SQLite's single writer) until the
first commits, then fails to insert it and answers with the first batch instead of loading
the rows a second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from patron.crm.services.errors import Invalid, NotFound
from patron.crm.tables import ImportBatch
from patron.errors import InputError
from patron.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from patron.crm.tables import User

__all__ = [
    "KINDS",
    "DEFAULT_TIMEZONE",
    "ImportResult",
    "Progress",
    "import_file",
    "get_batch",
    "list_batches",
]

KINDS = ("orders", "customers")
#: The zone of the wall-clock times in shop exports, unless the import names another.
DEFAULT_TIMEZONE = "Asia/Shanghai"

#: ``progress(step, done, total)``: steps are ``hash``, ``read``, ``customers``,
#: ``orders`` and ``finish``; ``total`` is ``None`` while unknown.
Progress = Callable[[str, int, "int | None"], None]


@dataclass
class ImportResult:
    """The batch of the file; ``already_imported`` when it is an earlier import's batch."""

    batch: ImportBatch
    already_imported: bool


def _no_progress(_step: str, _done: int, _total: int | None) -> None:
    return None


def import_file(
    session: Session,
    path: str | Path,
    *,
    kind: str = "orders",
    source: str | None = None,
    actor: User | None = None,
    customer: str | None = None,
    date: str | None = None,
    amount: str | None = None,
    order_id: str | None = None,
    sheet: str | int | None = None,
    filename: str | None = None,
    progress: Progress | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    match_on: tuple[str, ...] | None = None,
) -> ImportResult:
    """Import an order export or a customer list; never commits.

    Parameters
    ----------
    path
        The file (CSV in any encoding patron reads, TSV, .xlsx, Parquet).
    kind
        ``"orders"`` (each row an order; customers found or created from its customer id
        and profile columns) or ``"customers"`` (each row a customer: external id and
        profile, upserted by (source, external id)).
    source
        The system the ids come from; default the file name's stem. Orders are keyed by
        (source, order number), customers by (source, external id).
    customer, date, amount, order_id, sheet
        Column names and sheet, when patron cannot recognise them (as for ``analyze``).
    filename
        The name to record (an upload's original name; default ``path``'s).
    progress
        Called as ``progress(step, done, total)`` (see :data:`Progress`).
    timezone
        The zone of the file's times (default Asia/Shanghai); they are stored in UTC.
    match_on
        The identity keys (default :func:`~patron.crm.services.identity.match_on_setting`).

    Returns
    -------
    ImportResult
        The batch, with its counts, report and rejected rows; ``already_imported`` when the
        same file (same bytes, same kind) was imported before -- then nothing changed.

    Raises
    ------
    Invalid
        An unknown kind or time zone, or a file ingest cannot use (no customer column, an
        empty file...), with ingest's message.
    """
    from patron.crm.services.identity import match_on_setting

    progress = progress or _no_progress
    if kind not in KINDS:
        raise Invalid(_("imports.bad_kind", kind=kind, kinds=", ".join(KINDS)), field="kind")
    _check_timezone(timezone)
    path = Path(path)
    filename = (filename or path.name)[:255]
    source = (source or Path(filename).stem).strip()[:64]
    if not source:
        raise Invalid(_("imports.no_source"), field="source")
    keys = match_on_setting(match_on)
    if isinstance(sheet, str) and sheet.isdigit():
        sheet = int(sheet)  # a form or a command line gives the sheet's index as text

    progress("hash", 0, None)
    try:
        sha256 = _sha256(path)
    except OSError as error:
        raise Invalid(_("ingest.file_not_found", file=str(path)), field="file") from error
    progress("hash", 1, 1)
    first = _earlier_batch(session, kind, sha256)
    if first is not None:
        return ImportResult(first, True)

    progress("read", 0, None)
    from patron.crm.services.import_files import read_customer_list, read_orders, rejected_csv

    try:
        if kind == "orders":
            data = read_orders(
                path,
                customer=customer,
                date=date,
                amount=amount,
                order_id=order_id,
                sheet=sheet,
                timezone=timezone,
            )
        else:
            data = read_customer_list(path, customer=customer, sheet=sheet)
    except InputError as error:
        if isinstance(error, Invalid):
            raise
        raise Invalid(str(error), field="file") from error
    progress("read", data.rows_read, data.rows_read)
    data.report["timezone"] = timezone

    batch = ImportBatch(
        kind=kind,
        filename=filename,
        sha256=sha256,
        source=source,
        status="running",
        actor_id=actor.id if actor is not None else None,
    )
    try:
        with session.begin_nested():
            session.add(batch)
            session.flush()
    except IntegrityError:
        # Another import of the same file committed while this one was reading it.
        first = _earlier_batch(session, kind, sha256)
        if first is None:
            raise
        return ImportResult(first, True)

    # Imports from one source take turns: two files adding the same new customer ids or
    # order numbers at once would otherwise both find them new.
    from patron.crm.services import bulk

    bulk.lock(session, f"patron.import:{source}")
    now = dt.datetime.now(dt.UTC)
    _load(session, batch, data, kind=kind, actor=actor, keys=keys, now=now, progress=progress)
    if kind == "orders":
        # Points for the new purchases and back from the refunds, if the programme says so.
        from patron.crm.services.loyalty import earn_for_import

        points = earn_for_import(session, batch.id, actor=actor, now=now)
        if any(points.values()):
            batch.report = {**batch.report, "loyalty": points}
    progress("finish", 0, 1)
    batch.rejected_csv = rejected_csv(data.rejected)
    batch.status = "completed"
    batch.finished_at = dt.datetime.now(dt.UTC)
    session.flush()
    _audit(session, batch, actor)
    progress("finish", 1, 1)
    return ImportResult(batch, False)


def _load(session, batch, data, *, kind, actor, keys, now, progress) -> None:
    """Customers, then orders; the batch's counts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from patron.crm.services.import_customers import resolve_customers

    people = data.people
    progress("customers", 0, people.num_rows)
    resolved = resolve_customers(
        session,
        people,
        source=batch.source,
        batch_id=batch.id,
        actor=actor,
        overwrite=kind == "customers",
        match_on=keys,
    )
    progress("customers", people.num_rows, people.num_rows)
    batch.rows_read = data.rows_read
    batch.rejected = data.rejected.num_rows
    batch.customers_created = resolved.created
    batch.customers_merged = resolved.merged
    report = dict(data.report)
    report.update(
        customers_matched=resolved.matched,
        customers_updated=resolved.updated,
    )
    batch.report = report
    if kind == "customers":
        batch.inserted, batch.updated = resolved.created, resolved.updated
        batch.unchanged = resolved.unchanged
        return

    from patron.crm.services.import_orders import upsert_orders

    orders = data.orders
    progress("orders", 0, orders.num_rows)
    where = pc.index_in(orders["ext_id"], value_set=people["ext_id"])
    customer_ids = pa.array(resolved.customer_ids).take(where)
    staged = orders.drop_columns(["ext_id"]).add_column(1, "customer_id", customer_ids)
    counts = upsert_orders(session, staged, source=batch.source, batch_id=batch.id, now=now)
    batch.inserted, batch.updated, batch.unchanged = (
        counts.inserted,
        counts.updated,
        counts.unchanged,
    )
    progress("orders", orders.num_rows, orders.num_rows)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_timezone(timezone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Invalid(_("imports.bad_timezone", timezone=timezone), field="timezone") from error


def _earlier_batch(session: Session, kind: str, sha256: str) -> ImportBatch | None:
    """The batch of an earlier import of these bytes, looked up on a fresh connection.

    Fresh, so that it sees an import committed after this session's transaction began
    (and, on SQLite, without waiting for the write lock: it only reads).
    """
    engine = session.get_bind()
    query = select(ImportBatch.id).where(ImportBatch.kind == kind, ImportBatch.sha256 == sha256)
    with engine.connect() as connection:
        batch_id = connection.execution_options(sqlite_begin="DEFERRED").execute(query).scalar()
    if batch_id is None:
        return None
    batch = session.get(ImportBatch, batch_id)
    if batch is None:  # a snapshot older than the other import (repeatable read)
        from sqlalchemy.orm import Session as FreshSession

        with FreshSession(engine, expire_on_commit=False) as fresh:
            batch = fresh.get(ImportBatch, batch_id)
            fresh.expunge_all()
    return batch


def _audit(session: Session, batch: ImportBatch, actor: User | None) -> None:
    from patron.crm.services import audit

    audit.record(
        session,
        actor=actor,
        action="import.run",
        object_type="import_batch",
        object_id=batch.id,
        after={
            "kind": batch.kind,
            "filename": batch.filename,
            "source": batch.source,
            "sha256": batch.sha256,
            **{
                k: getattr(batch, k)
                for k in (
                    "rows_read",
                    "inserted",
                    "updated",
                    "unchanged",
                    "rejected",
                    "customers_created",
                    "customers_merged",
                )
            },
        },
    )


def get_batch(session: Session, batch_id: int) -> ImportBatch:
    """The import batch ``batch_id``; :class:`NotFound` when there is none."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        raise NotFound(_("imports.not_found", id=batch_id), field="batch_id")
    return batch


def list_batches(
    session: Session, *, limit: int = 50, offset: int = 0
) -> tuple[list[ImportBatch], int]:
    """Import batches, newest first, and how many there are in all."""
    total = session.scalar(select(func.count()).select_from(ImportBatch)) or 0
    page = (
        select(ImportBatch)
        .order_by(ImportBatch.id.desc())
        .limit(max(limit, 0))
        .offset(max(offset, 0))
    )
    return list(session.scalars(page)), int(total)
