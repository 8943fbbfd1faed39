"""Fixed cost per rank: what a rank pays before its first document, with and without the per-process cache.

A Dask worker runs rank after rank, each on a fresh unpickled copy of the pipeline. What a
step loads (the URL block lists, lid.176, the fastText quality model, the scikit-learn
domain model) is kept per worker process (``curation.process_cache``, ``loaded_url_filter``),
so only a worker's first rank loads it. The baseline run beside it forgets every loaded
file at the start of each rank, as a step that loads into itself would.

Two stages' pipelines run on a 1-worker LocalCluster, rank after rank, on the same demo
pages: the filter stage's (URL, licence, language ID, Gopher/C4/FineWeb) and the classify
stage's model steps (domain, then quality), with models trained here on demo pages. Printed
per stage and mode: the first rank's seconds, the median of the later ranks, the stage's
docs/s, and the ratio baseline / cached.

    .venv/bin/python -m bench.rank_fixed_cost [--ranks 8] [--docs-per-rank 50]
"""

import argparse
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from bench.worker_memory import WEB_SOURCE, demo_documents, write_ingest_shards
from classifiers.domain import DomainParams, DomainStep, train_domain
from classifiers.quality import QualityStep, train_quality
from curation.shards import ShardReader, ShardWriter
from pipelines.config import parse_config
from pipelines.executor import DaskPipelineExecutor, dask_client
from pipelines.run import RunDir
from pipelines.stages import plan_filter


class ForgetLoadedFiles(PipelineStep):
    """The baseline: each rank starts with nothing loaded, as if every step loaded for itself."""

    name = "forget loaded files"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from classifiers.domain import load_domain_model  # imported here: the step is shipped by value
        from curation.filters import fasttext_model, loaded_url_filter

        for cache in (loaded_url_filter, fasttext_model, load_domain_model):
            cache.cache_clear()
        if data:
            yield from data


def rank_seconds(pipeline: list, ranks: int, logs: Path, name: str) -> list[float]:
    """Each rank's seconds on a fresh 1-worker cluster, in the order they finished (one at a time)."""
    finished: list[float] = []
    with dask_client("local", workers=1) as client:
        DaskPipelineExecutor(pipeline, ranks, str(logs), client, name=name,
                             on_progress=lambda done, total, stats, seconds: finished.append(seconds)).run()
    return [later - earlier for earlier, later in zip([0.0, *finished], finished)]


def filter_pipeline(work: Path, documents: list[Document], ranks: int) -> Callable[[], list]:
    config = parse_config({"run": {"name": "filter", "root": str(work)}, "ingest": {"sources": [WEB_SOURCE]}, "filter": {"tasks": ranks}})
    run = RunDir(config.run_dir)
    write_ingest_shards(run, documents, ranks)
    return lambda: plan_filter(config, run).pipeline


def classify_pipelines(models: Path, training: list[Document]) -> Callable[[Path, list[Document], int], Callable[[], list]]:
    """Trains a domain and a quality model on demo pages; returns a maker of the classify steps' pipeline."""
    texts = [doc.text for doc in training]
    labels = [doc.metadata["domain"] for doc in training]
    domain = train_domain(texts, labels, models / "domain", DomainParams(calibration_folds=2), seed=0)
    wiki = [text for text, label in zip(texts, labels) if label == "wiki"]
    rest = [text for text, label in zip(texts, labels) if label != "wiki"]
    quality = train_quality(wiki, rest, models / "quality", seed=0)

    def make(work: Path, documents: list[Document], ranks: int) -> Callable[[], list]:
        run = RunDir(work)
        write_ingest_shards(run, documents, ranks)
        return lambda: [
            ShardReader(run.stage_dir("ingest")),
            DomainStep(domain.model_path, unassigned={"web", "wiki", "code", "docs", "forum"}),
            QualityStep(quality.model_path),
            ShardWriter(run.stage_dir("classify")),
        ]

    return make


def measure(label: str, make: Callable[[Path, list[Document], int], Callable[[], list]], documents: list[Document], ranks: int,
            docs_per_rank: int, work: Path) -> None:
    """Per mode: seconds of ranks holding one document each (the fixed cost, the models load on
    the first document) and docs/s of ranks holding ``docs_per_rank``."""
    measured = {}
    for per_rank in (1, docs_per_rank):
        pipeline = make(work / f"{label}-{per_rank}", documents[: ranks * per_rank], ranks)
        for mode, first_steps in (("cached per process", []), ("loaded per rank", [ForgetLoadedFiles()])):
            seconds = rank_seconds([*first_steps, *pipeline()], ranks, work / f"logs-{label}-{per_rank}-{len(first_steps)}", label)
            measured[mode, per_rank] = seconds
    for mode in ("cached per process", "loaded per rank"):
        fixed, full = measured[mode, 1], measured[mode, docs_per_rank]
        print(f"  {label:8s} {mode:19s} 1-document ranks: first {fixed[0]:6.2f}s, later median {statistics.median(fixed[1:]):5.2f}s; "
              f"{docs_per_rank}-document ranks: {ranks * docs_per_rank / sum(full):6.1f} docs/s")
    ratio = sum(measured["loaded per rank", docs_per_rank]) / sum(measured["cached per process", docs_per_rank])
    print(f"  {label:8s} docs/s cached / loaded per rank: {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, default=8)
    parser.add_argument("--docs-per-rank", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curate-bench-ranks-"))
    try:
        documents = demo_documents(args.ranks * args.docs_per_rank)
        print(f"{args.ranks} ranks of demo pages, one worker process (goal: later 1-document ranks <= 0.5 s)")
        measure("filter", filter_pipeline, documents, args.ranks, args.docs_per_rank, work)
        measure("classify", classify_pipelines(work / "models", documents), documents, args.ranks, args.docs_per_rank, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
