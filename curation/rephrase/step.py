"""The rephrase stage's datatrove step: synthetic documents from an LLM, originals kept.

Selected documents are rephrased in batches through :class:`Rephraser` (one
``rephrase_sync`` call per batch, so a rank keeps up to ``max_concurrency`` requests
in flight). Every input document is yielded unchanged; each successful rephrasing
follows its parent as a new document with ``source="synthetic"``, its lineage and its
token usage. Every attempt, kept or rejected, is counted under ``documents_created``;
a rejected one goes to the drop ledger as ``rephrase/<reason>``, so the stage balances:
in + created = kept + removed.

LLM requests are counted per rank: ``llm_requests`` (issued, cache hits aside),
``llm_failed_requests`` (failed for good) and ``llm_failed_<reason>`` for each
:class:`curation.rephrase.client.LLMError` reason seen. A rank whose first requests
all fail for one reason stops with a :class:`curation.errors.UserError` (see
``RephraserConfig.fail_fast_requests``).

Documents outside the selection are yielded as soon as they arrive, while selected
ones wait for their batch: the order of a rank's output differs from its input's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger
from datatrove.utils.typeshelper import StatHints

from curation.drops import Drop
from curation.intake import CREATED_COUNTER
from curation.rephrase.cache import cache_key
from curation.rephrase.client import ClientConfig
from curation.rephrase.rephraser import (
    Outcome,
    RephraseInput,
    Rephrased,
    Rephraser,
    RephraserConfig,
    RephraserStats,
    route_styles,
)
from curation.rephrase.styles import Style, chunk_text, load_styles
from curation.shards import RemovedSink

NO_ENDPOINT_MESSAGE = "rephrase: no endpoint configured, passing documents through"
SYNTHETIC_SOURCE = "synthetic"
CARRIED_KEYS = ("url", "lang", "license", "opt_out")
"""Parent metadata a synthetic document inherits: where its content came from and the
rights attached to it (a rephrasing is a derivative of its parent)."""

SYNTHETIC_COUNTER = "synthetic"  # synthetic documents kept (created counts the rejected ones too)


@functools.lru_cache(maxsize=4)
def selected_ids(ids_file: str) -> frozenset[str]:
    """The ids a SQL selection chose, read once per worker process."""
    return frozenset(pq.read_table(ids_file, columns=["id"]).column("id").to_pylist())


@dataclass(frozen=True)
class Selection:
    """Which documents are rephrased; the others pass through untouched.

    ``domains`` None selects every domain. The quality band is inclusive at both ends;
    with either bound set, a document without a ``quality_score`` is not selected.
    ``ids_file``: a Parquet file with an ``id`` column (the stage writes it from a SQL
    predicate before the ranks run); only those documents are selected.
    Synthetic documents are never selected, so rephrasings are not rephrased again.
    """

    domains: tuple[str, ...] | None = None
    min_quality: float | None = None
    max_quality: float | None = None
    ids_file: str | None = None

    def __post_init__(self) -> None:
        if self.min_quality is not None and self.max_quality is not None and self.min_quality > self.max_quality:
            raise ValueError("min_quality must not exceed max_quality")

    def selects(self, metadata: Mapping, doc_id: str | None = None) -> bool:
        if metadata.get("source") == SYNTHETIC_SOURCE:
            return False
        if self.domains is not None and metadata.get("domain") not in self.domains:
            return False
        if self.ids_file is not None and doc_id not in selected_ids(self.ids_file):
            return False
        return self._in_quality_band(metadata.get("quality_score"))

    def _in_quality_band(self, score: float | None) -> bool:
        if self.min_quality is None and self.max_quality is None:
            return True
        if score is None:
            return False
        above_min = self.min_quality is None or score >= self.min_quality
        below_max = self.max_quality is None or score <= self.max_quality
        return above_min and below_max


@dataclass(frozen=True)
class FixedStyles:
    """The same styles for every selected document."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("FixedStyles needs at least one style")

    def styles_for(self, metadata: Mapping) -> tuple[str, ...]:
        return self.names

    def style_names(self) -> tuple[str, ...]:
        return self.names


@dataclass(frozen=True)
class QualityRouting:
    """Nemotron-CC routing by ``quality_score`` (see :func:`route_styles`).

    A document without a score, or in the middle band, gets no styles and passes through.
    """

    low_threshold: float
    high_threshold: float

    def __post_init__(self) -> None:
        if self.low_threshold > self.high_threshold:
            raise ValueError("low_threshold must not exceed high_threshold")

    def styles_for(self, metadata: Mapping) -> tuple[str, ...]:
        score = metadata.get("quality_score")
        if score is None:
            return ()
        return route_styles(score, low_threshold=self.low_threshold, high_threshold=self.high_threshold)

    def style_names(self) -> tuple[str, ...]:
        """Every style the routing can choose: those of the lowest and of the highest scores."""
        return self.styles_for({"quality_score": float("-inf")}) + self.styles_for({"quality_score": float("inf")})


StyleChoice = FixedStyles | QualityRouting


def synthetic_id(parent_id: str, style: str) -> str:
    return f"{parent_id}#{style}"


def rejection_drop(reason: str, detail: str) -> Drop:
    """A Rephraser rejection as a drop (``llm_error:http_500`` -> ``rephrase/llm_error_http_500``)."""
    return Drop("rephrase", re.sub(r"[^A-Za-z0-9_]", "_", reason), detail)


def lineage_metadata(parent: Document, style: str, model: str) -> dict:
    metadata = {
        "source": SYNTHETIC_SOURCE,
        "domain": f"{SYNTHETIC_SOURCE}/{style}",
        "parent_id": parent.id,
        "synthetic_style": style,
        "synthetic_model": model,
    }
    metadata.update({key: parent.metadata[key] for key in CARRIED_KEYS if parent.metadata.get(key) is not None})
    return metadata


