"""The dictionaries behind :class:`~patron.feedback.LexiconAnalyser`, one per language.

The shipped dictionaries live in ``data/lexicon.toml`` (readable and editable without
touching code); a business adds its own topics and words on top, from ``patron.toml`` or the
analyser's constructor.  English entries are stored as the tokeniser would produce them
(``"doesn't work"`` becomes ``"does not work"``), so a phrase matches the way it is written.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from patron.feedback.analysis import Language, detect_language
from patron.feedback.tokens import tokenise_en

__all__ = ["Lexicon", "TopicSpec", "build_lexicon", "shipped_data", "topic_keywords"]

# Weights of the sentiment classes in lexicon.toml.
WEIGHTS = {
    "strong_positive": 2.0,
    "positive": 1.0,
    "weak_positive": 0.5,
    "slight_negative": -0.3,
    "weak_negative": -0.5,
    "negative": -1.0,
    "strong_negative": -2.0,
}
_LANG_KEY: dict[Language, str] = {"zh-CN": "zh", "en": "en"}

# A topic's keywords: one list for both languages (each keyword's script tells which), or a
# table with "zh" and "en" lists.
TopicSpec = Iterable[str] | Mapping[str, Iterable[str]]


@dataclass(frozen=True)
class Lexicon:
    """Everything the analyser knows about one language."""

    language: Language
    words: Mapping[str, float]
    negators: frozenset[str]
    intensifiers: Mapping[str, float]
    post_modifiers: Mapping[str, float]
    contrast: frozenset[str]
    concession: frozenset[str]
    irrealis: frozenset[str]
    question: frozenset[str]
    excess_markers: frozenset[str]
    excess_words: frozenset[str]
    expect_words: frozenset[str]
    scaled: Mapping[str, float]
    aspects: Mapping[str, float]
    topics: Mapping[str, frozenset[str]]
    vocabulary: frozenset[str]
    longest: int

    @property
    def joiner(self) -> str:
        """How tokens join into a phrase: nothing in Chinese, a space in English."""
        return "" if self.language == "zh-CN" else " "


@cache
def shipped_data() -> dict[str, Any]:
    """The parsed ``data/lexicon.toml`` shipped with patron."""
    text = resources.files("patron.feedback").joinpath("data/lexicon.toml").read_text("utf-8")
    return tomllib.loads(text)


def _key(language: Language, entry: str) -> str:
    entry = entry.strip().lower()
    if language == "en":
        return " ".join(tokenise_en(entry))
    return entry.replace(" ", "")


def _belongs(entry: str, language: Language) -> bool:
    # Chinese comments carry Latin words too (APP, bug, yyds): a Latin entry serves both.
    return language == "zh-CN" or detect_language(entry) == "en"


def topic_keywords(spec: TopicSpec, language: Language) -> list[str]:
    """The keywords of one topic spec that serve ``language``.

    A plain list serves both languages by script: Chinese keywords Chinese text only, Latin
    ones both (Chinese comments say APP and DHL).

    >>> topic_keywords(["保修", "warranty"], "en"), topic_keywords(["保修", "warranty"], "zh-CN")
    (['warranty'], ['保修', 'warranty'])
    >>> topic_keywords({"zh": ["闪送"], "en": ["same-day"]}, "en")
    ['same-day']
    """
    if isinstance(spec, Mapping):
        return [str(k) for k in spec.get(_LANG_KEY[language], ())]
    return [str(k) for k in spec if _belongs(str(k), language)]


def build_lexicon(
    language: Language,
    *,
    topics: Mapping[str, TopicSpec] | None = None,
    replace_topics: bool = False,
    extra_positive: Iterable[str] = (),
    extra_negative: Iterable[str] = (),
) -> Lexicon:
    """The shipped dictionaries of ``language`` with a business's additions.

    ``topics`` adds keywords to the shipped topics (or new topics); with ``replace_topics``
    they are the only topics.  ``extra_positive`` and ``extra_negative`` are words of plain
    weight (1.0) in either language; each goes to the language of its script.
    """
    data = shipped_data()
    section = data[_LANG_KEY[language]]
    modifiers = section["modifiers"]

    def keys(entries: Iterable[str]) -> frozenset[str]:
        return frozenset(_key(language, e) for e in entries)

    def weights(table: Mapping[str, float]) -> dict[str, float]:
        return {_key(language, k): float(v) for k, v in table.items()}

    words: dict[str, float] = {}
    for name, weight in WEIGHTS.items():
        for entry in section["sentiment"].get(name, ()):
            words[_key(language, entry)] = weight
    for entries, weight in ((extra_positive, 1.0), (extra_negative, -1.0)):
        for entry in entries:
            if _belongs(entry, language):
                words[_key(language, entry)] = weight

    merged: dict[str, set[str]] = {}
    if not replace_topics:
        for code, spec in data["topics"].items():
            merged[code] = set(topic_keywords(spec, language))
    for code, spec in (topics or {}).items():
        merged.setdefault(code, set()).update(topic_keywords(spec, language))
    topic_table = {
        code: frozenset(_key(language, k) for k in kws if k.strip()) for code, kws in merged.items()
    }

    scaled = dict.fromkeys(keys(section["scaled"]["high"]), 1.0)
    scaled.update(dict.fromkeys(keys(section["scaled"]["low"]), -1.0))
    parts: dict[str, Any] = {
        "words": words,
        "negators": keys(modifiers["negators"]),
        "intensifiers": weights(section["intensifiers"]),
        "post_modifiers": weights(section.get("post_modifiers", {})),
        "contrast": keys(modifiers["contrast"]),
        "concession": keys(modifiers["concession"]),
        "irrealis": keys(modifiers["irrealis"]),
        "question": keys(modifiers["question"]),
        "excess_markers": keys(modifiers["excess_markers"]),
        "excess_words": keys(modifiers["excess_words"]),
        "expect_words": keys(modifiers["expect_words"]),
        "scaled": scaled,
        "aspects": weights(section["aspects"]),
    }
    vocabulary = frozenset(
        entry for entries in [*parts.values(), *topic_table.values()] for entry in entries if entry
    )
    # English entries count in tokens; a Chinese one may span up to four jieba tokens.
    longest = max(len(e.split(" ")) for e in vocabulary) if language == "en" else 4
    return Lexicon(
        language=language, topics=topic_table, vocabulary=vocabulary, longest=longest, **parts
    )


def shipped_zh_words() -> set[str]:
    """Every Chinese entry of the shipped dictionaries, for jieba's dictionary."""
    lexicon = build_lexicon("zh-CN")
    return {w for w in lexicon.vocabulary if len(w) > 1 and detect_language(w) == "zh-CN"}
