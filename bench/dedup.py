"""MinHash deduplication throughput: curate's dedup on Dask against datatrove's own on its local executor.

Both run the same documents (the demo corpus's page texts, repeated with small edits
so that there is near-duplicate work) through four MinHash steps: signatures, buckets,
clusters, filter. datatrove's side uses its MinhashDedupCluster (a single-process Python
union-find) under LocalPipelineExecutor; curate's side uses its DocumentIndex +
DuplicateClusters (scipy union-find) + DedupFilter under the Dask executor. Prints
docs/s at 1 and 2 workers, the ratios, and each step's share of the time.

    .venv/bin/python -m bench.dedup [--scale 1.0] [--copies 4] [--tasks 8]
"""

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig

from curation.dedup import DedupFilter, DocumentIndex, DuplicateClusters
from curation.intake import StageIntake
from curation.shards import RemovedSink, ShardReader, ShardWriter, list_kept_shards
from demo import write_demo_corpus
from pipelines.executor import DaskPipelineExecutor, dask_client

CONFIG = MinhashConfig()  # FineWeb's: 5-grams, 14 buckets x 8 hashes


def edited(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(max(1, len(words) // 50)):
        words[rng.randrange(len(words))] = rng.choice(["alpha", "beta", "gamma", "delta"])
    return " ".join(words)


def write_source(work: Path, scale: float, copies: int, tasks: int) -> int:
    write_demo_corpus(work / "input", scale=scale, seed=0)
    rows = duckdb.sql(f"select doc_key, text from read_parquet('{work}/input/ground_truth.parquet') where text <> ''").fetchall()
    rng = random.Random(0)
    docs = [Document(text=text if c == 0 else edited(text, rng), id=f"{key}#{c}") for c in range(copies) for key, text in rows]
    rng.shuffle(docs)
    for rank in range(tasks):
        list(ShardWriter(work / "source").run(iter(docs[rank::tasks]), rank=rank))
    return len(docs)


def datatrove_steps(work: Path, out: Path, tasks: int) -> list[tuple[str, list, int]]:
    return [
        ("signatures", [ShardReader(work / "source"), MinhashDedupSignature(str(out / "sigs"), config=CONFIG)], tasks),
        ("buckets", [MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=CONFIG)], CONFIG.num_buckets),
        ("clusters", [MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=CONFIG)], 1),
        ("filter", [ShardReader(work / "source"), MinhashDedupFilter(str(out / "remove")), ShardWriter(out / "kept")], tasks),
    ]


def curate_steps(work: Path, out: Path, tasks: int) -> list[tuple[str, list, int]]:
    removed = RemovedSink(out / "kept")
    return [
        ("signatures", [ShardReader(work / "source"), DocumentIndex(out / "index"), MinhashDedupSignature(str(out / "sigs"), config=CONFIG)], tasks),
        ("buckets", [MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=CONFIG)], CONFIG.num_buckets),
        ("clusters", [DuplicateClusters(out / "index", out / "buckets", out / "drops", tasks)], 1),
        ("filter", [ShardReader(work / "source"), StageIntake(removed), DedupFilter(out / "drops", removed), ShardWriter(out / "kept")], tasks),
    ]


def timed(run_step) -> dict[str, float]:
    times = {}
    for name, pipeline, tasks in run_step.steps:
        start = time.perf_counter()
        run_step(name, pipeline, tasks)
        times[name] = time.perf_counter() - start
    return times


def run_local(work: Path, workers: int, tasks: int) -> dict[str, float]:
    out = work / f"datatrove-{workers}"

    def run_step(name, pipeline, n):
        LocalPipelineExecutor(pipeline, tasks=n, workers=min(workers, n), logging_dir=str(out / "logs" / name)).run()

    run_step.steps = datatrove_steps(work, out, tasks)
    return timed(run_step)


def run_dask(work: Path, workers: int, tasks: int) -> dict[str, float]:
    out = work / f"curate-{workers}"
    with dask_client("local", workers) as client:

        def run_step(name, pipeline, n):
            DaskPipelineExecutor(pipeline, n, str(out / "logs" / name), client, name=name).run()

        run_step.steps = curate_steps(work, out, tasks)
        return timed(run_step)


def kept(folder: Path) -> int:
    return sum(pq.read_metadata(path).num_rows for path in list_kept_shards(folder))


def report(label: str, docs: int, times: dict[str, float]) -> float:
    total = sum(times.values())
    shares = "  ".join(f"{name} {100 * t / total:4.1f}%" for name, t in times.items())
    print(f"{label:28s} {docs / total:9.1f} docs/s ({total:6.2f}s)   {shares}")
    return docs / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-dedup-"))
    try:
        docs = write_source(work, args.scale, args.copies, args.tasks)
        print(f"{docs} documents, {args.tasks} tasks")
        rates = {}
        for workers in (1, 2):
            rates["datatrove", workers] = report(f"datatrove local, {workers} worker(s)", docs, run_local(work, workers, args.tasks))
            rates["curate", workers] = report(f"curate dask, {workers} worker(s)", docs, run_dask(work, workers, args.tasks))
            print(f"  kept: datatrove {kept(work / f'datatrove-{workers}' / 'kept')}, curate {kept(work / f'curate-{workers}' / 'kept')}")
        for workers in (1, 2):
            print(f"curate / datatrove at {workers} worker(s): {rates['curate', workers] / rates['datatrove', workers]:.2f}x")
        print(f"curate 2 workers / 1 worker: {rates['curate', 2] / rates['curate', 1]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
