"""A business's own feedback dictionaries, from the ``[feedback]`` table of ``patron.toml``.

Example::

    [feedback]
    positive = ["yyds", "回头客"]        # words of praise the shipped lexicon lacks
    negative = ["踩雷", "lemon"]
    replace_topics = false               # true: only the topics below

    [feedback.topics]
    warranty = ["保修", "质保", "warranty", "guarantee"]     # a new topic, both languages
    delivery = { zh = ["闪送"], en = ["same-day"] }          # more keywords for a shipped one

Other tables of the file belong to other parts of patron and are left alone here; every key
of ``[feedback]`` is checked, so a typo is an :class:`~patron.errors.InputError` naming the
file and the key rather than a setting silently ignored.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patron.errors import InputError
from patron.feedback.lexicon import TopicSpec
from patron.feedback.lexicon_analyser import LexiconAnalyser
from patron.i18n import _

__all__ = ["FeedbackSettings", "load_feedback_settings", "analyser_from_config"]

_KEYS = ("topics", "replace_topics", "positive", "negative")
_TOPIC_CODE = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class FeedbackSettings:
    """The ``[feedback]`` table, checked; defaults add nothing to the shipped lexicon."""

    topics: Mapping[str, TopicSpec] = field(default_factory=dict)
    replace_topics: bool = False
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()

    def analyser(self) -> LexiconAnalyser:
        """A :class:`LexiconAnalyser` with these additions."""
        return LexiconAnalyser(
            topics=self.topics,
            replace_topics=self.replace_topics,
            extra_positive=self.positive,
            extra_negative=self.negative,
        )


def _words(value: Any, file: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise InputError(_("feedback.want_words", file=file, key=key), file=file, column=key)
    return tuple(value)


def _topic(value: Any, file: str, key: str) -> TopicSpec:
    if isinstance(value, list):
        return _words(value, file, key)
    if isinstance(value, dict) and value and set(value) <= {"zh", "en"}:
        return {lang: _words(words, file, f"{key}.{lang}") for lang, words in value.items()}
    raise InputError(
        _("feedback.bad_topic", file=file, key=key), file=file, column=key, value=value
    )


def load_feedback_settings(path: str | Path | None = None) -> FeedbackSettings:
    """Read the ``[feedback]`` table of ``path`` (no path, or no table: the defaults)."""
    if path is None:
        return FeedbackSettings()
    file = str(path)
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(_("value.no_config", file=file), file=file) from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(_("value.bad_toml", file=file, error=error), file=file) from None
    table = data.get("feedback", {})
    for key in table:
        if key not in _KEYS:
            raise InputError(
                _("feedback.unknown_key", file=file, key=key, known=", ".join(_KEYS)),
                file=file,
                column=f"feedback.{key}",
            )
    replace_topics = table.get("replace_topics", False)
    if not isinstance(replace_topics, bool):
        key = "feedback.replace_topics"
        raise InputError(_("feedback.want_bool", file=file, key=key), file=file, column=key)
    topics: dict[str, TopicSpec] = {}
    raw_topics = table.get("topics", {})
    if not isinstance(raw_topics, dict):
        key = "feedback.topics"
        raise InputError(_("feedback.bad_topic", file=file, key=key), file=file, column=key)
    for code, value in raw_topics.items():
        if not _TOPIC_CODE.fullmatch(code):
            raise InputError(
                _("feedback.bad_topic_code", file=file, value=code),
                file=file,
                column="feedback.topics",
                value=code,
            )
        topics[code] = _topic(value, file, f"feedback.topics.{code}")
    return FeedbackSettings(
        topics=topics,
        replace_topics=replace_topics,
        positive=_words(table.get("positive", []), file, "feedback.positive"),
        negative=_words(table.get("negative", []), file, "feedback.negative"),
    )


def analyser_from_config(path: str | Path | None = None) -> LexiconAnalyser:
    """The lexicon analyser a ``patron.toml`` asks for (``None``: the shipped one)."""
    return load_feedback_settings(path).analyser()
