"""Benchmark files for the contamination index: configuration, reading, row problems.

A benchmark is configured as ``{name, path, fields}``; an item's text is its named
fields joined by newlines, and each field with text is one of its ``parts`` (a problem, its
solution, its choices), which the contamination index matches on their own. JSONL, gzipped JSONL and Parquet are read. A malformed row
(bad JSON, a missing field, a field of the wrong type) does not abort the load: it
becomes a :class:`RowProblem` naming the file and the line, so the caller can record it
in the ledger and go on. A file that is missing or cannot be read at all raises
:class:`BenchmarkFileError`, which names the file.

Item ids are the 0-based row numbers in the file (line number - 1 for JSONL, blank
and malformed lines included), so an id stays valid when a neighbouring row is broken.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from curation.row_files import read_rows, type_name


class BenchmarkFileError(Exception):
    """A benchmark file that is missing, of an unknown format, or unreadable."""


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    path: Path
    fields: tuple[str, ...]

    @classmethod
    def from_dict(cls, entry: Mapping[str, object]) -> "BenchmarkSpec":
        """Validate one configuration entry; errors name the key and what was expected."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"benchmark entry: expected a mapping with name, path, fields, got {entry!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"benchmark entry {entry!r}: key 'name': expected a non-empty string")
        path = entry.get("path")
        if not isinstance(path, (str, Path)) or not str(path):
            raise ValueError(f"benchmark {name!r}: key 'path': expected a file path")
        fields = entry.get("fields")
        if (
            not isinstance(fields, Sequence)
            or isinstance(fields, str)
            or not fields
            or not all(isinstance(f, str) and f for f in fields)
        ):
            raise ValueError(f"benchmark {name!r}: key 'fields': expected a non-empty list of field names")
        return cls(name=name, path=Path(path), fields=tuple(fields))


def parse_benchmark_config(entries: Iterable[Mapping[str, object]]) -> list[BenchmarkSpec]:
    specs = [BenchmarkSpec.from_dict(entry) for entry in entries]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"benchmark names must be unique; repeated: {', '.join(duplicates)}")
    return specs


@dataclass(frozen=True)
class RowProblem:
    """One malformed row: ``line`` is the 1-based line (JSONL) or row (Parquet) number."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class BenchmarkItem:
    item_id: int
    text: str
    parts: tuple[tuple[str, str], ...] = ()  # (field, its text) for each field with text; default: the text

    def __post_init__(self) -> None:
        if not self.parts:
            object.__setattr__(self, "parts", (("text", self.text),))


@dataclass
class Benchmark:
    name: str
    path: Path
    items: list[BenchmarkItem] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def load_benchmark(spec: BenchmarkSpec) -> Benchmark:
    """Read every row of ``spec.path``; malformed rows go to ``problems``, not exceptions."""
    benchmark = Benchmark(name=spec.name, path=spec.path)
    for line, row in read_rows(spec.path, "benchmark file", BenchmarkFileError, spec.fields):
        if isinstance(row, str):
            benchmark.problems.append(RowProblem(spec.path, line, row))
            continue
        parts, error = item_parts(row, spec.fields)
        if error:
            benchmark.problems.append(RowProblem(spec.path, line, error))
        else:
            text = "\n".join(part for _, part in parts)
            benchmark.items.append(BenchmarkItem(line - 1, text, tuple((name, part) for name, part in parts if part.strip())))
    return benchmark


def require_items(benchmark: Benchmark, spec: BenchmarkSpec) -> None:
    """A benchmark whose fields match no row would make the contamination check a silent no-op."""
    if benchmark.items:
        return
    first = benchmark.problems[0] if benchmark.problems else None
    detail = f"; e.g. line {first.line}: {first.message}" if first else " (the file is empty)"
    raise BenchmarkFileError(f"benchmark {spec.name!r}: no item of {spec.path} has the fields {list(spec.fields)}{detail}")


def load_benchmarks(specs: Iterable[BenchmarkSpec]) -> tuple[list[Benchmark], list[RowProblem]]:
    benchmarks = [load_benchmark(spec) for spec in specs]
    return benchmarks, [problem for benchmark in benchmarks for problem in benchmark.problems]


def item_parts(row: Mapping[str, object], fields: Sequence[str]) -> tuple[list[tuple[str, str]], str | None]:
    """The named fields of one row as ``(field, text)``; return ``(parts, None)`` or ``([], error)``.

    A field may be a string or a list of strings (answer choices, joined by newlines);
    anything else is the wrong type. An item whose fields are all blank is refused: it
    would match nothing.
    """
    parts = []
    for name in fields:
        if name not in row:
            return [], f"missing field {name!r}"
        value = row[name]
        if isinstance(value, str):
            parts.append((name, value))
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts.append((name, "\n".join(value)))
        else:
            return [], f"field {name!r}: expected a string or a list of strings, got {type_name(value)}"
    if not any(text.strip() for _, text in parts):
        return [], "empty item: the named fields hold no text"
    return parts, None
