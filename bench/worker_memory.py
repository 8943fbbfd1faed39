"""Filter-stage worker memory: peak RSS of one Dask worker after 1 rank and after 8 ranks.

A worker runs rank after rank, each on a fresh unpickled copy of the pipeline, and Dask
keeps every finished task's copy until the stage ends; whatever a copy loads for itself
(URL block lists, language-ID model) adds up rank after rank. This runs the filter stage
(ShardReader, intake, URL, licence, language ID, Gopher/C4/FineWeb) through
DaskPipelineExecutor on a 1-worker LocalCluster, once with 1 rank and once with 8 ranks
of the same size (demo-corpus pages, shuffled), each on a fresh worker, and prints each
worker's peak RSS, its RSS as each rank finished, and the ratio 8 ranks / 1 rank.

    .venv/bin/python -m bench.worker_memory [--ranks 8] [--docs-per-rank 200]
"""

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from datatrove.data import Document

from curation.shards import ShardWriter
from demo.sources import child_rng, load_sources
from demo.web import Context, build_web_docs
from pipelines.config import parse_config
from pipelines.executor import DaskPipelineExecutor, dask_client
from pipelines.ledger import check_balanced, stage_ledger
from pipelines.run import RunDir
from pipelines.stages import plan_filter

MIB = 2**20
# the source the pages came from: the filter stage runs each source's policy (web: every step)
WEB_SOURCE = {"name": "web", "kind": "warc", "paths": ["demo-pages.warc.gz"]}


def demo_documents(count: int, seed: int = 0) -> list[Document]:
    """Pages of the demo corpus (every kind: wiki, code, forums, spam, French, ...) as the ingest stage leaves them."""
    pages = build_web_docs(Context(child_rng(seed, "web"), load_sources(seed, 1.0)), 1.0)
    random.Random(seed).shuffle(pages)
    chosen = [pages[i % len(pages)] for i in range(count)]
    return [
        Document(text=page.text, id=f"doc-{i:06d}", metadata={"source": "web", "domain": page.domain, "url": page.url, "title": page.title})
        for i, page in enumerate(chosen)
    ]


def write_ingest_shards(run: RunDir, documents: list[Document], ranks: int) -> None:
    """An ingest stage folder with one shard per rank, so each filter rank reads one shard."""
    per_rank = len(documents) // ranks
    for rank in range(ranks):
        shard = documents[rank * per_rank : (rank + 1) * per_rank]
        for _ in ShardWriter(run.stage_dir("ingest")).run(iter(shard), rank, ranks):
            pass


def worker_memory() -> tuple[float, float]:
    """Runs on the worker: its RSS now and its peak RSS so far, in MiB."""
    import resource

    import psutil

    return psutil.Process().memory_info().rss / MIB, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB


def run_filter(work: Path, documents: list[Document], ranks: int) -> tuple[float, list[float], float, int]:
    """The filter stage on a fresh 1-worker cluster: (peak RSS, RSS as each rank finished, seconds, documents in)."""
    name = f"ranks{ranks}"
    config = parse_config({"run": {"name": name, "root": str(work)}, "ingest": {"sources": [WEB_SOURCE]}, "filter": {"tasks": ranks}})
    run = RunDir(config.run_dir)
    write_ingest_shards(run, documents, ranks)
    plan = plan_filter(config, run)
    logs = run.logs_dir("filter")
    after_rank: list[float] = []
    with dask_client("local", workers=1) as client:

        def record_rss(done, total, stats, seconds) -> None:
            (rss, _peak), = client.run(worker_memory).values()
            after_rank.append(rss)

        start = time.perf_counter()
        DaskPipelineExecutor(plan.pipeline, plan.tasks, str(logs), client, name=name, on_progress=record_rss).run()
        seconds = time.perf_counter() - start
        (_rss, peak), = client.run(worker_memory).values()
    rows = stage_ledger("filter", run.stage_dir("filter"), logs, plan.tasks)
    check_balanced(rows)
    return peak, after_rank, seconds, sum(r.docs_in for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--docs-per-rank", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        documents = demo_documents(args.ranks * args.docs_per_rank)
        peaks = {}
        for ranks in (1, args.ranks):
            peak, after_rank, seconds, docs = run_filter(work, documents[: ranks * args.docs_per_rank], ranks)
            peaks[ranks] = peak
            trace = " ".join(f"{rss:.0f}" for rss in after_rank)
            print(f"{ranks} rank(s) x {args.docs_per_rank} docs in 1 worker: {docs} docs in {seconds:6.2f}s, "
                  f"peak RSS {peak:7.0f} MiB   (RSS as each rank finished: {trace} MiB)")
        print()
        print(f"peak RSS {args.ranks} ranks / 1 rank: {peaks[args.ranks] / peaks[1]:.2f}x   (goal <= 1.10x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
