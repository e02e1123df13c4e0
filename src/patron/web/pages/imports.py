"""Imports: the upload form, the list of batches, each batch's report and rejected rows.

The upload runs the same import as ``patron import`` (one transaction, upsert by natural
key, the same file twice changes nothing), on a temporary copy of the file that keeps its
name's suffix, because the suffix tells CSV from Excel from Parquet.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile

from patron.crm.services import imports
from patron.crm.services.errors import Forbidden, ServiceError
from patron.errors import InputError
from patron.i18n import _
from patron.web.deps import SessionDep, csrf_protect
from patron.web.pages.customers import page_number
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)

PAGE_SIZE = 20
KINDS = ("orders", "customers")
PREVIEW_ROWS = 20


def _list_page(
    request: Request,
    session: SessionDep,
    v: Viewer,
    *,
    page: int = 1,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    batches, total = imports.list_batches(session, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(
        request,
        "imports/list.html.j2",
        v,
        status_code=status_code,
        batches=batches,
        total=total,
        page=page,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
        kinds=KINDS,
        error=error,
        form=form or {"kind": "orders", "source": ""},
    )


@router.get("/imports", name="imports")
def import_list(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("imports.read"))],
    page: str = "1",
) -> Response:
    """Past imports, newest first, and (for managers) the upload form."""
    return _list_page(request, session, v, page=page_number(page))


@router.post("/imports", name="upload", dependencies=[Depends(csrf_protect)])
def upload(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("imports.run"))],
    file: Annotated[UploadFile | None, File()] = None,
    kind: Annotated[str, Form()] = "orders",
    source: Annotated[str, Form()] = "",
) -> Response:
    """Import the uploaded export and show its report (or why it could not be read)."""
    form = {"kind": kind, "source": source}
    if file is None or not file.filename:
        error = _("pages.imports.no_file", lang=v.lang)
        return _list_page(request, session, v, error=error, form=form, status_code=422)
    if kind not in KINDS:
        kind = "orders"
    name = Path(file.filename).name
    with tempfile.TemporaryDirectory(prefix="patron-upload-") as folder:
        path = Path(folder) / (name or "upload.csv")
        with path.open("wb") as target:
            shutil.copyfileobj(file.file, target)
        try:
            with session.begin_nested():
                result = imports.import_file(
                    session,
                    path,
                    kind=kind,
                    source=source.strip() or None,
                    actor=v.user,
                    filename=name,
                )
        except (InputError, ServiceError) as refusal:
            if isinstance(refusal, Forbidden):
                raise
            message = getattr(refusal, "message", None) or str(refusal)
            return _list_page(request, session, v, error=message, form=form, status_code=422)
    again = "?again=1" if result.already_imported else ""
    return redirect(f"/imports/{result.batch.id}{again}")


@router.get("/imports/{batch_id}", name="import_batch")
def import_batch(
    request: Request,
    batch_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("imports.read"))],
    again: str = "",
) -> Response:
    """One import's report: counts, rejections by reason, the first rejected rows."""
    batch = imports.get_batch(session, batch_id)
    header, preview = [], []
    if batch.rejected_csv and not v.masked:
        reader = csv.reader(io.StringIO(batch.rejected_csv.lstrip("\ufeff")))
        header = next(reader, [])
        preview = [row for _i, row in zip(range(PREVIEW_ROWS), reader, strict=False)]
    report = batch.report or {}
    return render(
        request,
        "imports/detail.html.j2",
        v,
        batch=batch,
        report=report,
        reasons=report.get("rejected_by_reason") or {},
        header=header,
        preview=preview,
        again=bool(again),
    )


@router.get("/imports/{batch_id}/rejected.csv", name="import_rejected")
def import_rejected(
    batch_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("imports.read"))],
) -> Response:
    """The rejected rows as the file had them (UTF-8 with BOM, opens in Excel).

    The rows are raw cells of the export (names, phones), which cannot be masked
    reliably, so analysts may not download them.
    """
    if v.masked:
        raise Forbidden(_("pages.imports.rejected_masked", lang=v.lang), code="forbidden")
    batch = imports.get_batch(session, batch_id)
    text = batch.rejected_csv or ""
    if not text.startswith("\ufeff"):
        text = "\ufeff" + text
    filename = f"rejected-{batch.id}.csv"
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
