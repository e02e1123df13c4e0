"""Measuring an analyser against labelled feedback: accuracy, macro F1 and topic recall.

Any :class:`~patron.feedback.TextAnalyser` can be scored, so a replacement analyser is
judged on the same sentences as the one it replaces (``bench/feedback_eval.py`` prints the
figures for patron's own set, ``tests/data/feedback_eval.csv``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from patron.feedback.analysis import SENTIMENTS, TextAnalyser

__all__ = ["Labelled", "Scores", "read_labelled", "split", "evaluate"]


@dataclass(frozen=True)
class Labelled:
    """One labelled comment: its language, text, sentiment and topic codes."""

    lang: str
    text: str
    label: str
    topics: frozenset[str]


def read_labelled(path: str | Path) -> list[Labelled]:
    """Rows of a UTF-8 CSV with columns ``lang,text,label,topics`` (topics ``;``-separated)."""
    with open(path, encoding="utf-8", newline="") as file:
        return [
            Labelled(
                row["lang"],
                row["text"],
                row["label"],
                frozenset(t for t in row["topics"].split(";") if t),
            )
            for row in csv.DictReader(file)
        ]


def split(
    rows: Sequence[Labelled], lang: str, dev_share: float = 0.7
) -> tuple[list[Labelled], list[Labelled]]:
    """The rows of one language, cut in file order into a dev and a held-out test part."""
    mine = [r for r in rows if r.lang == lang]
    cut = int(len(mine) * dev_share)
    return mine[:cut], mine[cut:]


@dataclass
class Scores:
    """How an analyser did on a set of labelled comments."""

    n: int = 0
    correct: int = 0
    # confusion[label][predicted]
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {a: dict.fromkeys(SENTIMENTS, 0) for a in SENTIMENTS}
    )
    topic_hits: int = 0  # topics found that the label has
    topic_found: int = 0  # topics found
    topic_labelled: int = 0  # topics labelled
    errors: list[tuple[Labelled, str, float, tuple[str, ...]]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Share of comments whose sentiment was right."""
        return self.correct / self.n if self.n else 0.0

    def f1(self, label: str) -> float:
        """F1 of one sentiment class."""
        tp = self.confusion[label][label]
        predicted = sum(row[label] for row in self.confusion.values())
        actual = sum(self.confusion[label].values())
        if tp == 0:
            return 0.0
        precision, recall = tp / predicted, tp / actual
        return 2 * precision * recall / (precision + recall)

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the three classes, so neutral counts as much as the others."""
        return sum(self.f1(label) for label in SENTIMENTS) / len(SENTIMENTS)

    @property
    def topic_precision(self) -> float:
        """Share of the topics found that the annotator also gave."""
        return self.topic_hits / self.topic_found if self.topic_found else 0.0

    @property
    def topic_recall(self) -> float:
        """Share of the annotator's topics that were found."""
        return self.topic_hits / self.topic_labelled if self.topic_labelled else 0.0


def evaluate(analyser: TextAnalyser, rows: Iterable[Labelled]) -> Scores:
    """Run ``analyser`` on every row (in its labelled language) and count what it got right."""
    scores = Scores()
    for row in rows:
        result = analyser.analyse(row.text, row.lang)
        scores.n += 1
        scores.confusion[row.label][result.sentiment] += 1
        if result.sentiment == row.label:
            scores.correct += 1
        else:
            scores.errors.append((row, result.sentiment, result.score, result.topics))
        found = set(result.topics)
        scores.topic_found += len(found)
        scores.topic_labelled += len(row.topics)
        scores.topic_hits += len(found & row.topics)
    return scores
