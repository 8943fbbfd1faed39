"""Document files as sources: JSON lines (Dolma and the like), Parquet exports, Hugging Face datasets.

The readers are datatrove's (``JsonlReader``, ``ParquetReader``, ``HuggingFaceDatasetReader``)
over an explicit list of files or folders, local or in object storage (:mod:`curation.storage`),
with one change: nothing is skipped in silence. Every record becomes a document or a drop that
the stage intake sends to the ledger as ``<kind>/<reason>`` (``jsonl/bad_json``,
``parquet/no_text_column``, ``hf/no_split``), naming the file and the line or row:

* ``bad_json``: a line that is not a JSON object (``bad_encoding`` when it is not UTF-8);
* ``no_text``: a record whose ``text_key`` field is missing or empty (the fields it has are named);
* ``no_text_column``: a Parquet file or dataset without that column, one drop for all its rows;
* ``not_jsonl`` / ``not_parquet`` / ``not_hf_dataset``: a file of another kind, saying what it
  looks like and which ``kind:`` reads it, never quoting it;
* ``truncated`` / ``corrupt_file``: a file that breaks partway, after the records before the break.

A document's id is ``<source>/<id field>``, or ``<source>/<file's stable name>#<row>`` when the
record has no id; ``source`` is the source's name. The record's other fields (or those in ``keep``)
stay in the document's metadata under their own names -- ``url``, ``title`` and ``author`` fill
curate's columns of that name -- and a field named like another curate column is kept as
``original_<name>`` (a Dolma record's ``source``, say).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader
from datatrove.utils.logging import logger

from curation.documents import DETAIL, EXTRA, METADATA_SCHEMA, REASON
from curation.drops import DROP_MARK, Drop, mark
from curation.sources.names import source_names
from curation.sources.sharding import FilesByRank
from curation.sources.sniff import GZIP_MAGIC, PARQUET_MAGIC, ZSTD_MAGIC, content_head, describe, wrong_kind
from curation.storage import filesystem, fsspec_options, is_url, open_binary

SNIFF_BYTES = 1 << 16
BATCH_ROWS = 1_000
PASSTHROUGH = frozenset({"url", "title", "author"})  # fields that mean what curate's columns of that name mean
RESERVED = frozenset(METADATA_SCHEMA) | {"id", "text", EXTRA, REASON, DETAIL, DROP_MARK}
BROKEN_STREAM = (EOFError, OSError, zlib.error, zstandard.ZstdError)


@dataclass(frozen=True)
class FieldMapping:
    """How a source's records become documents."""

    source: str  # the source's name: each document's ``source`` and its ids' prefix
    domain: str | None  # None: left to the domain classifier
    text_key: str = "text"
    id_key: str | None = "id"
    keep: tuple[str, ...] | None = None  # fields kept in the metadata; None: every other field

    def columns(self, available: list[str]) -> list[str] | None:
        """The columns to read from a table with ``available`` columns (None: all of them)."""
        if self.keep is None:
            return None
        wanted = [self.text_key, *([self.id_key] if self.id_key else []), *self.keep]
        return [name for name in dict.fromkeys(wanted) if name in available]


class DocumentFileReading(FilesByRank):
    """What the three readers share: records to documents, drops, and each rank's files."""

    expected = "a document file"

    def setup(self, fields: FieldMapping, paths: list[str], names: Mapping[str, str] | None, storage: Mapping | None):
        self.fields = fields
        self.paths = list(paths)
        self.names = source_names(self.paths, names)
        self.storage = dict(storage or {})

    def located(self, path: str, row: int | None) -> dict:
        where = {"source": self.fields.source, "source_file": path}
        if self.fields.domain is not None:
            where["domain"] = self.fields.domain
        return where | ({"source_row": row} if row is not None else {})

    def drop(self, path: str, row: int | None, reason: str, detail: str) -> Document:
        self.stat_update(reason)
        logger.warning(detail)
        suffix = f"#{row}" if row is not None else ""
        doc = Document(text="", id=f"{self.fields.source}/{self.names[path]}{suffix}", metadata=self.located(path, row))
        return mark(doc, Drop(self.drop_step, reason, detail))

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int) -> Document:
        fields = self.fields
        text = data.get(fields.text_key)
        if not isinstance(text, str) or not text.strip():
            found = "empty" if isinstance(text, str) else ("missing" if text is None else f"a {type(text).__name__}, not text")
            return self.drop(source_file, id_in_file, "no_text",
                             f"{source_file}: row {id_in_file}: field {fields.text_key!r} is {found} "
                             f"(fields: {', '.join(sorted(map(str, data)))}); set text_key")
        record_id = data.get(fields.id_key) if fields.id_key else None
        doc_id = f"{fields.source}/{record_id}" if record_id not in (None, "") else f"{fields.source}/{self.names[source_file]}#{id_in_file}"
        kept = fields.keep if fields.keep is not None else [key for key in data if key not in (fields.text_key, fields.id_key)]
        metadata = {}
        for key in kept:
            if key not in data or data[key] is None:
                continue
            value = data[key]
            if key in PASSTHROUGH and isinstance(value, str):
                metadata[key] = value
            else:
                metadata[f"original_{key}" if key in RESERVED else key] = value
        document = Document(text=text, id=doc_id, metadata=metadata | self.located(source_file, id_in_file))
        self.update_doc_stats(document)
        return document

    def read_file(self, filepath: str) -> DocumentsPipeline:
        with open_binary(filepath, self.storage) as raw:
            head = raw.read(SNIFF_BYTES)
            raw.seek(0)
            yield from self.read_opened(filepath, raw, head)

    def read_opened(self, path: str, raw, head: bytes) -> DocumentsPipeline:
        """The documents of a file open as ``raw``, whose first bytes are ``head``."""
        raise NotImplementedError


