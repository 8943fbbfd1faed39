"""Parquet shards: one file per (stage, domain, rank), written atomically.

Layout under a stage folder::

    <stage>/<domain>/<rank>.parquet             kept documents
    <stage>/_removed/<reason>/<rank>.parquet    dropped documents, with ``reason`` and ``detail``

A file appears under its final name only when complete (temp file, then rename), so a
killed task leaves nothing a reader or the ledger could mistake for output.
"""

import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseReader

from curation.atomic import temp_path
from curation.documents import DETAIL, EXTRA, METADATA_SCHEMA, REASON
from curation.drops import Drop

REMOVED_DIR = "_removed"
FILTER_DETAIL = "filter_detail"
ROW_GROUP_ROWS = 2_000


def shard_schema(with_reason: bool = False) -> pa.Schema:
    fields = [pa.field("id", pa.string()), pa.field("text", pa.string())]
    if with_reason:
        fields += [pa.field(REASON, pa.string()), pa.field(DETAIL, pa.string())]
    fields += [pa.field(key, kind) for key, kind in METADATA_SCHEMA.items()]
    fields.append(pa.field(EXTRA, pa.string()))
    return pa.schema(fields)


def document_row(doc: Document) -> dict:
    row = {"id": doc.id, "text": doc.text}
    extra = {}
    for key, value in doc.metadata.items():
        if key in METADATA_SCHEMA:
            row[key] = value
        else:
            extra[key] = value
    row[EXTRA] = json.dumps(extra, sort_keys=True, default=str) if extra else None
    return row


def row_document(row: dict) -> Document:
    metadata = {k: v for k, v in row.items() if k in METADATA_SCHEMA and v is not None}
    if row.get(EXTRA):
        metadata.update(json.loads(row[EXTRA]))
    return Document(text=row["text"], id=row["id"], metadata=metadata)