def synthetic_document(parent: Document, outcome: Rephrased, model: str) -> Document:
    metadata = lineage_metadata(parent, outcome.style, model)
    metadata["llm_prompt_tokens"] = outcome.usage.prompt_tokens
    metadata["llm_completion_tokens"] = outcome.usage.completion_tokens
    return Document(text=outcome.text, id=synthetic_id(parent.id, outcome.style), metadata=metadata)


def rejected_answer(rephraser: Rephraser, parent_text: str, style: Style, reason: str) -> str:
    """The answer that was rejected with ``reason``, or "" when there was none.

    :class:`Rejected` does not carry the answer, but the Rephraser caches every answer
    before judging it, so the rejected one is the first cached chunk answer that the
    same rule rejects. Errors, an exhausted budget and empty input leave no answer.
    """
    model = rephraser.client_config.model
    for chunk in chunk_text(parent_text, rephraser.chunk_budget_tokens(style)):
        result = rephraser.cache.get(cache_key(model, style.name, style.version, chunk))
        if result is not None and rephraser.rejection_reason(chunk, result) == reason:
            return result.text
    return ""


class RephraseStep(PipelineStep):
    """Adds LLM rephrasings of selected documents after them; see the module docstring."""

    name = "✍ rephrase"
    type = "🤖 - SYNTHESIS"

    def __init__(
        self,
        removed: RemovedSink,
        client_config: ClientConfig | None,
        *,
        cache_dir: str | Path,
        styles: StyleChoice,
        rephraser_config: RephraserConfig = RephraserConfig(),
        selection: Selection = Selection(),
        batch_size: int = 256,
    ):
        """``batch_size`` counts documents per ``rephrase_sync`` call; keep it well above
        ``max_concurrency`` so the slots stay busy. ``rephraser_config.budget_tokens``
        applies per rank (one Rephraser per task)."""
        super().__init__()
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.removed = removed
        self.client_config = client_config
        self.cache_dir = Path(cache_dir)
        self.styles = styles
        self.rephraser_config = rephraser_config
        self.selection = selection
        self.batch_size = batch_size
        self.prompt_styles = load_styles()
        unknown = sorted(set(styles.style_names()) - set(self.prompt_styles))
        if unknown:
            raise ValueError(f"unknown rephrase style(s) {unknown}; known: {sorted(self.prompt_styles)}")

    def styles_for(self, doc: Document) -> tuple[str, ...]:
        """The styles to generate for ``doc``; empty when it passes through."""
        if not self.selection.selects(doc.metadata, doc.id):
            return ()
        return self.styles.styles_for(doc.metadata)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if self.client_config is None:
            logger.warning(NO_ENDPOINT_MESSAGE)
            yield from data
            return
        rephraser = Rephraser(self.client_config, self.cache_dir, self.rephraser_config, self.prompt_styles)
        with self.removed:
            batch: list[tuple[Document, tuple[str, ...]]] = []
            for doc in data:
                self.stat_update(StatHints.total)
                styles = self.styles_for(doc)
                if not styles:
                    self.stat_update("passed_through")
                    yield doc
                    continue
                batch.append((doc, styles))
                if len(batch) == self.batch_size:
                    yield from self._rephrase_batch(batch, rephraser, rank)
                    batch = []
            yield from self._rephrase_batch(batch, rephraser, rank)
        self._record_llm_stats(rephraser.stats)

    def _rephrase_batch(
        self, batch: Sequence[tuple[Document, tuple[str, ...]]], rephraser: Rephraser, rank: int
    ) -> Iterator[Document]:
        """Yields each parent followed by its kept rephrasings; rejected ones go to the sink."""
        if not batch:
            return
        inputs = [RephraseInput(doc.id, doc.text, style) for doc, styles in batch for style in styles]
        self.stat_update("selected", value=len(batch))
        with self.track_time(unit="batch"):
            outcomes = iter(rephraser.rephrase_sync(inputs))
        for parent, styles in batch:
            yield parent
            for outcome in islice(outcomes, len(styles)):
                yield from self._settle(parent, outcome, rephraser, rank)

    def _settle(self, parent: Document, outcome: Outcome, rephraser: Rephraser, rank: int) -> Iterator[Document]:
        """Counts one attempt as created, then yields it (kept) or files it in the ledger (rejected)."""
        self.stat_update(CREATED_COUNTER)
        model = rephraser.client_config.model
        if outcome.ok:
            self.stat_update(SYNTHETIC_COUNTER)
            yield synthetic_document(parent, outcome, model)
            return
        self.stat_update(f"rejected_{outcome.reason}")
        style = rephraser.style(outcome.style)
        rejected = Document(
            text=rejected_answer(rephraser, parent.text, style, outcome.reason),
            id=synthetic_id(parent.id, outcome.style),
            metadata=lineage_metadata(parent, outcome.style, model),
        )
        detail = f"parent {parent.id}, style {outcome.style}: {outcome.reason}"
        self.removed.write(rejected, rank, rejection_drop(outcome.reason, detail))

    def _record_llm_stats(self, stats: RephraserStats) -> None:
        self.stat_update("llm_requests", value=stats.requests)
        self.stat_update("llm_cache_hits", value=stats.cache_hits)
        self.stat_update("llm_retries", value=stats.client.retries)
        self.stat_update("llm_spent_tokens", value=stats.spent_tokens)
        self.stat_update("llm_failed_requests", value=stats.client.failures)
        for reason, count in sorted(stats.client.failed_by_reason.items()):
            self.stat_update(f"llm_failed_{reason}", value=count)