def starts_an_object(content: bytes | None) -> bool:
    return bool(content) and content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def decompressed(raw, head: bytes):
    """A binary stream of the file's content, gzip or zstd undone by their magic bytes, not by the name."""
    if head[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw)
    if head[:4] == ZSTD_MAGIC:
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))
    return raw


class JsonlSource(DocumentFileReading, JsonlReader):
    """JSON lines files (plain, gzip or zstd), one document per line."""

    drop_step = "jsonl"  # its drops are filed as jsonl/<reason>
    name = "🐿 jsonl"
    expected = "JSON lines"

    def __init__(self, fields: FieldMapping, paths: list[str], names: Mapping[str, str] | None = None, storage: Mapping | None = None):
        JsonlReader.__init__(self, data_folder="/", text_key=fields.text_key, id_key=fields.id_key or "id")
        self.setup(fields, paths, names, storage)

    def read_opened(self, path: str, raw, head: bytes) -> DocumentsPipeline:
        if not starts_an_object(content_head(head)):  # each line is checked as it is read
            yield self.drop(path, None, "not_jsonl", wrong_kind(path, describe(head), self.expected))
            return
        yield from self.read_lines(path, decompressed(raw, head))

    def read_lines(self, path: str, stream) -> DocumentsPipeline:
        row = -1
        try:
            for row, line in enumerate(stream):
                if not line.strip():
                    continue
                with self.track_time():
                    yield self.line_document(path, row, line)
        except BROKEN_STREAM as err:
            reason = "truncated" if isinstance(err, EOFError) else "corrupt_file"
            yield self.drop(path, row + 1, reason, f"{path}: unreadable after line {row}: {type(err).__name__}: {err}")

    def line_document(self, path: str, row: int, line: bytes) -> Document:
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            reason = "bad_encoding" if "UTF-8" in str(err) else "bad_json"
            return self.drop(path, row, reason, f"{path}: line {row}: not JSON ({err})")
        if not isinstance(data, dict):
            return self.drop(path, row, "bad_json", f"{path}: line {row}: a JSON {type(data).__name__}, not an object")
        return self.get_document_from_dict(data, path, row)


class ParquetSource(DocumentFileReading, ParquetReader):
    """Parquet files, one document per row, read a batch at a time."""

    drop_step = "parquet"  # its drops are filed as parquet/<reason>
    name = "📒 parquet"
    expected = "a Parquet file"

    def __init__(self, fields: FieldMapping, paths: list[str], names: Mapping[str, str] | None = None, storage: Mapping | None = None):
        ParquetReader.__init__(self, data_folder="/", text_key=fields.text_key, id_key=fields.id_key or "id", batch_size=BATCH_ROWS)
        self.setup(fields, paths, names, storage)

    def read_opened(self, path: str, raw, head: bytes) -> DocumentsPipeline:
        if not head.startswith(PARQUET_MAGIC):
            yield self.drop(path, None, "not_parquet", wrong_kind(path, describe(head), self.expected))
            return
        try:
            table = pq.ParquetFile(raw)
        except (pa.ArrowException, OSError) as err:
            yield self.drop(path, None, "corrupt_file", f"{path}: not a readable Parquet file: {err}")
            return
        columns = table.schema_arrow.names
        if self.fields.text_key not in columns:
            yield self.drop(path, None, "no_text_column",
                            f"{path}: no column {self.fields.text_key!r} for its {table.metadata.num_rows:,} rows "
                            f"(columns: {', '.join(columns)}); set text_key")
            return
        yield from self.read_row_groups(path, table, self.fields.columns(columns))

    def read_row_groups(self, path: str, table: pq.ParquetFile, columns: list[str] | None) -> DocumentsPipeline:
        row = 0
        for group in range(table.num_row_groups):
            rows, done = table.metadata.row_group(group).num_rows, 0
            try:
                for batch in table.iter_batches(batch_size=self.batch_size, row_groups=[group], columns=columns):
                    with self.track_time("batch"):
                        documents = [self.get_document_from_dict(record, path, row + done + i) for i, record in enumerate(batch.to_pylist())]
                    done += len(documents)
                    yield from documents
            except (pa.ArrowException, OSError) as err:
                first, last = row + done, row + rows - 1
                yield self.drop(path, first, "corrupt_file", f"{path}: rows {first}-{last} (row group {group}) unreadable: {err}")
            row += rows


