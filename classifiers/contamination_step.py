"""The contamination step of a stage: match documents against the benchmark index, then drop, redact or annotate.

Before the stage's ranks run, ``build_index_file`` builds the index once (or finds it
already built from the same benchmark files and settings). Each worker process reads
it once, when its first rank starts. Each rank writes its per-benchmark report to
``<report_dir>/<rank>.json`` (rank 3: ``00003.json``, as shards are named) when it has
seen all its documents; ``merge_reports`` combines them into what the pipeline shows
as the ``contamination`` view.
"""

import functools
import hashlib
import json
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from classifiers.benchmarks import BenchmarkFileError, BenchmarkSpec, load_benchmarks, require_items
from classifiers.contamination import (
    DEFAULT_MAX_ITEMS_PER_GRAM,
    DEFAULT_N,
    DEFAULT_THRESHOLD,
    INDEX_FORMAT_VERSION,
    ContaminationIndex,
    ContaminationReport,
    ItemMatch,
    matches_to_json,
    tokenize,
    validate_threshold,
)
from curation.drops import Drop
from curation.process_cache import per_process
from curation.shards import RemovedSink

CONTAMINATION = "contamination"  # the metadata key, and so the shards' column (curation.documents)
ACTIONS = ("drop", "redact", "annotate")
DROP_STEP = "contamination"  # drops are filed as contamination/<benchmark> or contamination/redacted_empty
REDACTED_EMPTY = "redacted_empty"
DEFAULT_MIN_WORDS_AFTER_REDACTION = 50
DETAIL_MATCHES = 10  # matches named in a drop's detail; the column holds them all


# --- the index file ------------------------------------------------------------------


def build_index_file(
    specs: Sequence[BenchmarkSpec],
    out_path: str | Path,
    n: int = DEFAULT_N,
    max_items_per_gram: int = DEFAULT_MAX_ITEMS_PER_GRAM,
) -> Path:
    """Build the index of ``specs`` at ``out_path``, unless the file there was built from the same inputs.

    The inputs are hashed together (see ``spec_hash``): a changed benchmark file, spec or
    setting rebuilds. Malformed benchmark rows do not stop the build; they are logged,
    saved in the index, and listed in every rank's report. A missing or unreadable
    benchmark file raises ``BenchmarkFileError`` naming it.
    """
    out_path = Path(out_path)
    digest = spec_hash(specs, n, max_items_per_gram)
    if ContaminationIndex.stored_spec_hash(out_path) == digest:
        logger.info(f"{out_path}: contamination index is up to date")
        return out_path
    benchmarks, problems = load_benchmarks(specs)
    for benchmark, spec in zip(benchmarks, specs):
        require_items(benchmark, spec)
    for problem in problems:
        logger.warning(f"malformed benchmark row, left out of the contamination index: {problem}")
    index = ContaminationIndex.build(benchmarks, n=n, max_items_per_gram=max_items_per_gram)
    for template in index.templates:
        logger.warning(f"prompt template in a benchmark file, left out of the contamination index: {template.describe()}")
    index.spec_hash = digest
    index.save(out_path)
    logger.info(
        f"{out_path}: contamination index of {len(index.item_ids):,} items "
        f"({', '.join(index.benchmarks)}), {len(problems)} malformed rows"
    )
    return out_path


