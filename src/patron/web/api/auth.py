"""``POST /auth/token``: exchange a username and password for an API token."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from patron.crm.services import auth
from patron.web.deps import CurrentUser, SessionDep, client_ip
from patron.web.schemas import ErrorOut, TokenOut, TokenRequest, UserOut

__all__ = ["router"]

router = APIRouter(tags=["auth"])

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def login_form(request: Request) -> TokenRequest:
    """The credentials from an OAuth2 password form or from a JSON object."""
    content_type = request.headers.get("content-type", "")
    data: Any
    if content_type.startswith(_FORMS):
        data = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    else:
        body = await request.body()
        try:
            data = json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ("body",), "msg": str(exc), "input": None}]
            ) from exc
    try:
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from exc


_SCHEMA = TokenRequest.model_json_schema()
_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {"schema": _SCHEMA},
        "application/json": {"schema": _SCHEMA},
    },
}


@router.post(
    "/auth/token",
    response_model=TokenOut,
    openapi_extra={"requestBody": _BODY},
    responses={429: {"model": ErrorOut, "description": "Too many failed logins"}},
)
def issue_token(
    request: Request,
    session: SessionDep,
    credentials: Annotated[TokenRequest, Depends(login_form)],
) -> TokenOut:
    """A new API token (named "login") for the user; send it as ``Authorization: Bearer``.

    Repeated failures are refused with 429 and ``Retry-After``.
    """
    # A failure is committed all the same (it ``keeps_changes``, see get_session), so
    # that the rate limit counts it.
    user = auth.authenticate(
        session, credentials.username, credentials.password, ip=client_ip(request)
    )
    secret, _token = auth.create_api_token(session, user, name="login", actor=user)
    return TokenOut(access_token=secret)


@router.get("/auth/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    """The user the token or session belongs to."""
    return UserOut.model_validate(user)
