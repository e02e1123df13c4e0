"""The one door to the text analyser: sentiment and topics of a comment, on save.

The analyser lives in :mod:`patron.feedback` and can be replaced there; the feedback
services only need its three answers, stored with the record so lists, filters and
metrics never analyse text again.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TextFacts", "analyse"]


@dataclass(frozen=True)
class TextFacts:
    """What is stored of an analysis: the sentiment, its score, topics and language."""

    sentiment: str
    score: float
    topics: list[str]
    language: str


def analyse(text: str, lang: str | None = None) -> TextFacts:
    """Analyse ``text`` with the installed analyser (``lang`` None: detected from the text)."""
    result = _analyser().analyse(text, lang)
    return TextFacts(
        sentiment=result.sentiment,
        score=max(-1.0, min(1.0, float(result.score))),
        topics=[str(code) for code in result.topics],
        language=result.language,
    )


def _analyser():
    # The analyser in use: the lexicon one unless another was installed with set_analyser.
    from patron.feedback.text import get_analyser

    return get_analyser()
