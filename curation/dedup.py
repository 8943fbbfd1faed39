"""Exact and MinHash deduplication that says which document each duplicate duplicates.

Three steps around datatrove's MinHash signature and bucket stages:

1. ``DocumentIndex`` (beside the signature step) records, per rank, each document's
   position, id and a hash of its normalized text.
2. ``DuplicateClusters`` (one task) joins the near-duplicate pairs from the buckets with
   the exact-hash groups into connected components (scipy's C union-find instead of
   datatrove's single-process Python dict), keeps the earliest document of each
   component and writes, per rank, the documents to drop with ``dup_of`` and whether
   the copy is exact or near.
3. ``DedupFilter`` drops them into the ledger as ``dedup/exact_duplicate`` / ``dedup/near_duplicate``.

Steps 1 and 3 must read the same shards with the same number of tasks: positions
within a rank tie them together.
"""

import re
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curation.atomic import atomic_path
from curation.drops import Drop
from curation.shards import RemovedSink, rank_file

SENTINEL = (1 << 32) - 1  # datatrove marks matches against a prebuilt index with it
WHITESPACE = re.compile(r"\s+")
INDEX_SCHEMA = pa.schema([("idx", pa.int64()), ("id", pa.string()), ("text_hash", pa.uint64())])
DROP_SCHEMA = pa.schema([("idx", pa.int64()), ("dup_cluster", pa.int64()), ("dup_of", pa.string()), ("reason", pa.string())])


def normalized_text_hash(text: str) -> int:
    normalized = WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()
    return xxhash.xxh3_64_intdigest(normalized)


def write_table(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


class DocumentIndex(PipelineStep):
    """Passes documents through and writes ``<folder>/<rank>.parquet``: position, id, text hash."""

    name = "🗂 document index"
    type = "🫂 - DEDUP"

    def __init__(self, folder: str | Path):
        super().__init__()
        self.folder = Path(folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        ids, hashes = [], []
        for doc in data:
            with self.track_time():
                ids.append(doc.id)
                hashes.append(normalized_text_hash(doc.text))
            yield doc
        table = pa.table({"idx": np.arange(len(ids), dtype=np.int64), "id": ids, "text_hash": np.array(hashes, dtype=np.uint64)}, schema=INDEX_SCHEMA)
        write_table(table, self.folder / rank_file(rank))
        self.stat_update("documents", value=len(ids))


def read_pairs(buckets_folder: Path, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Near-duplicate pairs from datatrove's ``.dups`` files as global document numbers."""
    firsts, seconds = [], []
    for path in sorted(buckets_folder.glob("*.dups")):
        rows = np.fromfile(path, dtype="<u4").reshape(-1, 4).astype(np.int64)
        rows = rows[rows[:, 0] != SENTINEL]
        firsts.append(offsets[rows[:, 0]] + rows[:, 1])
        seconds.append(offsets[rows[:, 2]] + rows[:, 3])
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def exact_pairs(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each document paired with the first document of the same normalized-text hash."""
    if len(hashes) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.lexsort((np.arange(len(hashes)), hashes))
    sorted_hashes = hashes[order]
    starts = np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]]
    group_first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    member = ~starts
    return group_first[member], order[member]


def cluster_roots(n_docs: int, firsts: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """For every document, the earliest document of its connected component."""
    if n_docs == 0:
        return np.empty(0, np.int64)
    graph = coo_matrix((np.ones(len(firsts), dtype=np.int8), (firsts, seconds)), shape=(n_docs, n_docs))
    _, labels = connected_components(graph, directed=False)
    roots = np.full(labels.max() + 1, n_docs, dtype=np.int64)
    np.minimum.at(roots, labels, np.arange(n_docs))
    return roots[labels]


class DuplicateClusters(PipelineStep):
    """One task: clusters from near-duplicate pairs and exact hashes; writes per-rank drop lists."""

    name = "🔗 duplicate clusters"
    type = "🫂 - DEDUP"

    def __init__(self, index_folder: str | Path, buckets_folder: str | Path, output_folder: str | Path, tasks: int):
        super().__init__()
        self.index_folder = Path(index_folder)
        self.buckets_folder = Path(buckets_folder)
        self.output_folder = Path(output_folder)
        self.tasks = tasks

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ValueError("DuplicateClusters runs as a single task")
        with self.track_time():
            tables = [pq.read_table(self.index_folder / rank_file(r)) for r in range(self.tasks)]
            sizes = np.array([t.num_rows for t in tables], dtype=np.int64)
            offsets = np.r_[0, np.cumsum(sizes)[:-1]]
            ids = np.concatenate([t.column("id").to_numpy(zero_copy_only=False) for t in tables]) if tables else np.array([])
            hashes = np.concatenate([t.column("text_hash").to_numpy() for t in tables]) if tables else np.array([], np.uint64)
            near_a, near_b = read_pairs(self.buckets_folder, offsets)
            exact_a, exact_b = exact_pairs(hashes)
            roots = cluster_roots(len(ids), np.r_[near_a, exact_a], np.r_[near_b, exact_b])
            self.write_drop_lists(roots, ids, hashes, offsets, sizes)
        if data:
            yield from data

    def write_drop_lists(self, roots, ids, hashes, offsets, sizes) -> None:
        counts = np.bincount(roots, minlength=len(roots))
        in_cluster = counts[roots] > 1
        duplicate = roots != np.arange(len(roots))
        exact = hashes == hashes[roots]
        self.stat_update("clusters", value=int((counts > 1).sum()))
        self.stat_update("exact_duplicates", value=int((duplicate & exact).sum()))
        self.stat_update("near_duplicates", value=int((duplicate & ~exact).sum()))
        for rank, (start, size) in enumerate(zip(offsets, sizes)):
            local = np.flatnonzero(in_cluster[start : start + size])
            glob = local + start
            reasons = np.where(~duplicate[glob], None, np.where(exact[glob], "exact_duplicate", "near_duplicate"))
            table = pa.table(
                {
                    "idx": local.astype(np.int64),
                    "dup_cluster": roots[glob],
                    "dup_of": [ids[r] if d else None for r, d in zip(roots[glob], duplicate[glob])],
                    "reason": reasons.tolist(),
                },
                schema=DROP_SCHEMA,
            )
            write_table(table, self.output_folder / rank_file(rank))


class DedupFilter(PipelineStep):
    """Drops the duplicates ``DuplicateClusters`` listed for this rank; tags clustered documents."""

    name = "🫂 dedup filter"
    type = "🫂 - DEDUP"

    def __init__(self, drops_folder: str | Path, removed: RemovedSink):
        super().__init__()
        self.drops_folder = Path(drops_folder)
        self.removed = removed

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        rows = pq.read_table(self.drops_folder / rank_file(rank)).to_pylist()
        by_position = {row["idx"]: row for row in rows}
        with self.removed:
            for idx, doc in enumerate(data):
                row = by_position.get(idx)
                if row is None:
                    yield doc
                    continue
                doc.metadata["dup_cluster"] = row["dup_cluster"]
                if row["reason"] is None:
                    self.stat_update("cluster_keepers")
                    yield doc
                    continue
                doc.metadata["dup_of"] = row["dup_of"]
                self.stat_update(row["reason"])
                self.removed.write(doc, rank, Drop("dedup", row["reason"], f"duplicate of {row['dup_of']}"))
