"""The default analyser: dictionaries and a handful of rules, in Chinese and English.

How a score is made:

1. The text is normalised (NFKC: full-width letters and punctuation become plain ones),
   its language detected, and it is tokenised (jieba for Chinese).  Tokens that join into a
   dictionary entry are merged, longest first (``waste`` ``of`` ``money``; ``没`` ``人``
   ``理``); a Chinese token jieba glued to a modifier (``太慢``, ``很差``, ``慢了``) is split
   so the modifier counts.
2. The text is cut into clauses at punctuation and at contrast words.  Each clause weighs
   1; a clause after 但是 / but weighs 1.5 and the ones before it in the sentence 0.5; a
   concession (虽然 / although) 0.5; a wish, suggestion or either-or question (希望 / hope /
   if, 合不合适) 0.2.  In a question, praise counts 0.2 of its weight (asking "is it good?"
   is no praise) and a complaint 0.6 ("why is it so slow?" is one).
3. Each sentiment word adds its weight (strong 2, plain 1, weak 0.5), times the
   intensifiers before it (很 / very 1.3, 非常 / extremely 1.6, 有点 / a bit 0.6) and after it
   (慢了点 0.6, 差极了 1.7).  A negator within three tokens turns praise into a complaint
   (x -0.9) and a complaint into mild praise (x -0.5: not bad, 不贵); "not very good" and
   不太好 are milder complaints than "not good".  In Chinese only modifiers may stand between
   the negator and its word (从来没见过这么差 negates 见过, not 差), except in a comparison
   (没有想象中那么好).  A negated expectation is a complaint (没收到,
   never arrived, didn't work); 太 / too + a neutral measure is one too (太大了, too tight);
   高 / high takes its sign from the aspect beside it (性价比高 against 价格高).
4. The score is ``s / sqrt(s^2 + 2)`` of the weighted sum ``s``, in (-1, 1); within
   ``neutral_band`` of 0 the sentiment is neutral.

Topics are the topics whose keywords occur (whole tokens, runs of tokens, or for Chinese a
keyword of two or more characters inside a longer token), in order of first mention.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from patron.feedback.analysis import LANGUAGES, Analysis, Language, normalise_language
from patron.feedback.lexicon import Lexicon, TopicSpec, build_lexicon, shipped_zh_words
from patron.feedback.tokens import (
    CLAUSE_ENDS,
    SENTENCE_ENDS,
    add_zh_words,
    tokenise_en,
    tokenise_zh,
)

__all__ = ["LexiconAnalyser"]

ALPHA = 2.0
NEUTRAL_BAND = 0.25
WINDOW = 3  # tokens before a sentiment word that can modify it

CONTRAST_AFTER = 1.5
CONTRAST_BEFORE = 0.5
CONCESSION = 0.5
IRREALIS = 0.2
QUESTION_PRAISE = 0.2
QUESTION_COMPLAINT = 0.6
NEGATED_PRAISE = -0.9
NEGATED_COMPLAINT = -0.5
NEGATED_EXPECTATION = -1.0
EXCESS = -0.8
NEGATION_OVER_INTENSIFIER = 0.7  # "not very good" is milder than "not good"

_ZH_PARTICLES = ("了", "的", "啊", "呀", "啦", "吧", "呢", "哦", "喔", "嘛", "哈")
_ZH_EXPECT_NEGATORS = ("没", "没有", "未", "还没", "不")
# Between a Chinese negator and the word it negates stand only modifiers (不太好, 没那么快);
# 从来没见过这么差 negates 见过, not 差.
_ZH_NEGATION_FILLERS = frozenset(
    "是 的 够 算 会 能 再 都 也 还 可能 一定 怎么 很 太 给 让 使 令 我 人 让人 让我 任何 被".split()
)
# 没有想象中那么好: the negator of a comparison stands further back.
_ZH_COMPARISON = frozenset(("那么", "这么", "那样", "这样"))
_ZH_COMPARISON_NEGATORS = frozenset(("没有", "并没有", "不像", "没"))
# Negators with a degree in them: 不太好 is milder than 不好.
_ZH_MILD_NEGATORS = frozenset(("不太", "不怎么", "不大", "不是很", "没那么", "不那么"))
# 好 before these is a degree adverb (好久, 好多, 好几天), not praise.
_ZH_DEGREE_HEADS = "多久几半长远大"
# 合不合适, 耐不耐穿, 好不好: the A-not-A question.
_A_NOT_A = re.compile(r"(.)[不没]\1")
_zh_words_added = False


@dataclass
class _Clause:
    terms: list[str]
    sentence: int
    contrast: bool = False
    question: bool = False
    choice: bool = False  # 合不合适: asks, and says neither


class LexiconAnalyser:
    """Lexicon-based sentiment and keyword topics for Chinese and English feedback.

    Parameters
    ----------
    topics
        Topic code -> keywords: a list in either language (each keyword's script says which)
        or a table ``{"zh": [...], "en": [...]}``.  Adds to the shipped topics (a known code
        gains keywords, a new code is a new topic).
    replace_topics
        Use only ``topics``, not the shipped ones.
    extra_positive, extra_negative
        The business's own words of praise or complaint (product names that are slang for
        "good", a competitor's name ...), weight 1, in either language.
    neutral_band
        Scores within this distance of 0 are neutral.

    Examples
    --------
    >>> a = LexiconAnalyser()
    >>> a.analyse("Delivery was slow, but the quality is excellent.")
    Analysis(sentiment='positive', score=0.8704, topics=('delivery', 'quality'), language='en')
    >>> a.analyse("客服态度很差，一直不回复").sentiment
    'negative'
    """

    def __init__(
        self,
        *,
        topics: Mapping[str, TopicSpec] | None = None,
        replace_topics: bool = False,
        extra_positive: Iterable[str] = (),
        extra_negative: Iterable[str] = (),
        neutral_band: float = NEUTRAL_BAND,
    ) -> None:
        extra_positive, extra_negative = tuple(extra_positive), tuple(extra_negative)
        self._lexicons: dict[Language, Lexicon] = {
            lang: build_lexicon(
                lang,
                topics=topics,
                replace_topics=replace_topics,
                extra_positive=extra_positive,
                extra_negative=extra_negative,
            )
            for lang in LANGUAGES
        }
        self.neutral_band = neutral_band

    @property
    def topics(self) -> tuple[str, ...]:
        """The topic codes this analyser can find."""
        codes = dict.fromkeys(self._lexicons["zh-CN"].topics)
        codes.update(dict.fromkeys(self._lexicons["en"].topics))
        return tuple(codes)

    def analyse(self, text: str, lang: str | None = None) -> Analysis:
        """Sentiment, score and topics of ``text`` (see the module docstring for how)."""
        text = unicodedata.normalize("NFKC", text or "").strip()
        language = normalise_language(lang, text)
        lexicon = self._lexicons[language]
        tokens = _tokens(text, lexicon)
        terms, starts = _merge(tokens, lexicon)
        total = 0.0
        for clause, weight in _weighted_clauses(terms, lexicon):
            for value in _values(clause.terms, lexicon):
                if clause.question:
                    value *= QUESTION_PRAISE if value > 0 else QUESTION_COMPLAINT
                total += weight * value
        score = total / math.sqrt(total * total + ALPHA)
        if score >= self.neutral_band:
            sentiment = "positive"
        elif score <= -self.neutral_band:
            sentiment = "negative"
        else:
            sentiment = "neutral"
        topics = _topics(tokens, terms, starts, lexicon)
        return Analysis(sentiment, round(score, 4), topics, language)


def _tokens(text: str, lexicon: Lexicon) -> list[str]:
    if lexicon.language == "en":
        return tokenise_en(text)
    global _zh_words_added
    if not _zh_words_added:
        add_zh_words(shipped_zh_words())
        # Keep 没收到 whole (jieba reads 没收 "confiscate" + 到); split again below.
        add_zh_words(n + e for n in _ZH_EXPECT_NEGATORS for e in lexicon.expect_words)
        _zh_words_added = True
    tokens: list[str] = []
    for token in tokenise_zh(text):
        tokens += _split_zh(token, lexicon)
    return tokens


def _split_zh(token: str, lexicon: Lexicon) -> list[str]:
    """Split what jieba glued to a dictionary word: 太慢, 慢了, 没收到, 态度恶劣, 弄坏."""
    vocabulary = lexicon.vocabulary
    if token in vocabulary or len(token) < 2:
        return [token]
    if token[-1] in _ZH_PARTICLES and token[:-1] in vocabulary:
        return [token[:-1], token[-1]]
    for n in (3, 2, 1):
        head, rest = token[:n], token[n:]
        if rest and (
            head in lexicon.negators
            or head in lexicon.intensifiers
            or head in lexicon.excess_markers
            or head in lexicon.contrast
        ):
            parts = _split_zh(rest, lexicon)
            if any(_is_predicate(p, lexicon) for p in parts):
                return [head, *parts]
    # A word ending in a complaint or praise: 态度恶劣, 速度快, 弄坏 (a verb and its result).
    # A two-character word ending in one character of praise is left alone (只好, 正好).
    for n in range(len(token) - 1, 0, -1):
        head, tail = token[:-n], token[-n:]
        weight = lexicon.words.get(tail)
        if weight is not None and (n > 1 or len(token) > 2 or weight < 0):
            return [*_split_zh(head, lexicon), tail]
    return [token]


def _is_predicate(term: str, lexicon: Lexicon) -> bool:
    return (
        term in lexicon.words
        or term in lexicon.excess_words
        or term in lexicon.scaled
        or term in lexicon.expect_words
    )


def _merge(tokens: list[str], lexicon: Lexicon) -> tuple[list[str], list[int]]:
    """Join runs of tokens that form a dictionary entry, longest first."""
    joiner = lexicon.joiner
    longest = lexicon.longest
    terms: list[str] = []
    starts: list[int] = []
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            candidate = joiner.join(tokens[i : i + n])
            if n == 1 or candidate in lexicon.vocabulary:
                terms.append(candidate)
                starts.append(i)
                i += n
                break
    return terms, starts


def _clauses(terms: list[str], lexicon: Lexicon) -> list[_Clause]:
    clauses: list[_Clause] = []
    sentence = 0
    current = _Clause([], sentence)

    def close() -> None:
        nonlocal current
        if current.terms:
            clauses.append(current)
        current = _Clause([], sentence)

    for term in terms:
        if term in SENTENCE_ENDS:
            if term == "?":
                current.question = True
                for clause in reversed(clauses):
                    if clause.sentence != sentence:
                        break
                    clause.question = True
            close()
            sentence += 1
            current.sentence = sentence
        elif term in CLAUSE_ENDS:
            close()
        elif term in lexicon.contrast:
            close()
            current.contrast = True
        else:
            current.terms.append(term)
    close()
    for clause in clauses:
        if lexicon.language == "zh-CN":
            if any(t in lexicon.question for t in clause.terms):
                clause.question = True
            if _A_NOT_A.search("".join(clause.terms)):
                clause.question = clause.choice = True
        elif clause.terms[0] in lexicon.question:
            clause.question = True
    return clauses


def _weighted_clauses(terms: list[str], lexicon: Lexicon) -> list[tuple[_Clause, float]]:
    clauses = _clauses(terms, lexicon)
    weights = [1.0] * len(clauses)
    for c, clause in enumerate(clauses):
        if clause.contrast:
            # A contrast opening a sentence answers the sentence before it.
            first = c == 0 or clauses[c - 1].sentence != clause.sentence
            scope = clause.sentence - 1 if first else clause.sentence
            for j in range(c):
                if clauses[j].sentence >= scope:
                    weights[j] *= CONTRAST_BEFORE
            for j in range(c, len(clauses)):
                if clauses[j].sentence == clause.sentence:
                    weights[j] *= CONTRAST_AFTER
        if any(t in lexicon.concession for t in clause.terms):
            weights[c] *= CONCESSION
        if clause.choice or any(t in lexicon.irrealis for t in clause.terms):
            weights[c] *= IRREALIS
    return list(zip(clauses, weights, strict=True))


def _values(terms: list[str], lexicon: Lexicon) -> Iterable[float]:
    """The signed value of every sentiment-bearing term of one clause."""
    for i, term in enumerate(terms):
        expectation = False
        if term in lexicon.intensifiers and _modifies(terms[i + 1 : i + 3], lexicon):
            continue  # 好久, 好慢, 真好看: an adverb here, not a word of its own
        if term in lexicon.words:
            base = lexicon.words[term]
        elif term in lexicon.scaled:
            sign = _aspect_sign(terms, i, lexicon)
            if not sign:
                continue
            base = lexicon.scaled[term] * sign
        elif (
            term in lexicon.excess_words
            and any(t in lexicon.excess_markers for t in terms[max(0, i - 2) : i])
            and not (i + 1 < len(terms) and terms[i + 1] in lexicon.words)  # 有点小瑕疵
        ):
            base = EXCESS
        elif term in lexicon.expect_words:
            base, expectation = NEGATED_EXPECTATION, True
        else:
            continue
        negated, multiplier, intensified = False, 1.0, False
        chinese = lexicon.language == "zh-CN"
        comparison = chinese and i > 0 and terms[i - 1] in _ZH_COMPARISON
        gap = False  # a Chinese word other than a modifier stands between
        for j in range(i - 1, max(-1, i - 1 - (6 if comparison else WINDOW)), -1):
            before = terms[j]
            if before in lexicon.negators:
                if gap and before not in _ZH_COMPARISON_NEGATORS:
                    break
                negated = not negated
                if intensified or before in _ZH_MILD_NEGATORS:
                    multiplier = min(multiplier, 1.0) * NEGATION_OVER_INTENSIFIER
            elif before in lexicon.intensifiers:  # before words: 好慢, 挺好 intensify
                multiplier *= lexicon.intensifiers[before]
                intensified = not negated
            elif before in lexicon.words or before in lexicon.expect_words:
                break  # that word's own modifiers
            elif chinese and before not in _ZH_NEGATION_FILLERS:
                if not comparison:
                    break
                gap = True
        for after in terms[i + 1 : i + 3]:
            if after in lexicon.post_modifiers:
                multiplier *= lexicon.post_modifiers[after]
                break
            if after not in _ZH_PARTICLES:
                break
        if expectation:
            if negated:
                yield base * multiplier
            continue
        if negated:
            # "not perfect" is no stronger a complaint than "not good".
            base = max(-1.0, min(base, 1.0))
            base *= NEGATED_PRAISE if base > 0 else NEGATED_COMPLAINT
        yield base * multiplier


def _modifies(following: list[str], lexicon: Lexicon) -> bool:
    """Whether a word that is also an intensifier (好, 真, so) modifies what follows."""
    if not following:
        return False
    if lexicon.language == "zh-CN" and following[0][0] in _ZH_DEGREE_HEADS:
        return following[1:2] != ["了"]  # 好久, 好多次; but 好多了 is "much better"
    return _is_predicate(following[0], lexicon)


def _aspect_sign(terms: list[str], i: int, lexicon: Lexicon) -> float:
    """The sign of the nearest aspect (价格 -1, 质量 +1) around a 高 / 低 at ``i``."""
    best, distance = 0.0, len(terms)
    for j, term in enumerate(terms):
        if term in lexicon.aspects and abs(j - i) < distance:
            best, distance = lexicon.aspects[term], abs(j - i)
    return best


def _topics(
    tokens: list[str], terms: list[str], starts: list[int], lexicon: Lexicon
) -> tuple[str, ...]:
    chinese = lexicon.language == "zh-CN"
    first: dict[str, int] = {}
    candidates = list(zip(starts, terms, strict=True)) + list(enumerate(tokens))
    for position, term in candidates:
        for code, keywords in lexicon.topics.items():
            if term in keywords or (
                chinese and len(term) > 2 and any(len(k) > 1 and k in term for k in keywords)
            ):
                if position < first.get(code, len(tokens) + 1):
                    first[code] = position
    return tuple(sorted(first, key=lambda code: (first[code], code)))
