"""Imports: upload an orders or customers export, list the batches, download rejected rows."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile

from patron.crm.services import imports, permissions
from patron.crm.services.errors import Forbidden, ServiceError
from patron.crm.tables import User
from patron.errors import InputError
from patron.i18n import _
from patron.web.deps import SessionDep, request_language, require
from patron.web.schemas import MAX_ID, ImportBatchOut, ImportKind, ImportResultOut, NoNul, Page

__all__ = ["router"]

router = APIRouter(tags=["imports"])

Reader = Annotated[User, Depends(require("imports.read"))]
BatchId = Annotated[int, Path(ge=1, le=MAX_ID)]
Column = Annotated[str | None, Form(max_length=128), NoNul]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe_name(filename: str | None) -> str:
    """The upload's own name, fit to be a file name here (messages then name it too).

    At most 60 characters before the extension: 255 bytes is the limit of most file
    systems, and a Chinese character takes three.
    """
    name = _CONTROL.sub("", FilePath((filename or "").replace("\\", "/")).name).strip()
    if name in ("", ".", ".."):
        return "upload"
    stem, dot, suffix = name.rpartition(".")
    if dot and len(suffix) <= 10:
        return stem[:60] + "." + suffix
    return name[:60]


def _hide_temp_path(exc: InputError, path: FilePath, filename: str) -> None:
    # Ingest names the file it read: the client knows its own name, not our temp path.
    text = str(exc).replace(str(path), filename)
    exc.args = (text,)
    if isinstance(exc, ServiceError):
        exc.message = text


@router.post("/imports", response_model=ImportResultOut, status_code=201)
def upload(
    session: SessionDep,
    user: Annotated[User, Depends(require("imports.run"))],
    response: Response,
    file: Annotated[UploadFile, File(description="CSV, TSV, Excel or Parquet export")],
    kind: Annotated[ImportKind, Form()] = "orders",
    source: Annotated[str | None, Form(max_length=64), NoNul] = None,
    customer: Column = None,
    date: Column = None,
    amount: Column = None,
    order_id: Column = None,
    sheet: Column = None,
) -> ImportResultOut:
    """Import one file in one transaction: all of its rows land, or none.

    The same file again changes nothing and answers 200 with ``already_imported``.
    """
    filename = _safe_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="patron-upload-") as directory:
        path = FilePath(directory) / filename
        with path.open("wb") as target:
            shutil.copyfileobj(file.file, target, 1024 * 1024)
        try:
            result = imports.import_file(
                session,
                path,
                kind=kind,
                source=source,
                actor=user,
                customer=customer,
                date=date,
                amount=amount,
                order_id=order_id,
                sheet=sheet,
                filename=filename,
            )
        except InputError as exc:
            _hide_temp_path(exc, path, filename)
            raise
    if result.already_imported:
        response.status_code = 200
    return ImportResultOut.model_validate(
        {
            **ImportBatchOut.model_validate(result.batch).model_dump(),
            "already_imported": result.already_imported,
        }
    )


@router.get("/imports", response_model=Page[ImportBatchOut])
def list_batches(
    session: SessionDep,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Page[ImportBatchOut]:
    """The imports, newest first."""
    batches, total = imports.list_batches(session, limit=limit, offset=offset)
    return Page[ImportBatchOut](
        items=[ImportBatchOut.model_validate(b) for b in batches], total=total
    )


@router.get("/imports/{batch_id}", response_model=ImportBatchOut)
def get_batch(session: SessionDep, user: Reader, batch_id: BatchId) -> ImportBatchOut:
    """One import with its counts and report."""
    return ImportBatchOut.model_validate(imports.get_batch(session, batch_id))


@router.get(
    "/imports/{batch_id}/rejected.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with BOM"}},
)
def rejected_rows(
    request: Request, session: SessionDep, user: Reader, batch_id: BatchId
) -> Response:
    """The rejected rows with line, reason, column and value (not for masked roles).

    The rows hold the file's raw cells, personal data included, which cannot be masked
    reliably, so a role that sees personal data masked gets a 403.
    """
    if permissions.masks_personal_data(user):
        message = _("api.personal_data_hidden", lang=request_language(request), role=user.role)
        raise Forbidden(message)
    batch = imports.get_batch(session, batch_id)
    text = batch.rejected_csv or ""
    if not text.startswith("\ufeff"):
        text = "\ufeff" + text
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rejected-{batch.id}.csv"'},
    )
