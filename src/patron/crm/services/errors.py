"""What a service refuses, in terms the API maps to HTTP and the CLI to exit code 2.

Each error carries a translated message and, where one field is at fault, its name, so the
API can answer ``{"code", "message", "field"}`` and a form can mark the right input.
"""

from __future__ import annotations

from patron.errors import InputError, PatronError

__all__ = ["ServiceError", "NotFound", "Conflict", "Forbidden", "Invalid"]


class ServiceError(PatronError):
    """Root of the refusals below; ``code`` is the stable machine-readable name."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(ServiceError):
    """The object does not exist (HTTP 404)."""

    code, status = "not_found", 404


class Conflict(ServiceError):
    """The change clashes with the current state: a duplicate, a stale write (HTTP 409)."""

    code, status = "conflict", 409


class Forbidden(ServiceError):
    """The user's role does not allow this (HTTP 403)."""

    code, status = "forbidden", 403


class Invalid(ServiceError, InputError):
    """A value the user gave cannot be used (HTTP 422; CLI exit 2)."""

    code, status = "invalid", 422