def safe_segment(value: str) -> str:
    """A domain or reason as a path segment: no traversal, no hidden or reserved names."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-/]", "_", str(value)).strip("/")
    parts = [p.lstrip("._") for p in cleaned.split("/")]
    parts = [p for p in parts if p]
    return "/".join(parts) or "unknown"


def rank_file(rank: int) -> str:
    return f"{rank:05d}.parquet"


class ParquetShardFile:
    """Buffers rows and writes them as row groups to a temp file renamed into place on close."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = Path(path)
        self.schema = schema
        self.tmp_path = temp_path(self.path)
        self.rows: list[dict] = []
        self.writer: pq.ParquetWriter | None = None
        self.n_rows = 0

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.n_rows += 1
        if len(self.rows) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp_path, self.schema, compression="zstd")
        columns = {}
        for field in self.schema:
            values = [row.get(field.name) for row in self.rows]
            try:
                columns[field.name] = pa.array(values, type=field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as err:
                raise ValueError(f"{self.path}: column {field.name!r} expects {field.type}: {err}") from err
        self.writer.write_table(pa.table(columns, schema=self.schema))
        self.rows = []

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()
            os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.tmp_path.unlink(missing_ok=True)


class ShardWriter(PipelineStep):
    """Last step of a stage: writes the documents it receives to ``<stage>/<domain>/<rank>.parquet``."""

    name = "💾 shards"
    type = "💽 - WRITER"

    def __init__(self, stage_dir: str | Path, partition_key: str = "domain", default_partition: str = "unknown"):
        super().__init__()
        self.stage_dir = Path(stage_dir)
        self.partition_key = partition_key
        self.default_partition = default_partition

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        clear_rank_outputs(self.stage_dir, rank)
        files: dict[str, ParquetShardFile] = {}
        schema = shard_schema()
        try:
            for doc in data:
                partition = safe_segment(doc.metadata.get(self.partition_key) or self.default_partition)
                if partition not in files:
                    files[partition] = ParquetShardFile(self.stage_dir / partition / rank_file(rank), schema)
                with self.track_time():
                    files[partition].add(document_row(doc))
                self.stat_update("kept")
        except BaseException:
            for shard in files.values():
                shard.abort()
            raise
        for shard in files.values():
            shard.close()
        return
        yield


class RemovedSink:
    """Where a stage's dropped documents go: ``<stage>/_removed/<reason>/<rank>.parquet``.

    One sink serves every dropping step of a stage. It is also a datatrove exclusion
    writer: filters enter it as a context manager and call ``write(doc, rank)``, the
    reason coming from ``doc.metadata['filter_reason']``. Several steps hold it open at
    once (generators nest), so it counts entries and finishes its files on the last exit.
    """

    def __init__(self, stage_dir: str | Path):
        self.stage_dir = Path(stage_dir)
        self._files: dict[str, ParquetShardFile] = {}
        self._finished: set[str] = set()
        self._depth = 0

    def __getstate__(self):
        if self._files:
            raise RuntimeError("RemovedSink cannot be copied while it has open files")
        return self.__dict__.copy()

    def __enter__(self):
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        self._depth -= 1
        if self._depth > 0:
            return
        for reason, shard in self._files.items():
            shard.abort() if exc_type else shard.close()
            self._finished.add(reason)
        self._files = {}

    def write(self, doc: Document, rank: int, drop: Drop) -> None:
        reason = safe_segment(drop.label)
        if reason in self._finished:
            raise RuntimeError(f"removed shard for reason {reason!r}, rank {rank} was already finished")
        if reason not in self._files:
            path = self.stage_dir / REMOVED_DIR / reason / rank_file(rank)
            self._files[reason] = ParquetShardFile(path, shard_schema(with_reason=True))
        row = document_row(doc)
        row[REASON] = reason
        row[DETAIL] = drop.detail
        self._files[reason].add(row)


class LabelledSink:
    """The exclusion writer of a datatrove filter: files what the filter drops as a Drop of the
    step ``label``, with the filter's reason and what it measured (curation.drop_details)."""

    def __init__(self, sink: RemovedSink, label: str):
        self.sink = sink
        self.label = label

    def __enter__(self):
        self.sink.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.sink.__exit__(exc_type, exc, tb)

    def write(self, doc: Document, rank: int = 0) -> None:
        reason = doc.metadata.pop("filter_reason", None) or "dropped"
        self.sink.write(doc, rank, Drop(self.label, reason, doc.metadata.pop(FILTER_DETAIL, None)))


def list_kept_shards(stage_dir: str | Path) -> list[Path]:
    """Kept shard files of a stage, sorted; skips ``_removed`` and other ``_`` folders."""
    stage_dir = Path(stage_dir)
    return sorted(
        p
        for p in stage_dir.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(stage_dir).parts)
    )


def list_removed_shards(stage_dir: str | Path) -> list[Path]:
    removed = Path(stage_dir) / REMOVED_DIR
    return sorted(p for p in removed.rglob("*.parquet") if not p.name.startswith("."))


def shard_rank(path: Path) -> int:
    return int(path.stem)


def clear_rank_outputs(stage_dir: Path, rank: int) -> None:
    """Removes what an interrupted earlier attempt of this rank left, before it runs again."""
    for path in list_kept_shards(stage_dir) + list_removed_shards(stage_dir):
        if shard_rank(path) == rank:
            path.unlink()
    for leftover in Path(stage_dir).glob(f"**/.{rank_file(rank)}.tmp-*"):
        leftover.unlink()


class ShardReader(BaseReader):
    """Reads an earlier stage's kept shards; rank r of n takes every n-th file."""

    name = "📖 shards"

    def __init__(self, stage_dir: str | Path, batch_rows: int = 1_000):
        super().__init__()
        self.stage_dir = Path(stage_dir)
        self.batch_rows = batch_rows

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path in list_kept_shards(self.stage_dir)[rank::world_size]:
            self.stat_update("input_files")
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(batch_size=self.batch_rows):
                for row in batch.to_pylist():
                    with self.track_time():
                        doc = row_document(row)
                    self.stat_update("documents")
                    yield doc
