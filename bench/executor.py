"""Ingest throughput: datatrove's LocalPipelineExecutor against curate's Dask executor.

Runs the same ingest pipeline (WARC -> intake -> HTML extraction -> Parquet) over the demo
corpus under LocalPipelineExecutor and DaskPipelineExecutor, each at 1 and 2 workers,
and prints docs/s and the ratios. Dask timings exclude the cluster start (a run starts
its cluster once for all stages); the start is printed apart.

    .venv/bin/python -m bench.executor [--scale 1.0] [--tasks 8]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor

from demo import write_demo_corpus
from pipelines.executor import DaskPipelineExecutor, dask_client
from pipelines.ledger import check_balanced, stage_ledger
from pipelines.stages import plan_ingest
from pipelines.config import parse_config
from pipelines.run import RunDir


def ingest_plan(work: Path, name: str, tasks: int):
    ingest = {"tasks": tasks, "sources": [{"name": "web", "kind": "warc", "paths": [str(work / "input" / "warc" / "*.warc.gz")], "domain": "web"}]}
    config = parse_config({"run": {"name": name, "root": str(work)}, "ingest": ingest})
    return plan_ingest(config, RunDir(config.run_dir))


def docs_in(work: Path, name: str, logs: str, tasks: int) -> int:
    """Documents in, from the ledger of the run's files (checks that none was lost)."""
    rows = stage_ledger("ingest", work / name / "ingest", work / logs, tasks)
    check_balanced(rows)
    return sum(r.docs_in for r in rows)


def time_local(work: Path, workers: int, tasks: int) -> tuple[float, int]:
    plan = ingest_plan(work, f"local{workers}", tasks)
    start = time.perf_counter()
    LocalPipelineExecutor(plan.pipeline, tasks=plan.tasks, workers=workers, logging_dir=str(work / f"logs-local{workers}")).run()
    return time.perf_counter() - start, docs_in(work, f"local{workers}", f"logs-local{workers}", plan.tasks)


def time_dask(work: Path, workers: int, tasks: int) -> tuple[float, int, float]:
    plan = ingest_plan(work, f"dask{workers}", tasks)
    start = time.perf_counter()
    with dask_client("local", workers) as client:
        started = time.perf_counter() - start
        begin = time.perf_counter()
        DaskPipelineExecutor(plan.pipeline, plan.tasks, str(work / f"logs-dask{workers}"), client, name="bench").run()
        seconds = time.perf_counter() - begin
    return seconds, docs_in(work, f"dask{workers}", f"logs-dask{workers}", plan.tasks), started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-"))
    try:
        write_demo_corpus(work / "input", scale=args.scale, seed=0)
        results = {}
        for workers in (1, 2):
            seconds, docs = time_local(work, workers, args.tasks)
            results[("local", workers)] = docs / seconds
            print(f"LocalPipelineExecutor  workers={workers}: {docs} docs in {seconds:6.2f}s = {docs / seconds:8.1f} docs/s")
            seconds, docs, start = time_dask(work, workers, args.tasks)
            results[("dask", workers)] = docs / seconds
            print(f"DaskPipelineExecutor   workers={workers}: {docs} docs in {seconds:6.2f}s = {docs / seconds:8.1f} docs/s  (cluster start {start:.2f}s)")
        print()
        for workers in (1, 2):
            print(f"dask / local at {workers} worker(s): {results[('dask', workers)] / results[('local', workers)]:.2f}x   (goal >= 1.0x)")
        print(f"dask 2 workers / 1 worker:      {results[('dask', 2)] / results[('dask', 1)]:.2f}x   (goal >= 1.7x)")
        print(f"local 2 workers / 1 worker:     {results[('local', 2)] / results[('local', 1)]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