def spec_hash(specs: Sequence[BenchmarkSpec], n: int, max_items_per_gram: int) -> str:
    """SHA-256 of everything an index is built from: the specs, their files' contents, the settings, the format."""
    description = {
        "format_version": INDEX_FORMAT_VERSION,
        "n": n,
        "max_items_per_gram": max_items_per_gram,
        "benchmarks": [
            {"name": spec.name, "path": str(spec.path), "fields": list(spec.fields), "sha256": _file_sha256(spec.path)}
            for spec in specs
        ],
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise BenchmarkFileError(f"{path}: cannot read benchmark file: {exc}") from exc


load_index = per_process(ContaminationIndex.load, keep=2)  # read once per process, again if the file is replaced


# --- the step ------------------------------------------------------------------------


class ContaminationStep(PipelineStep):
    """Matches each document against the benchmark index; drops, redacts or annotates the contaminated ones.

    A matched document gets the ``contamination`` column (JSON of its matches, see
    ``matches_to_json``); a clean one passes untouched. Then, by ``action``:

    - ``drop``: the document goes to the stage's ``RemovedSink`` under
      ``contamination/<benchmark>``, the benchmark of its strongest match, with the
      matched items and their fractions as the detail;
    - ``redact``: the matched grams are cut from the text (see
      ``ContaminationIndex.redact``); a document left with fewer than
      ``min_words_after_redaction`` word tokens goes to the sink as it came in, under
      ``contamination/redacted_empty``;
    - ``annotate``: nothing more.

    Each rank writes its report to ``<report_dir>/<rank>.json`` once it has seen all its
    documents, so a failed rank leaves no partial one; rank 0 removes the reports of
    ranks beyond ``world_size`` left by an earlier run with more tasks. The step holds
    the index's path, not the index, so it pickles small.
    """

    name = "🧪 contamination"
    type = "🏷 - CLASSIFIER"

    def __init__(
        self,
        index_path: str | Path,
        report_dir: str | Path,
        action: str = "annotate",
        removed: RemovedSink | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        min_words_after_redaction: int = DEFAULT_MIN_WORDS_AFTER_REDACTION,
    ):
        super().__init__()
        if action not in ACTIONS:
            raise ValueError(f"contamination action must be one of {', '.join(ACTIONS)}, got {action!r}")
        if action != "annotate" and removed is None:
            raise ValueError(f"contamination action {action!r} drops documents: pass the stage's RemovedSink")
        validate_threshold(threshold)
        self.index_path = Path(index_path)
        self.report_dir = Path(report_dir)
        self.action = action
        self.removed = removed
        self.threshold = threshold
        self.min_words_after_redaction = min_words_after_redaction

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if rank == 0:
            remove_reports_beyond(self.report_dir, world_size)
        index = load_index(self.index_path)
        report = ContaminationReport.for_index(index)
        with nullcontext() if self.removed is None else self.removed:
            for doc in data:
                with self.track_time():
                    kept = self._process(doc, index, report, rank)
                if kept:
                    yield doc
        self.report_dir.mkdir(parents=True, exist_ok=True)
        report.write_json(self.report_dir / report_file(rank))

    def _process(self, doc: Document, index: ContaminationIndex, report: ContaminationReport, rank: int) -> bool:
        """Match, annotate and act on one document; False when it went to the sink."""
        if self.action == "redact":
            redaction = index.redact(doc.text, self.threshold)
            matches = redaction.matches
        else:
            matches = index.match(doc.text, self.threshold)
        report.add(matches)
        if not matches:
            self.stat_update("clean")
            return True
        self.stat_update("contaminated", *{f"contaminated_{match.benchmark}" for match in matches})
        doc.metadata[CONTAMINATION] = matches_to_json(matches)
        if self.action == "drop":
            self.removed.write(doc, rank, Drop(DROP_STEP, strongest(matches).benchmark, describe_matches(matches)))
            self.stat_update("dropped")
            return False
        if self.action == "redact":
            return self._redact(doc, redaction.text, matches, rank)
        return True

    def _redact(self, doc: Document, text: str, matches: list[ItemMatch], rank: int) -> bool:
        words_left = len(tokenize(text))
        if words_left < self.min_words_after_redaction:
            detail = f"{words_left} words left after redaction (< {self.min_words_after_redaction}); "
            self.removed.write(doc, rank, Drop(DROP_STEP, REDACTED_EMPTY, detail + describe_matches(matches)))
            self.stat_update("dropped_redacted_empty")
            return False
        doc.text = text
        self.stat_update("redacted")
        return True


def strongest(matches: Sequence[ItemMatch]) -> ItemMatch:
    """The match with the highest fraction (exact or masked); the first of them on a tie."""
    return max(matches, key=lambda match: match.strength)


def describe_matches(matches: Sequence[ItemMatch]) -> str:
    """The strongest matches first, e.g. ``gsm8k#12 exact=1.00 masked=1.00; mmlu#40 exact=0.08 masked=0.08``."""
    ranked = sorted(matches, key=lambda match: match.strength, reverse=True)
    parts = [
        f"{m.benchmark}#{m.item_id} exact={m.exact_fraction:.2f} masked={m.masked_fraction:.2f}"
        for m in ranked[:DETAIL_MATCHES]
    ]
    if len(ranked) > DETAIL_MATCHES:
        parts.append(f"+{len(ranked) - DETAIL_MATCHES} more")
    return "; ".join(parts)


# --- reports -------------------------------------------------------------------------


def report_file(rank: int) -> str:
    return f"{rank:05d}.json"


def remove_reports_beyond(report_dir: Path, world_size: int) -> None:
    """Delete the reports of ranks >= ``world_size``: no rank of this run writes them."""
    for path in Path(report_dir).glob("*.json"):
        if path.stem.isdigit() and int(path.stem) >= world_size:
            path.unlink()


def merge_reports(report_dir: str | Path) -> dict:
    """Combine the ranks' reports: per benchmark, the items found anywhere (each once) over the items in it.

    Returns ``{"ranks", "documents", "benchmarks", "row_problems"}``. ``benchmarks`` has
    one row per benchmark, the rows of the ``contamination`` view: ``benchmark``,
    ``items``, ``items_found``, ``fraction_found``, ``documents`` (contaminated
    documents), ``malformed_rows`` and ``found_item_ids``. ``row_problems`` names each
    malformed benchmark row as ``path:line: message``.
    """
    paths = sorted(Path(report_dir).glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"{report_dir}: no contamination reports (<rank>.json) to merge")
    merged = functools.reduce(ContaminationReport.merge, map(_read_report, paths))
    return {
        "ranks": len(paths),
        "documents": merged.documents,
        "benchmarks": [
            {"benchmark": name, **stats, "found_item_ids": sorted(merged.found.get(name, ()))}
            for name, stats in merged.summary().items()
        ],
        "row_problems": [problem for problems in merged.row_problems.values() for problem in problems],
    }


def _read_report(path: Path) -> ContaminationReport:
    try:
        return ContaminationReport.read_json(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a contamination report: {exc}") from exc
