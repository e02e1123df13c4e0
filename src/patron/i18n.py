"""Message catalogues: every user-facing string, in zh-CN and en.

Code refers to messages by key (``_("ingest.empty", file=...)``); the text lives in
``locales/<lang>.toml`` plus one file per part of the application in ``locales/<lang>/``
(``locales/en/web.toml``), so translators never touch code, parts can grow without editing
one shared file, and a test can check both catalogues carry the same keys and
placeholders.
"""

from __future__ import annotations

import contextlib
import locale
import os
import tomllib
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from importlib import resources

__all__ = ["LANGUAGES", "_", "get_language", "set_language", "use_language", "catalogue"]

LANGUAGES = ("en", "zh-CN")
_current: str | None = None
# The language of the work in hand (a web request), over the process's: one server answers
# each user in their own language, and threads and tasks carry it with them.
_in_context: ContextVar[str | None] = ContextVar("patron_language", default=None)


def _normalise(lang: str | None) -> str | None:
    if not lang:
        return None
    lang = lang.replace("_", "-").lower()
    if lang.startswith("zh"):
        return "zh-CN"
    if lang.startswith("en"):
        return "en"
    return None


def get_language() -> str:
    """The language in use: `use_language`, `set_language`, ``PATRON_LANG``, the locale, en."""
    if lang := _in_context.get():
        return lang
    if _current:
        return _current
    for candidate in (os.environ.get("PATRON_LANG"), os.environ.get("LANG")):
        lang = _normalise(candidate)
        if lang:
            return lang
    return _normalise(locale.getlocale()[0]) or "en"


def set_language(lang: str | None) -> None:
    """Choose the language for this process (``None`` goes back to the environment)."""
    global _current
    if lang is not None and _normalise(lang) is None:
        raise ValueError(f"unsupported language {lang!r}; choose one of {LANGUAGES}")
    _current = _normalise(lang)


@contextlib.contextmanager
def use_language(lang: str | None) -> Iterator[None]:
    """Within this block (this thread or task only), messages are in ``lang``."""
    token = _in_context.set(_normalise(lang))
    try:
        yield
    finally:
        _in_context.reset(token)


@cache
def catalogue(lang: str) -> dict[str, str]:
    """All messages of one language, flattened to dotted keys."""
    root = resources.files("patron").joinpath("locales")
    texts = [root.joinpath(f"{lang}.toml").read_text("utf-8")]
    parts = root.joinpath(lang)
    if parts.is_dir():
        names = sorted(p.name for p in parts.iterdir() if p.name.endswith(".toml"))
        texts += [parts.joinpath(name).read_text("utf-8") for name in names]
    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(name + ".", value)
            elif name in flat:
                raise KeyError(f"message {name!r} is defined twice in the {lang} catalogue")
            else:
                flat[name] = value

    for text in texts:
        walk("", tomllib.loads(text))
    return flat


def _(key: str, /, lang: str | None = None, **values: object) -> str:
    """Translate ``key`` and fill in its ``{placeholders}``.

    A key missing from the chosen language falls back to English; a key missing from both is
    a bug in patron and raises ``KeyError``.
    """
    lang = _normalise(lang) or get_language()
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue("en")[key]
    return text.format(**values) if values else text
