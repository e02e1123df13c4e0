"""What a text analyser returns, and the small interface every analyser implements.

The feedback loop needs three facts about a comment: is the customer pleased or not, how
strongly, and what the comment is about.  Callers depend only on :class:`TextAnalyser` and
:class:`Analysis`, so a better analyser (a trained model, a hosted service) can replace the
lexicon one through :func:`patron.feedback.set_analyser` without touching them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from patron.errors import InputError
from patron.i18n import _

__all__ = [
    "Analysis",
    "TextAnalyser",
    "SENTIMENTS",
    "LANGUAGES",
    "detect_language",
    "normalise_language",
]

Sentiment = Literal["positive", "neutral", "negative"]
Language = Literal["zh-CN", "en"]
SENTIMENTS: tuple[Sentiment, ...] = ("positive", "neutral", "negative")
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")

# CJK Unified Ideographs and extension A; enough to tell Chinese from English.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Analysis:
    """The sentiment and topics of one piece of feedback.

    Attributes
    ----------
    sentiment
        ``"positive"``, ``"neutral"`` or ``"negative"``.
    score
        From -1 (very negative) to 1 (very positive); the sentiment is its band, so a
        caller can rank complaints by how angry they sound.
    topics
        Topic codes (``"delivery"``, ``"price"``, ...) in the order the text mentions them.
    language
        ``"zh-CN"`` or ``"en"``: the language the text was analysed as.
    """

    sentiment: Sentiment
    score: float
    topics: tuple[str, ...]
    language: Language


@runtime_checkable
class TextAnalyser(Protocol):
    """Anything that can analyse a piece of feedback text."""

    def analyse(self, text: str, lang: str | None = None) -> Analysis:
        """Analyse ``text``; ``lang`` (``"zh-CN"``, ``"zh"``, ``"en"``) skips detection."""
        ...


def detect_language(text: str) -> Language:
    """Chinese when the text has at least as many Chinese characters as Latin words.

    Customers mix scripts (``APP老是闪退``, ``物流用的是DHL``), so one Latin word does not make a
    comment English, and one 字 in an English sentence does not make it Chinese.

    >>> detect_language("APP老是闪退"), detect_language("The 客服 was rude to me")
    ('zh-CN', 'en')
    """
    cjk = len(_CJK.findall(text))
    if cjk and cjk >= len(_LATIN_WORD.findall(text)):
        return "zh-CN"
    return "en"


def normalise_language(lang: str | None, text: str) -> Language:
    """``lang`` as one of :data:`LANGUAGES` (``zh``, ``zh_CN``, ``en-GB`` ...), or detected.

    >>> normalise_language("zh_cn", "hello"), normalise_language(None, "很好")
    ('zh-CN', 'zh-CN')
    """
    if not lang:
        return detect_language(text)
    code = lang.replace("_", "-").lower()
    if code.startswith("zh"):
        return "zh-CN"
    if code.startswith("en"):
        return "en"
    raise InputError(
        _("feedback.bad_language", value=lang, allowed=", ".join(LANGUAGES)),
        column="lang",
        value=lang,
    )
