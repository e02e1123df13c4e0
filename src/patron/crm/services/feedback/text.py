"""The one door to the text analyser: sentiment and topics of a comment, on save.

The analyser lives in :mod:`patron.feedback` and can be replaced there; the feedback
services only need its three answers, stored with the record so lists, filters and
metrics never analyse text again. Without a replacement, the shipped dictionaries apply
with the business's own words and topics from the ``[feedback]`` table of its
``patron.toml`` (:mod:`patron.crm.config_file`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TextFacts", "analyse", "analyser"]


@dataclass(frozen=True)
class TextFacts:
    """What is stored of an analysis: the sentiment, its score, topics and language."""

    sentiment: str
    score: float
    topics: list[str]
    language: str


def analyse(text: str, lang: str | None = None) -> TextFacts:
    """Analyse ``text`` with the installed analyser (``lang`` None: detected from the text)."""
    result = analyser().analyse(text, lang)
    return TextFacts(
        sentiment=result.sentiment,
        score=max(-1.0, min(1.0, float(result.score))),
        topics=[str(code) for code in result.topics],
        language=result.language,
    )


def analyser():
    """The analyser in use, chosen in this order.

    One installed with ``set_analyser``; else the lexicon with the ``[feedback]`` words and
    topics of ``patron.toml``; else the shipped lexicon.
    """
    from patron.crm.config_file import config_path, read_cached
    from patron.feedback.registry import get_analyser, installed_analyser
    from patron.feedback.settings import analyser_from_config

    path = config_path()
    if installed_analyser() is not None or path is None:
        return get_analyser()
    try:
        return read_cached(path, analyser_from_config)
    except FileNotFoundError:
        return analyser_from_config(path)  # raises the InputError that names the file
