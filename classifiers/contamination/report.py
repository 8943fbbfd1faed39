"""Which items of each benchmark a corpus holds, merged across ranks."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from classifiers.contamination.index import ContaminationIndex, ItemMatch
from curation.atomic import write_text_atomic

@dataclass
class ContaminationReport:
    """Which items of each benchmark were found anywhere in a corpus; merge across ranks.

    ``found`` holds item ids, so merging the reports of several workers counts an item
    found by two of them once. ``row_problems`` are the index's malformed benchmark
    rows, the same in every rank's report.
    """

    items_total: dict[str, int]
    found: dict[str, set[int]] = field(default_factory=dict)
    documents: int = 0
    contaminated_documents: dict[str, int] = field(default_factory=dict)
    row_problems: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def for_index(cls, index: ContaminationIndex) -> "ContaminationReport":
        return cls(
            items_total={name: index.item_count(name) for name in index.benchmarks},
            row_problems={name: list(problems) for name, problems in index.row_problems.items()},
        )

    def add(self, matches: Iterable[ItemMatch]) -> None:
        """Count one document and its matches."""
        matches = list(matches)
        self.documents += 1
        for benchmark in {match.benchmark for match in matches}:
            self.contaminated_documents[benchmark] = self.contaminated_documents.get(benchmark, 0) + 1
        for match in matches:
            self.found.setdefault(match.benchmark, set()).add(match.item_id)

    def merge(self, other: "ContaminationReport") -> "ContaminationReport":
        if other.items_total != self.items_total:
            raise ValueError(
                f"cannot merge reports of different indexes: {self.items_total} vs {other.items_total}"
            )
        merged = ContaminationReport(items_total=dict(self.items_total), row_problems=dict(self.row_problems))
        merged.documents = self.documents + other.documents
        for name in self.items_total:
            merged.found[name] = self.found.get(name, set()) | other.found.get(name, set())
            count = self.contaminated_documents.get(name, 0) + other.contaminated_documents.get(name, 0)
            merged.contaminated_documents[name] = count
        return merged

    def summary(self) -> dict[str, dict[str, float]]:
        """Per benchmark: items, items found, the fraction found, contaminated documents, malformed rows."""
        return {
            name: {
                "items": total,
                "items_found": len(self.found.get(name, ())),
                "fraction_found": len(self.found.get(name, ())) / total if total else 0.0,
                "documents": self.contaminated_documents.get(name, 0),
                "malformed_rows": len(self.row_problems.get(name, ())),
            }
            for name, total in self.items_total.items()
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "items_total": self.items_total,
            "found": {name: sorted(ids) for name, ids in self.found.items()},
            "documents": self.documents,
            "contaminated_documents": self.contaminated_documents,
            "row_problems": self.row_problems,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "ContaminationReport":
        return cls(
            items_total={str(k): int(v) for k, v in data["items_total"].items()},
            found={str(k): {int(i) for i in ids} for k, ids in data["found"].items()},
            documents=int(data["documents"]),
            contaminated_documents={str(k): int(v) for k, v in data["contaminated_documents"].items()},
            row_problems={str(k): [str(p) for p in problems] for k, problems in data["row_problems"].items()},
        )

    def write_json(self, path: str | Path) -> None:
        """Write atomically (temporary file, then rename), one file per rank."""
        path = Path(path)
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def read_json(cls, path: str | Path) -> "ContaminationReport":
        return cls.from_dict(json.loads(Path(path).read_text()))
