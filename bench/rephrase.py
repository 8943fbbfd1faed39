"""Throughput of the rephrasing client against the local stub server.

The stub (tests/openai_stub.py) runs in its own process, so the server's threads
and the client's event loop do not share a GIL, and sleeps 50 ms per request, a
stand-in for model latency. The goal is >= 20x more requests/s at concurrency 64
than at 1.

    .venv/bin/python -m bench.rephrase
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.rephrase import (  # noqa: E402 - needs the repo root on sys.path
    ChatRequest,
    ClientConfig,
    ClientStats,
    LLMError,
    complete_batch_sync,
    load_styles,
)

VOCABULARY = ("data model token corpus web page text quality filter score language paragraph "
              "sentence crawl document mixture training synthetic answer question fact").split()


def sample_documents(count: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(VOCABULARY) for _ in range(words)) for _ in range(count)]


def start_stub(latency_s: float) -> tuple[subprocess.Popen, str]:
    """Start the stub server process; return it and its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "openai_stub.py"), "--latency", str(latency_s)],
        stdout=subprocess.PIPE, text=True,
    )
    ready = process.stdout.readline().split()
    if ready[:1] != ["READY"]:
        process.kill()
        raise RuntimeError(f"stub server did not start: {ready}")
    return process, ready[1]


def measure(base_url: str, concurrency: int, documents: list[str]) -> dict[str, float]:
    style = load_styles()["wiki"]
    requests = [ChatRequest(messages=style.messages(d), max_tokens=512) for d in documents]
    config = ClientConfig(base_url=base_url, model="bench", max_concurrency=concurrency,
                          timeout_s=10.0, max_retries=2)
    stats = ClientStats()
    started = time.perf_counter()
    results = complete_batch_sync(config, requests, stats=stats)
    elapsed = time.perf_counter() - started
    failed = sum(1 for r in results if isinstance(r, LLMError))
    return {
        "concurrency": concurrency, "requests": len(requests), "failed": failed,
        "retries": stats.retries, "seconds": elapsed,
        "requests_per_s": len(requests) / elapsed,
        "completion_tokens_per_s": stats.completion_tokens / elapsed,
        "total_tokens_per_s": stats.total_tokens / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="stub sleep per request (s)")
    parser.add_argument("--requests-per-slot", type=int, default=10,
                        help="requests per unit of concurrency (at least 40 per run)")
    parser.add_argument("--words", type=int, default=200, help="words per document")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    process, base_url = start_stub(args.latency)
    try:
        measure(base_url, 1, sample_documents(5, args.words, args.seed))  # warm up imports
        rows = []
        for concurrency in (1, 8, 64):
            count = max(40, concurrency * args.requests_per_slot)
            rows.append(measure(base_url, concurrency, sample_documents(count, args.words, args.seed)))
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"stub latency {args.latency * 1000:.0f} ms/request, {args.words} words/document")
    print(f"{'conc':>5} {'requests':>9} {'failed':>6} {'retries':>7} {'seconds':>8} "
          f"{'req/s':>8} {'compl tok/s':>12} {'total tok/s':>12}")
    for row in rows:
        print(f"{row['concurrency']:>5} {row['requests']:>9} {row['failed']:>6} {row['retries']:>7} "
              f"{row['seconds']:>8.2f} {row['requests_per_s']:>8.1f} "
              f"{row['completion_tokens_per_s']:>12.0f} {row['total_tokens_per_s']:>12.0f}")
    ratio = rows[-1]["requests_per_s"] / rows[0]["requests_per_s"]
    print(f"speedup 64 vs 1: {ratio:.1f}x (goal >= 20x)")


if __name__ == "__main__":
    main()
