"""Survey links: signed, expiring, single-use tokens that need no login.

A token is ``<payload>.<signature>``, both URL-safe base64: the payload holds the
invitation id, the expiry (Unix seconds) and 16 random bytes; the signature is the first
16 bytes of HMAC-SHA256 over the payload. The signature lets the public page tell a
tampered or truncated link ("not a valid link") from an expired one without guessing,
and the expiry cannot be changed without breaking it. Only the token's SHA-256 digest is
stored, and the link must match it too: someone holding the database (and so a generated
key) can still not make a link that answers, because the random part never left the
message that carried it.

The key is ``PATRON_SECRET_KEY`` when the environment sets one (several servers then share
it); otherwise a random key is generated on first use and kept in ``survey_keys``. The
signing key is derived from it for this one purpose, so the same secret can serve others.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from patron.crm.tables import SurveyKey

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "SECRET_ENV",
    "KEY_NAME",
    "LinkToken",
    "BadToken",
    "signing_key",
    "make_token",
    "read_token",
    "token_digest",
]

SECRET_ENV = "PATRON_SECRET_KEY"
KEY_NAME = "survey-links"
_PURPOSE = b"patron survey link v1"
_PAYLOAD = struct.Struct(">QQ16s")  # invitation id, expiry (Unix seconds), random nonce
_SIGNATURE_BYTES = 16


class BadToken(ValueError):
    """The text is not a token this server signed (malformed, or the signature is wrong)."""


@dataclass(frozen=True)
class LinkToken:
    """What a verified token says: which invitation, and until when it may be answered."""

    invitation_id: int
    expires_at: dt.datetime


def signing_key(session: Session, *, create: bool = False) -> bytes | None:
    """The key that signs survey links, derived from the configured or stored secret.

    Parameters
    ----------
    create
        Generate and store a secret when there is neither ``PATRON_SECRET_KEY`` nor a
        stored one (making links does; checking one does not: without a key no valid link
        can exist, and a page view must not write).

    Returns
    -------
    bytes or None
        ``None`` only when ``create`` is false and no secret exists yet.
    """
    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret:
        secret = _stored_secret(session, create=create)
        if secret is None:
            return None
    return hmac.new(secret.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()


def _stored_secret(session: Session, *, create: bool) -> str | None:
    found = session.scalar(select(SurveyKey.secret).where(SurveyKey.name == KEY_NAME))
    if found is not None or not create:
        return found
    try:
        with session.begin_nested():
            session.add(SurveyKey(name=KEY_NAME, secret=secrets.token_urlsafe(48)))
    except IntegrityError:
        # Another request stored one first (on PostgreSQL we waited for its commit): use it.
        pass
    return session.scalar(select(SurveyKey.secret).where(SurveyKey.name == KEY_NAME))


def make_token(key: bytes, invitation_id: int, expires_at: dt.datetime) -> str:
    """A new link token for ``invitation_id``, valid until ``expires_at`` (aware)."""
    payload = _PAYLOAD.pack(invitation_id, int(expires_at.timestamp()), secrets.token_bytes(16))
    return f"{_b64(payload)}.{_b64(_sign(key, payload))}"


def read_token(key: bytes | None, token: str) -> LinkToken:
    """Verify ``token``'s signature and say what it holds (the expiry is not judged here).

    Raises
    ------
    BadToken
        The token is malformed, or was not signed with ``key`` (tampered, or made by
        another server), or there is no key at all.
    """
    if key is None or not isinstance(token, str) or len(token) > 200:
        raise BadToken("no such link")
    payload_text, dot, signature_text = token.partition(".")
    if not dot:
        raise BadToken("malformed link")
    try:
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except (binascii.Error, ValueError):
        raise BadToken("malformed link") from None
    if len(payload) != _PAYLOAD.size or not hmac.compare_digest(signature, _sign(key, payload)):
        raise BadToken("bad signature")
    invitation_id, expires, _nonce = _PAYLOAD.unpack(payload)
    return LinkToken(invitation_id, dt.datetime.fromtimestamp(expires, dt.UTC))


def token_digest(token: str) -> str:
    """The SHA-256 hex digest of ``token``: what is stored instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _sign(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    # Reject non-canonical spellings (padding, other alphabets): one link, one spelling.
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64")
    return data
