"""HTML extraction engines: trafilatura against resiliparse, speed and agreement with the ground truth.

Writes the demo corpus, reads its HTML responses (status 200, text/html) with curate's WARC
reader, decoded as ingest decodes them, and joins each page to its ground-truth text by URL.
Then, per engine, in this one process (no sandbox, no Dask): the time to extract every page
(docs/s of one core, the best of ``--repeat`` passes, after a warm-up) and the token F1 of
each extraction against the ground-truth text (bag of lowercased ``\\w+`` words), averaged
over pages. The extraction is ``HtmlExtractor(engine=...).extract``, the call ingest makes.

Which pages are scored: the headline F1 is over content pages (``is_spam`` and
``is_boilerplate`` false). A boilerplate page's ground truth is one throwaway sentence
("Your cart is empty.") amid heavy chrome; the page exists to be dropped, and F1 on ~11
words says nothing about main-content extraction. A spam page's ground truth is keyword
stuffing and link farms: whether an engine keeps it matters only for the spam filter, which
the demo pipeline's spam recall measures end to end. Both kinds are still shown apart
(spam F1; boilerplate words kept), and "empty" is the share of all pages with no text.
"line F1" is the same F1 over whole stripped lines: it sees formatting (bullets, merged
paragraphs) that word F1 cannot.

    .venv/bin/python -m bench.extract [--scale 1.0] [--seed 0] [--repeat 3]
"""

import argparse
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from curation.drops import marked
from curation.extract import ENGINES, HtmlExtractor
from curation.sources.warc import HTML_TYPES, WarcSource
from demo import write_demo_corpus

WORD = re.compile(r"\w+")


def f1(got: Counter, want: Counter) -> float:
    if not got and not want:
        return 1.0
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def words(text: str) -> Counter:
    return Counter(WORD.findall(text.lower()))


def lines(text: str) -> Counter:
    return Counter(line.strip() for line in text.splitlines() if line.strip())


def html_pages(corpus: Path) -> list[tuple[str, str, dict]]:
    """(url, decoded HTML, ground-truth row) for every HTML page of the crawl."""
    truth = {row["doc_key"]: row for row in pq.read_table(
        corpus / "ground_truth.parquet", columns=["doc_key", "source", "kind", "is_spam", "is_boilerplate", "text"],
        filters=[("source", "=", "web")]).to_pylist()}
    reader = WarcSource(sorted(str(p) for p in (corpus / "warc").glob("*.warc.gz")))
    pages = [(doc.metadata["url"], doc.text, truth[doc.metadata["url"]]) for doc in reader.run()
             if doc.metadata.get("content_type") in HTML_TYPES and marked(doc) is None]
    if len(pages) != len(truth):
        raise SystemExit(f"read {len(pages)} HTML pages, the ground truth has {len(truth)}")
    return pages


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def measure(engine: str, pages: list[tuple[str, str, dict]], repeat: int) -> dict:
    extract = HtmlExtractor(removed=None, engine=engine).extract
    for _, html, _ in pages[:20]:  # imports and first-call setup are not extraction time
        extract(html)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        texts = [extract(html) or "" for _, html, _ in pages]
        best = min(best, time.perf_counter() - start)
    content = [(text, row) for text, (_, _, row) in zip(texts, pages) if not row["is_spam"] and not row["is_boilerplate"]]
    spam = [(text, row) for text, (_, _, row) in zip(texts, pages) if row["is_spam"]]
    boilerplate = [text for text, (_, _, row) in zip(texts, pages) if row["is_boilerplate"]]
    return {
        "docs_s": len(pages) / best,
        "f1": mean([f1(words(text), words(row["text"])) for text, row in content]),
        "line_f1": mean([f1(lines(text), lines(row["text"])) for text, row in content]),
        "spam_f1": mean([f1(words(text), words(row["text"])) for text, row in spam]),
        "boilerplate_words": mean([sum(words(text).values()) for text in boilerplate]),
        "empty": mean([not text.strip() for text in texts]),
        "content_pages": len(content),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per engine; the fastest counts")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        write_demo_corpus(work / "input", scale=args.scale, seed=args.seed)
        pages = html_pages(work / "input")
        results = {engine: measure(engine, pages, args.repeat) for engine in ENGINES}
        content = results[ENGINES[0]]["content_pages"]
        print(f"{len(pages)} HTML pages ({content} content pages scored; spam and boilerplate apart), one process, one core")
        print(f"{'engine':12s} {'docs/s':>9s} {'F1':>7s} {'line F1':>8s} {'spam F1':>8s} {'bp words':>9s} {'empty':>7s}")
        for engine, r in results.items():
            print(f"{engine:12s} {r['docs_s']:9.1f} {r['f1']:7.4f} {r['line_f1']:8.4f} {r['spam_f1']:8.4f} "
                  f"{r['boilerplate_words']:9.1f} {r['empty']:7.2%}")
        fast, slow = results["resiliparse"], results["trafilatura"]
        print()
        print(f"resiliparse / trafilatura docs/s: {fast['docs_s'] / slow['docs_s']:.1f}x   (goal >= 8x)")
        print(f"F1 trafilatura - resiliparse:     {slow['f1'] - fast['f1']:+.4f}   (goal <= 0.03)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