class HfDatasetSource(DocumentFileReading, HuggingFaceDatasetReader):
    """Hugging Face datasets saved with ``save_to_disk`` (a Dataset, or a DatasetDict with ``split``)
    and ``.arrow`` dataset files. Every rank reads its share of every dataset's rows
    (rows rank, rank + n, ...), so a row's number is its index in the dataset."""

    drop_step = "hf"  # its drops are filed as hf/<reason>
    name = "🤗 hf dataset"
    expected = "a Hugging Face dataset"

    def __init__(self, fields: FieldMapping, paths: list[str], names: Mapping[str, str] | None = None,
                 storage: Mapping | None = None, split: str = "train"):
        HuggingFaceDatasetReader.__init__(self, dataset=paths[0] if paths else "", text_key=fields.text_key,
                                          id_key=fields.id_key or "id", batch_size=BATCH_ROWS, load_from_disk=True)
        self.setup(fields, paths, names, storage)
        self.split = split

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path in self.paths:
            dataset, problem = self.open_dataset(path)
            if problem:
                if rank == 0:  # one drop for the dataset, not one per rank
                    yield self.drop(path, None, *problem)
                continue
            self.stat_update("input_files")
            yield from self.read_rows(path, self._get_dataset_shard(dataset, rank, world_size), rank, world_size)

    def read_rows(self, path: str, shard, rank: int, world_size: int) -> DocumentsPipeline:
        index = 0
        for batch in shard.iter(self.batch_size):
            with self.track_time("batch"):
                records = [dict(zip(batch, values)) for values in zip(*batch.values())]
                documents = [self.get_document_from_dict(record, path, rank + (index + i) * world_size) for i, record in enumerate(records)]
            index += len(records)
            yield from documents

    def open_dataset(self, path: str):
        """``(dataset, None)``, or ``(None, (reason, detail))`` for what is not a readable dataset."""
        import datasets

        fs, inner = filesystem(path, self.storage)
        try:
            if not fs.isdir(inner):
                with fs.open(inner, "rb") as file:
                    head = file.read(SNIFF_BYTES)
                found = describe(head)
                if found != "Arrow data" or is_url(path):
                    return None, ("not_hf_dataset", wrong_kind(path, found, self.expected))
                dataset = datasets.Dataset.from_file(path)
            else:
                saved = {"state.json", "dataset_dict.json"} & {entry.rsplit("/", 1)[-1] for entry in fs.ls(inner, detail=False)}
                if not saved:
                    return None, ("not_hf_dataset", f"{path}: a folder without a dataset saved by save_to_disk "
                                                    "(no state.json or dataset_dict.json)")
                dataset = datasets.load_from_disk(path, storage_options=fsspec_options(self.storage) or None)
        except (OSError, ValueError, pa.ArrowException) as err:
            return None, ("corrupt_file", f"{path}: the dataset does not load: {type(err).__name__}: {err}")
        if isinstance(dataset, datasets.DatasetDict):
            if self.split not in dataset:
                return None, ("no_split", f"{path}: no split {self.split!r} (splits: {', '.join(dataset)}); set split")
            dataset = dataset[self.split]
        if self.fields.text_key not in dataset.column_names:
            return None, ("no_text_column", f"{path}: no column {self.fields.text_key!r} for its {dataset.num_rows:,} rows "
                                            f"(columns: {', '.join(dataset.column_names)}); set text_key")
        columns = self.fields.columns(dataset.column_names)
        return (dataset.select_columns(columns) if columns else dataset), None
