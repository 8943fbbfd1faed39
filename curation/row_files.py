"""Rows of JSONL, gzipped JSONL and Parquet files (benchmark and evaluation task files).

A row that cannot be parsed (bad JSON, not UTF-8, not an object) is yielded as the reason
instead of a row, so the caller can record it with its line and go on; a file that cannot be
read at all raises the caller's error class, naming the file.
"""

import gzip
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

JSONL_SUFFIXES = (".jsonl", ".json")
GZIP_SUFFIXES = (".jsonl.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)

Row = Mapping[str, object]


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def read_rows(
    path: Path, what: str, error: type[Exception], columns: Sequence[str] | None = None
) -> Iterator[tuple[int, Row | str]]:
    """Yield ``(number, row)``: the 1-based line of a JSONL file (blank lines skipped, still
    counted) or row of a Parquet file; ``what`` ("benchmark file") goes into error messages.
    ``columns`` limits a Parquet file to those columns, which it must have."""
    name = path.name.lower()
    if name.endswith(GZIP_SUFFIXES):
        yield from _read_jsonl(path, gzip.open, what, error)
    elif name.endswith(JSONL_SUFFIXES):
        yield from _read_jsonl(path, open, what, error)
    elif name.endswith(PARQUET_SUFFIXES):
        yield from _read_parquet(path, what, error, columns)
    else:
        raise error(f"{path}: unknown {what} format; expected one of {', '.join(JSONL_SUFFIXES + GZIP_SUFFIXES + PARQUET_SUFFIXES)}")


def _read_jsonl(path: Path, opener, what: str, error: type[Exception]) -> Iterator[tuple[int, Row | str]]:
    try:
        with opener(path, "rb") as handle:
            for line, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield line, _parse_json_line(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from exc


def _parse_json_line(raw: bytes) -> Row | str:
    try:
        row = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8: {exc}"
    except json.JSONDecodeError as exc:
        return f"bad JSON: {exc}"
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type_name(row)}"
    return row


def _read_parquet(path: Path, what: str, error: type[Exception], columns: Sequence[str] | None) -> Iterator[tuple[int, Row | str]]:
    try:
        parquet = pq.ParquetFile(path)
        missing = [name for name in columns or () if name not in parquet.schema_arrow.names]
        if missing:
            raise error(f"{path}: no column {', '.join(map(repr, missing))} in this Parquet file")
        number = 0
        for batch in parquet.iter_batches(columns=list(columns) if columns else None):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (OSError, pa.ArrowException) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from exc
