"""Tokenize-stage throughput: the Dask executor against a plain ``encode_batch`` loop.

The documents are the demo corpus's page texts (from its ground truth), written as
shards; the stage pipeline (shards -> intake -> DomainTokenizer -> shards + token files)
runs on a LocalCluster at 1 and 2 workers; the baseline encodes the same texts with
``tokenizers`` in one process. Prints tokens/s and the ratios.

    .venv/bin/python -m bench.tokenize [--scale 1.0] [--copies 4]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
from datatrove.data import Document
from tokenizers import Tokenizer

from curation.intake import StageIntake
from curation.shards import RemovedSink, ShardReader, ShardWriter
from curation.tokenize import DomainTokenizer
from curation.tokenizer import train_bpe
from demo import write_demo_corpus
from pipelines.executor import DaskPipelineExecutor, dask_client


def write_source_shards(work: Path, scale: float, copies: int, tasks: int) -> list[str]:
    write_demo_corpus(work / "input", scale=scale, seed=0)
    rows = duckdb.sql(f"select doc_key, domain, text from read_parquet('{work}/input/ground_truth.parquet') where text <> ''").fetchall()
    docs = [Document(text=text, id=f"{key}#{c}", metadata={"domain": domain}) for c in range(copies) for key, domain, text in rows]
    for rank in range(tasks):
        list(ShardWriter(work / "source").run(iter(docs[rank::tasks]), rank=rank))
    return [d.text for d in docs]


def plain_loop(tokenizer_path: Path, texts: list[str], batch: int = 1000) -> tuple[float, int]:
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    start = time.perf_counter()
    tokens = sum(len(e.ids) + 1 for i in range(0, len(texts), batch) for e in tokenizer.encode_batch(texts[i : i + batch]))
    return time.perf_counter() - start, tokens


def stage(work: Path, tokenizer_path: Path, workers: int, tasks: int) -> tuple[float, int]:
    out = work / f"tokenized-{workers}"
    removed = RemovedSink(out)
    pipeline = [
        ShardReader(work / "source"),
        StageIntake(removed),
        DomainTokenizer(out / "_tokens", tokenizer_path, "<|endoftext|>"),
        ShardWriter(out),
    ]
    with dask_client("local", workers) as client:
        start = time.perf_counter()
        stats = DaskPipelineExecutor(pipeline, tasks, str(work / f"logs-{workers}"), client, name="bench").run()
        seconds = time.perf_counter() - start
    tokens = next(s for s in stats.stats if "tokenize" in s.name)["tokens"].total
    return seconds, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--copies", type=int, default=4, help="repeat the corpus to make the run longer")
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-tok-"))
    try:
        texts = write_source_shards(work, args.scale, args.copies, args.tasks)
        tokenizer = train_bpe(texts[:5000], 8192, work / "tokenizer.json").path
        seconds, tokens = plain_loop(tokenizer, texts)
        baseline = tokens / seconds
        print(f"plain encode_batch loop, 1 process: {tokens:,} tokens in {seconds:6.2f}s = {baseline:12,.0f} tokens/s")
        for workers in (1, 2):
            seconds, tokens = stage(work, tokenizer, workers, args.tasks)
            rate = tokens / seconds
            print(f"tokenize stage, Dask {workers} worker(s): {tokens:,} tokens in {seconds:6.2f}s = {rate:12,.0f} tokens/s  ({rate / baseline:.2f}x the loop)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
