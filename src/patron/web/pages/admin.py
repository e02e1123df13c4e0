"""Administration: the users (create, change role, disable) and the audit log.

A generated password is shown once, on the page that answers the form that created the
user: it is never stored in clear and never put in a URL.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from patron.crm.services import audit, users
from patron.crm.services.errors import Conflict, Invalid
from patron.crm.tables import ROLES
from patron.web.deps import SessionDep, csrf_protect
from patron.web.pages.customers import page_number
from patron.web.pages.render import Viewer, render
from patron.web.pages.routing import PageRoute, redirect, viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute)

AUDIT_PAGE_SIZE = 50


def _users_page(
    request: Request,
    session: SessionDep,
    v: Viewer,
    *,
    created: tuple[str, str | None] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    form: dict[str, str] | None = None,
    saved: str = "",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "admin/users.html.j2",
        v,
        status_code=status_code,
        users=users.list_users(session),
        roles=ROLES,
        created=created,
        error=error,
        error_field=error_field,
        form=form or {"username": "", "display_name": "", "role": "staff"},
        saved=saved,
    )


@router.get("/admin/users", name="users")
def user_list(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("users.manage"))],
    saved: str = "",
) -> Response:
    """Every user with their role and state, and the form to add one."""
    return _users_page(request, session, v, saved=saved)


@router.post("/admin/users", name="create_user", dependencies=[Depends(csrf_protect)])
def create_user(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("users.manage"))],
    username: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "staff",
    password: Annotated[str, Form()] = "",
) -> Response:
    """Add a user; without a password one is generated and shown on this page once."""
    form = {"username": username, "display_name": display_name, "role": role}
    try:
        with session.begin_nested():
            user, generated = users.create_user(
                session,
                username=username.strip(),
                role=role,
                password=password or None,
                display_name=display_name.strip(),
                actor=v.user,
            )
    except (Conflict, Invalid) as refusal:
        return _users_page(
            request,
            session,
            v,
            error=refusal.message,
            error_field=refusal.field or "username",
            form=form,
            status_code=refusal.status,
        )
    return _users_page(request, session, v, created=(user.username, generated), status_code=201)


@router.post("/admin/users/{user_id}", name="update_user", dependencies=[Depends(csrf_protect)])
def update_user(
    request: Request,
    user_id: int,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("users.manage"))],
    role: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
) -> Response:
    """Change a user's role, or disable (and enable again) their login."""
    user = users.get_user(session, user_id)
    changes: dict = {}
    if role:
        changes["role"] = role
    if active in ("0", "1"):
        changes["active"] = active == "1"
    if changes:
        try:
            with session.begin_nested():
                users.update_user(session, user, actor=v.user, **changes)
        except (Conflict, Invalid) as refusal:
            session.refresh(user)
            return _users_page(
                request, session, v, error=refusal.message, status_code=refusal.status
            )
    return redirect(f"/admin/users?saved={user.id}")


@router.get("/admin/audit", name="audit")
def audit_log(
    request: Request,
    session: SessionDep,
    v: Annotated[Viewer, Depends(viewer("audit.read"))],
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    actor: str = "",
    page: str = "1",
) -> Response:
    """The audit trail, newest first, filtered by action, object and actor."""
    number = page_number(page)
    try:
        actor_id = int(actor) if actor else None
    except ValueError:
        actor_id = None
    events, total = audit.list_events(
        session,
        limit=AUDIT_PAGE_SIZE,
        offset=(number - 1) * AUDIT_PAGE_SIZE,
        action=action.strip() or None,
        object_type=object_type.strip() or None,
        object_id=object_id.strip() or None,
        actor_id=actor_id,
    )
    return render(
        request,
        "admin/audit.html.j2",
        v,
        events=events,
        total=total,
        page=number,
        pages=max(math.ceil(total / AUDIT_PAGE_SIZE), 1),
        filters={
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "actor": actor,
        },
        users=users.list_users(session),
    )
