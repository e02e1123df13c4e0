"""Splitting feedback into tokens: jieba for Chinese, a small regular expression for English.

jieba is imported and its dictionary loaded on first use, once per process (loading takes
about a second and ~80 MB), with its log lines silenced: a web request or a CLI command
that never analyses Chinese text pays nothing for it.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterable
from typing import Any

__all__ = ["tokenise_en", "tokenise_zh", "add_zh_words"]

_lock = threading.Lock()
_tokenizer: Any = None
_pending: set[str] = set()

_CONTRACTIONS = (
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bcan'?t\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bain'?t\b"), "is not"),
    (re.compile(r"\bshan'?t\b"), "shall not"),
    (
        re.compile(
            r"\b(do|does|did|is|are|was|were|have|has|had|would|could|should|must|need)n'?t\b"
        ),
        r"\1 not",
    ),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"\b(i|you|we|they|he|she|it|that|there)'d\b"), r"\1 would"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"\bi'm\b"), "i am"),
)
_EN_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[$£€¥?!.,;:]")
# Punctuation tokens that end a clause in both languages (after NFKC normalisation).
CLAUSE_ENDS = frozenset(",;:，；：、")
SENTENCE_ENDS = frozenset(".!?。！？\n…~")


def tokenise_en(text: str) -> list[str]:
    """Lower-case words and punctuation, with negative contractions spelt out.

    >>> tokenise_en("Didn't work, can't log in!")
    ['did', 'not', 'work', ',', 'can', 'not', 'log', 'in', '!']
    """
    text = text.lower().replace("\u2019", "'")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    tokens = []
    for token in _EN_TOKEN.findall(text):
        if token.endswith("'s"):
            token = token[:-2]
        tokens.append(token)
    return tokens


def add_zh_words(words: Iterable[str]) -> None:
    """Make jieba keep these words whole (before or after it is loaded)."""
    words = {w for w in words if len(w) > 1}
    with _lock:
        if _tokenizer is None:
            _pending.update(words)
        else:
            for word in sorted(words):
                _tokenizer.add_word(word)


def _jieba() -> Any:
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                with warnings.catch_warnings():
                    # jieba 0.42 imports pkg_resources (deprecated by newer setuptools) and
                    # has invalid escapes that Python 3.12 warns about while compiling.
                    warnings.simplefilter("ignore")
                    import jieba

                # jieba logs "Building prefix dict ..." at DEBUG on its own stderr handler.
                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in sorted(_pending):
                    tokenizer.add_word(word)
                _tokenizer = tokenizer
    return _tokenizer


def tokenise_zh(text: str) -> list[str]:
    """Tokens from jieba, lower-cased, without spaces.

    >>> tokenise_zh("物流很快 好评")
    ['物流', '很快', '好评']
    """
    return [t for t in _jieba().lcut(text.lower(), HMM=True) if t.strip()]
