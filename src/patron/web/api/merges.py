"""Merges: customers found to be one person, and by which rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from patron.crm.contacts import mask_email, mask_phone
from patron.crm.services import identity, permissions
from patron.crm.tables import User
from patron.web.deps import SessionDep, require
from patron.web.schemas import MergeOut, Page

__all__ = ["router"]

router = APIRouter(tags=["customers"])

_MASKS = {"phone": mask_phone, "email": mask_email}


@router.get("/merges", response_model=Page[MergeOut])
def list_merges(
    session: SessionDep,
    user: Annotated[User, Depends(require("merges.read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> Page[MergeOut]:
    """The merges, newest first; the matching phone or email is masked for analysts."""
    merges, total = identity.list_merges(session, limit=limit, offset=offset)
    items = [MergeOut.model_validate(m) for m in merges]
    if permissions.masks_personal_data(user):
        for item in items:
            item.key = _MASKS.get(item.rule, _mask_other)(item.key) or ""
    return Page[MergeOut](items=items, total=total)


def _mask_other(key: str | None) -> str:
    # A key of a rule that is not phone or email: keep nothing of it.
    return "***" if key else ""
