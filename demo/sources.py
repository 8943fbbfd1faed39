"""Seeded draws from the offline text sources: per-seed random streams and pools taken without replacement."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

from demo.text import (
    BenchItem,
    CodeUnit,
    DocEntry,
    WikiExtract,
    load_humaneval_numeric,
    load_mmlu_numeric,
    load_stdlib,
    load_wiki,
)
from demo.words import word_count

BENCH_COUNTS = {"mmlu": 40, "humaneval": 10}
PDF_POOL_SIZE = 900  # latin-1 English extracts reserved for PDFs (base-14 fonts)


def child_rng(seed: int, name: str) -> random.Random:
    return random.Random(f"curate-demo/{seed}/{name}")


def scaled(count: int, scale: float) -> int:
    return max(1, round(count * scale))


class ExtractPool:
    """Wikipedia extracts drawn without replacement, grouped by topic."""

    def __init__(self, extracts: list[WikiExtract], rng: random.Random):
        self.rng = rng
        self.by_topic: dict[str, list[WikiExtract]] = defaultdict(list)
        for extract in extracts:
            self.by_topic[extract.topic].append(extract)
        for topic in sorted(self.by_topic):
            rng.shuffle(self.by_topic[topic])

    def random_topic(self) -> str:
        return self.rng.choice(sorted(t for t, left in self.by_topic.items() if left))

    def remaining(self) -> list[WikiExtract]:
        """The extracts not taken yet, topic by topic."""
        return [e for topic in sorted(self.by_topic) for e in self.by_topic[topic]]

    def take(self, max_count: int, min_words: float = math.inf, topic: str | None = None) -> list[WikiExtract]:
        """Extracts of one topic (another one when it runs dry) until min_words or max_count."""
        topic = topic if topic and self.by_topic[topic] else self.random_topic()
        taken: list[WikiExtract] = []
        while sum(word_count(e.text) for e in taken) < min_words and len(taken) < max_count:
            if not self.by_topic[topic]:
                topic = self.random_topic()
            taken.append(self.by_topic[topic].pop())
        return taken


@dataclass
class Sources:
    """Everything the generators draw from, shuffled once per seed."""

    web_en: ExtractPool
    pdf_en: ExtractPool
    fr: ExtractPool
    es: ExtractPool
    code_units: list[CodeUnit]
    doc_pages: list[list[DocEntry]]
    forum_entries: list[DocEntry]
    titles: dict[str, list[str]]
    bench: list[BenchItem]


def split_doc_entries(
    entries: tuple[DocEntry, ...], rng: random.Random
) -> tuple[list[list[DocEntry]], list[DocEntry]]:
    """Reference pages (two entries of one module each) and, from other modules, forum topics."""
    by_module: dict[str, list[DocEntry]] = defaultdict(list)
    for entry in entries:
        by_module[entry.module].append(entry)
    modules = sorted(by_module)
    rng.shuffle(modules)
    pages = [by_module[m][i : i + 2] for m in modules[0::2] for i in range(0, len(by_module[m]), 2)]
    forum = [e for m in modules[1::2] for e in by_module[m]]
    rng.shuffle(pages)
    rng.shuffle(forum)
    return pages, forum


def choose_bench(scale: float, rng: random.Random) -> list[BenchItem]:
    items = rng.sample(load_mmlu_numeric(), scaled(BENCH_COUNTS["mmlu"], scale))
    items += rng.sample(load_humaneval_numeric(), scaled(BENCH_COUNTS["humaneval"], scale))
    rng.shuffle(items)
    return items


def load_sources(seed: int, scale: float) -> Sources:
    rng = child_rng(seed, "sources")
    english = list(load_wiki("en"))
    rng.shuffle(english)
    latin1 = [e for e in english if all(ord(c) < 256 for c in e.title + e.text)][:PDF_POOL_SIZE]
    reserved = set(latin1)
    units, entries = load_stdlib()
    code_units = list(units)
    rng.shuffle(code_units)
    doc_pages, forum_entries = split_doc_entries(entries, rng)
    return Sources(
        web_en=ExtractPool([e for e in english if e not in reserved], rng),
        pdf_en=ExtractPool(latin1, rng),
        fr=ExtractPool(list(load_wiki("fr")), rng),
        es=ExtractPool(list(load_wiki("es")), rng),
        code_units=code_units,
        doc_pages=doc_pages,
        forum_entries=forum_entries,
        titles={lang: [e.title for e in load_wiki(lang)] for lang in ("en", "fr", "es")},
        bench=choose_bench(scale, rng),
    )
