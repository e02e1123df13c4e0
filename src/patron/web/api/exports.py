"""Exports: the customer table as CSV, masked for analysts, and audited."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from patron.crm.services import audit, permissions, views
from patron.crm.tables import User
from patron.web.api.customers import SearchFilters
from patron.web.deps import SessionDep, client_ip, require, writes

__all__ = ["router"]

router = APIRouter(tags=["exports"])

_IN_MEMORY = 8 * 1024 * 1024  # larger exports spill to a temporary file
_CHUNK = 256 * 1024


@router.get(
    "/exports/customers",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with BOM"}},
)
@writes
def export_customers(
    request: Request,
    session: SessionDep,
    user: Annotated[User, Depends(require("exports.customers"))],
    filters: SearchFilters,
) -> StreamingResponse:
    """Every customer matching the filters, with the latest scores, as CSV for Excel.

    Analysts get personal data masked. The export is audited with its filters and size.
    """
    mask = permissions.masks_personal_data(user)
    search = {k: v for k, v in filters.items() if v is not None}
    target = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY, mode="w+b")
    try:
        rows = _write_csv(target, views.export_rows(session, mask=mask, **search))
        audit.record(
            session,
            actor=user,
            action="export.customers",
            object_type="customer",
            object_id=None,
            after={"filters": search, "rows": rows, "masked": mask},
            ip=client_ip(request),
        )
    except BaseException:
        target.close()
        raise
    target.seek(0)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        _chunks(target),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="customers-{stamp}.csv"'},
    )


def _write_csv(target: IO[bytes], rows: Iterator[dict[str, Any]]) -> int:
    """Write the rows as UTF-8 CSV with a BOM (Excel reads Chinese right); the row count."""
    target.write(codecs.BOM_UTF8)
    text = codecs.getwriter("utf-8")(target)
    writer = csv.writer(text, lineterminator="\r\n")
    count = 0
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = list(row)
            writer.writerow(header)
        writer.writerow([_cell(row.get(name)) for name in header])
        count += 1
    text.flush()
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple | set | frozenset):
        value = ";".join(str(v) for v in value)
    if isinstance(value, str):
        return _defuse(value)
    return str(value)


_FORMULA = re.compile(r"^[=@\t\r]|^[+-].*[A-Za-z(|!]")


def _defuse(text: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (``=HYPERLINK(...)`` in a name).

    A phone such as ``+86 138 0013 8000`` is left alone; ``+cmd|...`` is not.
    """
    return "'" + text if _FORMULA.match(text) else text


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := source.read(_CHUNK):
            yield chunk
    finally:
        source.close()
