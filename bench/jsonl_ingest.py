"""JSONL ingest throughput: a curate source against datatrove's own JsonlReader.

Writes Dolma-format ``.jsonl.gz`` files, then reads them into Parquet twice at 2 workers:
datatrove's ``JsonlReader`` -> ``ParquetWriter`` under a ``LocalPipelineExecutor``, and
curate's ingest stage for a ``kind: jsonl`` source (reader -> intake -> extractor, which
passes plain text through -> shards) on a Dask LocalCluster. Prints docs/s and the ratio.
datatrove's time includes starting its worker processes; curate's is shown without and with
the cluster start (a run pays that once for all its stages), and the ratio for both.

    .venv/bin/python -m bench.jsonl_ingest [--files 16] [--docs 12000] [--workers 2]
"""

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import ParquetWriter

from pipelines.config import parse_config
from pipelines.executor import DaskPipelineExecutor, dask_client
from pipelines.ledger import check_balanced, stage_ledger
from pipelines.run import RunDir
from pipelines.stages import plan_ingest
from tests.documents import PROSE, dolma_record, write_dolma


def write_files(folder: Path, files: int, docs: int) -> None:
    rng = random.Random(0)
    sentences = PROSE.split(". ")
    for f in range(files):
        records = []
        for i in range(docs):
            text = ". ".join(rng.choice(sentences) for _ in range(rng.randint(4, 40)))
            records.append(dolma_record(f * docs + i, text))
        write_dolma(folder / f"part-{f:04d}.jsonl.gz", records)


def time_datatrove(work: Path, workers: int, tasks: int) -> float:
    pipeline = [JsonlReader(str(work / "docs"), glob_pattern="*.jsonl.gz"), ParquetWriter(str(work / "datatrove-out"))]
    start = time.perf_counter()
    LocalPipelineExecutor(pipeline, tasks=tasks, workers=workers, logging_dir=str(work / "datatrove-logs")).run()
    return time.perf_counter() - start


def time_curate(work: Path, workers: int, tasks: int) -> tuple[float, float, int]:
    source = {"name": "docs", "kind": "jsonl", "paths": [str(work / "docs" / "*.jsonl.gz")], "filters": "trusted"}
    config = parse_config({"run": {"name": "curate", "root": str(work)}, "ingest": {"tasks": tasks, "sources": [source]}})
    run = RunDir(config.run_dir)
    plan = plan_ingest(config, run)
    begin = time.perf_counter()
    with dask_client("local", workers) as client:
        start = time.perf_counter()
        DaskPipelineExecutor(plan.pipeline, plan.tasks, str(run.logs_dir("ingest")), client, name="bench").run()
        seconds = time.perf_counter() - start
    started = start - begin
    rows = stage_ledger("ingest", run.stage_dir("ingest"), run.logs_dir("ingest"), plan.tasks)
    check_balanced(rows)
    return seconds, started, sum(r.docs_in for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--docs", type=int, default=12000, help="documents per file")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-jsonl-"))
    try:
        write_files(work / "docs", args.files, args.docs)
        total = args.files * args.docs
        for path in (work / "docs").iterdir():  # both runs read from the page cache
            path.read_bytes()
        baseline = time_datatrove(work, args.workers, args.files)
        ours, started, counted = time_curate(work, args.workers, args.files)
        assert counted == total, f"curate counted {counted} documents in, the files hold {total}"
        print(f"datatrove JsonlReader, LocalPipelineExecutor workers={args.workers}: {total} docs in {baseline:6.2f}s = {total / baseline:8.1f} docs/s")
        print(f"curate jsonl source, Dask workers={args.workers}:                   {total} docs in {ours:6.2f}s = {total / ours:8.1f} docs/s"
              f"  (cluster start {started:.2f}s)")
        print(f"curate / datatrove: {baseline / ours:.2f}x without the cluster start, {baseline / (ours + started):.2f}x with it   (goal >= 1.0x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
