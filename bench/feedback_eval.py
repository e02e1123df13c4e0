"""Accuracy of patron's feedback text analyser on its labelled evaluation set.

    .venv/bin/python bench/feedback_eval.py              # dev and test figures per language
    .venv/bin/python bench/feedback_eval.py --errors dev # also list the dev split's mistakes

The set (tests/data/feedback_eval.csv) is cut per language in file order: the first 70%
is "dev" (the rules and thresholds were looked at against it), the rest "test" (held out).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from patron.feedback import SENTIMENTS, LexiconAnalyser
from patron.feedback.evaluation import Scores, evaluate, read_labelled, split

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "feedback_eval.csv"


def _print(name: str, scores: Scores) -> None:
    print(
        f"\n{name}: n={scores.n}  accuracy={scores.accuracy:.3f}  macro F1={scores.macro_f1:.3f}"
        f"  topics P={scores.topic_precision:.3f} R={scores.topic_recall:.3f}"
    )
    print("  label \\ predicted " + " ".join(f"{s:>9}" for s in SENTIMENTS))
    for label in SENTIMENTS:
        row = " ".join(f"{scores.confusion[label][s]:>9}" for s in SENTIMENTS)
        print(f"  {label:<18}{row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--errors", choices=["dev", "test", "all"], help="list the mistakes")
    args = parser.parse_args()

    rows = read_labelled(args.data)
    started = time.perf_counter()
    analyser = LexiconAnalyser()
    analyser.analyse("预热", "zh-CN")  # load jieba outside the timing
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    table = []
    for lang in ("zh-CN", "en"):
        dev, test = split(rows, lang)
        for part, subset in (("dev", dev), ("test", test)):
            scores = evaluate(analyser, subset)
            table.append((lang, part, scores))
            _print(f"{lang} {part}", scores)
            if args.errors in (part, "all"):
                for row, predicted, score, _topics in scores.errors:
                    print(f"    {row.label:>8} -> {predicted:<8} {score:+.2f}  {row.text}")
    elapsed = time.perf_counter() - started
    total = sum(s.n for *_, s in table)
    print(f"\n{total} comments in {elapsed:.2f} s (jieba loaded in {loaded:.1f} s)")
    print("\n| language | split | n | accuracy | macro F1 | topic precision | topic recall |")
    print("|---|---|---|---|---|---|---|")
    for lang, part, s in table:
        print(
            f"| {lang} | {part} | {s.n} | {s.accuracy:.3f} | {s.macro_f1:.3f} "
            f"| {s.topic_precision:.3f} | {s.topic_recall:.3f} |"
        )


if __name__ == "__main__":
    main()
