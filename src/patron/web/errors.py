"""Every refusal as one JSON shape, ``{"code", "message", "field"}``, in the reader's language.

A client (or a page's script) handles one shape whatever went wrong: a service refusing
(:class:`~patron.crm.services.errors.ServiceError` carries its HTTP status), a request
FastAPI could not validate, an HTTP error of the router, or a uniqueness constraint the
database enforced. Bad input must never end as a 500, so each of these is mapped here; a
real bug still is a 500, and still raises in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from patron.crm.services.errors import ServiceError
from patron.errors import InputError
from patron.i18n import _, catalogue

__all__ = [
    "NotAuthenticated",
    "error_body",
    "error_response",
    "install_error_handlers",
    "validation_message",
]

log = logging.getLogger(__name__)

#: Renders an error for a page (not ``/api/``) path, or returns None to answer in JSON.
PageErrorRenderer = Callable[[Request, int, dict[str, Any]], Response | None]


class NotAuthenticated(ServiceError):
    """No valid token or session came with the request (HTTP 401)."""

    code, status = "not_authenticated", 401


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The one error shape of the API."""
    return {"code": code, "message": message, "field": field}


def error_response(
    request: Request,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    """The error as JSON, or as the page renderer draws it for a non-API path."""
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    renderer: PageErrorRenderer | None = getattr(request.app.state, "page_error_renderer", None)
    if renderer is not None and not request.url.path.startswith("/api/"):
        page = renderer(request, status, body)
        if page is not None:
            return page
    return JSONResponse(body, status_code=status, headers=headers)


def _language(request: Request) -> str:
    from patron.web.deps import request_language

    return request_language(request)


def _service_error(request: Request, exc: ServiceError) -> Response:
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after)))
    return error_response(
        request, exc.status, error_body(exc.code, exc.message, exc.field), headers
    )


def _input_error(request: Request, exc: InputError) -> Response:
    # A user's mistake found below the services (an unreadable upload, a missing column).
    return error_response(request, 422, error_body("invalid_input", str(exc), exc.column))


def _integrity_error(request: Request, exc: IntegrityError) -> Response:
    # The database refused a duplicate that a concurrent request inserted first.
    log.info("integrity error answered with 409: %s", exc)
    message = _("api.conflict", lang=_language(request))
    return error_response(request, 409, error_body("conflict", message))


def _http_error(request: Request, exc: HTTPException) -> Response:
    lang = _language(request)
    key = f"api.http.{exc.status_code}"
    if key in catalogue("en"):
        message = _(key, lang=lang, method=request.method)
    elif isinstance(exc.detail, str) and exc.status_code < 500:
        message = exc.detail
    else:
        message = _("api.http.other", lang=lang, status=exc.status_code)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(request, exc.status_code, error_body(code, message), exc.headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {"type": "invalid", "loc": (), "msg": ""}
    # A JSON syntax error's location is a character offset, not a field.
    field = None if first.get("type") == "json_invalid" else _field_name(first.get("loc", ()))
    message = validation_message(first, field, lang=_language(request))
    return error_response(request, 422, error_body("invalid", message, field))


def _field_name(loc: Sequence[Any]) -> str | None:
    """``("body", "tags", 2)`` -> ``"tags.2"``; the whole body -> None.

    >>> _field_name(("body", "tags", 2)), _field_name(("body", "consents", "fax", "[key]"))
    ('tags.2', 'consents.fax')
    >>> _field_name(("body",)), _field_name(("query", "limit"))
    (None, 'limit')
    """
    if loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    return ".".join(str(p) for p in loc if p != "[key]") or None


_LOCATIONS = ("body", "query", "path", "header", "cookie")

# pydantic error types -> (message key, what the field should be).
_TYPES = {
    "string_type": "expected_string",
    "int_type": "expected_integer",
    "int_parsing": "expected_integer",
    "int_from_float": "expected_integer",
    "float_type": "expected_number",
    "float_parsing": "expected_number",
    "decimal_type": "expected_number",
    "decimal_parsing": "expected_number",
    "bool_type": "expected_boolean",
    "bool_parsing": "expected_boolean",
    "dict_type": "expected_object",
    "model_type": "expected_object",
    "model_attributes_type": "expected_object",
    "list_type": "expected_list",
    "upload_file_type": "expected_file",
    "value_error": None,
}


def validation_message(error: dict[str, Any], field: str | None, *, lang: str) -> str:
    """One translated sentence for one pydantic error (pydantic's own text is English)."""
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    name = field or _("api.validation.body", lang=lang)

    def say(key: str, **values: object) -> str:
        return _(f"api.validation.{key}", lang=lang, field=name, **values)

    if kind == "json_invalid":
        return say("malformed_json")
    if kind == "missing":
        return say("missing")
    if kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length", "?")
        return say("too_long" if kind == "string_too_long" else "too_many", limit=limit)
    if kind in ("string_too_short", "too_short"):
        return say("too_short", limit=ctx.get("min_length", "?"))
    if kind.startswith("date_") or kind == "date_type":
        return say("bad_date")
    if kind == "timezone_aware":
        return say("need_timezone")
    if kind.startswith("datetime_") or kind.startswith("time_"):
        return say("bad_datetime")
    if kind in ("enum", "literal_error"):
        return say("choice", choices=str(ctx.get("expected", "")).replace("'", ""))
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        ops = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<"}
        op = ops.get(kind, "≤")
        limit = next(iter(ctx.values()), "?")
        return say("range", bound=f"{op} {limit}")
    if kind == "string_pattern_mismatch":
        return say("pattern")
    if kind == "extra_forbidden":
        return say("unknown_field")
    if kind in ("dict_type", "model_type", "model_attributes_type") and field is None:
        return say("body_type")
    expected = _TYPES.get(kind)
    if expected:
        return say("wrong_type", expected=_(f"api.validation.{expected}", lang=lang))
    detail = str(error.get("msg", "")).removeprefix("Value error, ")
    return say("invalid", detail=detail)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every refusal as ``{"code", "message", "field"}``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
