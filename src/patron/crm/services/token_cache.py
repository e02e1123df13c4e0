"""A short per-process memory of verified API tokens: a busy client's token costs no query.

An API client sends its bearer token with every request; checking it is a query, a round
trip to the database that under load costs as much as a small search. So
:func:`patron.crm.services.auth.token_user` remembers, for :data:`TTL_SECONDS`, that a
token digest belongs to an active user, and hands each session its own copy of the user
(``Session.merge(load=False)``: no query, and changes made to it are still flushed).

How stale it may be:

- a token revoked, a user disabled, renamed or given another role *in this process*
  (through the ORM: :func:`~patron.crm.services.auth.revoke_api_token`,
  :func:`~patron.crm.services.users.update_user`, a page or the API) empties the memory
  when the change is flushed and again when it is committed: it takes effect at once;
- the same change made by *another* process (another ``patron serve`` worker, the
  command line, SQL by hand) takes effect within :data:`TTL_SECONDS`.

Only tokens that were valid are remembered (an unknown token never fills the memory), at
most :data:`MAX_ENTRIES` of them. Set ``TTL_SECONDS = 0`` to check every request.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, make_transient_to_detached

from patron.crm.tables import ApiToken, User

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "TTL_SECONDS",
    "MAX_ENTRIES",
    "generation",
    "lookup",
    "lookup_detached",
    "remember",
    "forget_all",
]

#: How long a verified token is believed without asking the database again.
TTL_SECONDS = 5.0
#: At most this many tokens are remembered (the memory starts over when full).
MAX_ENTRIES = 10_000

_lock = threading.Lock()
_entries: dict[str, tuple[float, User]] = {}
_generation = 0
_DIRTY = "patron_token_cache_dirty"  # session.info key: a change to forget at commit
_now = time.monotonic


def generation() -> int:
    """A number that changes whenever the memory is emptied.

    Read it before the query that verifies a token and hand it to :func:`remember`: an
    answer read before a revocation is then not remembered after it.
    """
    return _generation


def lookup(session: Session, token_digest: str) -> User | None:
    """The user of a remembered token, as an object of ``session``; ``None`` if unknown."""
    if TTL_SECONDS <= 0:
        return None
    entry = _entries.get(token_digest)
    if entry is None or entry[0] <= _now():
        return None
    if inspect(entry[1]).key in session.identity_map:
        # The session holds the user already, perhaps changed and not yet flushed: the
        # query (which flushes first) decides, not a copy that would overwrite it.
        return None
    return session.merge(entry[1], load=False)


def lookup_detached(token_digest: str) -> User | None:
    """The user of a remembered token as an object of no session; ``None`` if unknown.

    The memory's own object, shared by every request that asks (a copy per request cost
    6% of a points write): read it, never change it or add it to a session --
    ``session.merge(user, load=False)`` gives a session its own copy.
    """
    if TTL_SECONDS <= 0:
        return None
    entry = _entries.get(token_digest)
    if entry is None or entry[0] <= _now():
        return None
    return entry[1]


def _copy(user: User) -> User:
    copy = User(**{attr.key: getattr(user, attr.key) for attr in inspect(User).column_attrs})
    make_transient_to_detached(copy)  # as if loaded: merge(load=False) copies it as is
    return copy


def remember(token_digest: str, user: User, seen_generation: int) -> None:
    """Remember that ``token_digest`` is a valid token of ``user`` (an active user).

    Nothing is remembered when the memory was emptied since ``seen_generation``.
    """
    if TTL_SECONDS <= 0:
        return
    copy = _copy(user)
    with _lock:
        if seen_generation != _generation:
            return
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[token_digest] = (_now() + TTL_SECONDS, copy)


def forget_all() -> None:
    """Empty the memory (every token is checked against the database again)."""
    global _generation
    with _lock:
        _entries.clear()
        _generation += 1


def _changes_logins(objects: Iterable[object]) -> bool:
    for obj in objects:
        if isinstance(obj, User):
            return True
        if isinstance(obj, ApiToken):
            changed = {a.key for a in inspect(obj).attrs if a.history.has_changes()}
            if changed - {"last_used_at"}:  # token_user's own bookkeeping changes nothing
                return True
    return False


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: object) -> None:
    if _changes_logins(session.dirty) or _changes_logins(session.deleted):
        session.info[_DIRTY] = True
        forget_all()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # Again at commit: a request may have read the old row between the flush and now.
    if session.info.pop(_DIRTY, False):
        forget_all()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_DIRTY, False)
