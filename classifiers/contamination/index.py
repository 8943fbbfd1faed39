"""The contamination index: building, saving and loading it, matching and redacting documents."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.benchmarks import Benchmark
from classifiers.contamination.gram_table import EXACT, MASKED, GramTable, item_grams
from classifiers.contamination.hashing import MAX_GRAM_LENGTH, GramHasher
from classifiers.contamination.templates import Template, field_template, without_template
from classifiers.contamination.tokens import Tokens, fold, fold_with_sources, tokenize
from curation.atomic import atomic_path

DEFAULT_N = 13
DEFAULT_MIN_N = 8  # the shortest grams of a short item (GPT-3's decontamination went down to 8)
DEFAULT_THRESHOLD = 0.05
DEFAULT_MAX_ITEMS_PER_GRAM = 10
# grams a part must share with a document, where it has that many: one gram is a phrase (a
# name, "the International Covenant on Civil and Political Rights") that prose uses too
MIN_MATCHED_GRAMS = 2
INDEX_FORMAT_VERSION = 3  # 3: items indexed by field, templates, shorter grams for short items


@dataclass(frozen=True)
class ItemMatch:
    """An item a document holds: by the fractions of its best-matched field."""

    benchmark: str
    item_id: int
    exact_fraction: float
    masked_fraction: float
    field: str = ""

    @property
    def strength(self) -> float:
        return max(self.exact_fraction, self.masked_fraction)

    def as_dict(self) -> dict[str, object]:
        return {
            "benchmark": self.benchmark,
            "item_id": self.item_id,
            "exact_fraction": self.exact_fraction,
            "masked_fraction": self.masked_fraction,
            "field": self.field,
        }


def matches_to_json(matches: Sequence[ItemMatch]) -> str:
    """Compact JSON of a document's matches, for the ``contamination`` metadata column."""
    return json.dumps([match.as_dict() for match in matches], separators=(",", ":"))


@dataclass(frozen=True)
class Redaction:
    text: str
    matches: list[ItemMatch]
    removed_chars: int


@dataclass(frozen=True)
class _Hits:
    """The indexed grams a document holds.

    One entry per gram found (at a position, of a length, in either variant) and the
    distinct key it is; holders are (distinct key, slot) pairs, so a slot's count is of
    its distinct grams, as its total is.
    """

    gram_starts: np.ndarray
    gram_lengths: np.ndarray
    gram_key: np.ndarray  # position among the distinct keys found
    holder_key: np.ndarray  # position among the distinct keys found, one per holder
    holder_slot: np.ndarray


_EMPTY = np.empty(0, dtype=np.int64)
_NO_HITS = _Hits(_EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY)


@dataclass(frozen=True)
class Parts:
    """What is indexed: the fields of the items, each on its own (a problem, its solution),
    so that a copy of one field is not diluted by the others. A slot is ``2 * part + variant``."""

    item: np.ndarray  # int64, the item of each part, in item order
    field: np.ndarray  # int16, the field of each part, an index into ``names``
    names: tuple[str, ...]

    def of_items(self, items: np.ndarray) -> np.ndarray:
        """Whether each part belongs to one of ``items`` (sorted)."""
        return np.isin(self.item, items)


class ContaminationIndex:
    """One gram table of both variants over the items of several benchmarks."""

    def __init__(
        self,
        n: int,
        benchmarks: Sequence[str],
        item_benchmark: np.ndarray,
        item_ids: np.ndarray,
        parts: Parts,
        table: GramTable,
        gram_lengths: Sequence[int],
        row_problems: Mapping[str, Sequence[str]] | None = None,
        spec_hash: str = "",
        templates: Sequence[Template] = (),
    ):
        self.n = n
        self.benchmarks = tuple(benchmarks)
        self.item_benchmark = item_benchmark
        self.item_ids = item_ids
        self.parts = parts
        self.table = table
        self.gram_lengths = tuple(int(length) for length in gram_lengths)
        self.row_problems = {name: list((row_problems or {}).get(name, ())) for name in self.benchmarks}
        self.spec_hash = spec_hash
        self.templates = tuple(templates)
        self._totals = table.grams_per_slot(len(parts.item))
        self._lengths = np.array(self.gram_lengths, dtype=np.int64)
        self._part_starts = np.searchsorted(parts.item, np.arange(len(item_ids) + 1))

    # building

    @classmethod
    def build(
        cls,
        benchmarks: Sequence[Benchmark],
        n: int = DEFAULT_N,
        max_items_per_gram: int = DEFAULT_MAX_ITEMS_PER_GRAM,
        min_n: int = DEFAULT_MIN_N,
    ) -> "ContaminationIndex":
        """Index the fields of the items of ``benchmarks``, each field's template taken off
        (:mod:`.templates`); malformed rows are kept as ``row_problems``."""
        if not 1 <= n <= MAX_GRAM_LENGTH:
            raise ValueError(f"n must be between 1 and {MAX_GRAM_LENGTH}, got {n}")
        if not 1 <= min_n:
            raise ValueError(f"min_n must be at least 1, got {min_n}")
        names = [benchmark.name for benchmark in benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names must be unique, got {names}")
        templates, texts, part_item, part_field = [], [], [], []
        items = [(b, item) for b in benchmarks for item in b.items]
        for benchmark in benchmarks:
            fields = dict.fromkeys(field for item in benchmark.items for field, _ in item.parts)
            found = (field_template(benchmark.name, field, [text for item in benchmark.items for f, text in item.parts if f == field])
                     for field in fields)
            templates += [template for template in found if template]
        by_field = {(template.benchmark, template.field): template for template in templates}
        field_names = sorted({field for _, item in items for field, _ in item.parts})
        for number, (benchmark, item) in enumerate(items):
            stripped = [(field, without_template(text, by_field[benchmark.name, field]) if (benchmark.name, field) in by_field else text)
                        for field, text in item.parts]
            for field, text in indexed_parts(stripped, n):
                texts.append(text)
                part_item.append(number)
                part_field.append(field_names.index(field))
        exact, masked, gram_lengths = item_grams(texts, n, min(min_n, n))
        parts = Parts(np.array(part_item, dtype=np.int64), np.array(part_field, dtype=np.int16), tuple(field_names))
        return cls(
            n=n,
            benchmarks=names,
            item_benchmark=np.repeat(np.arange(len(benchmarks), dtype=np.int16), [len(b.items) for b in benchmarks]),
            item_ids=np.array([item.item_id for _, item in items], dtype=np.int64),
            parts=parts,
            table=GramTable.build(exact, masked, max_items_per_gram),
            gram_lengths=gram_lengths,
            row_problems={b.name: [str(problem) for problem in b.problems] for b in benchmarks},
            templates=templates,
        )

    # persistence

    def save(self, path: str | Path) -> Path:
        """Write the index as one uncompressed ``.npz`` (gram hashes do not compress)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"{path}: the index file name must end in .npz")
        with atomic_path(path) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, **self._arrays())
        return path

    def _arrays(self) -> dict[str, np.ndarray]:
        problems = [(i, text) for i, name in enumerate(self.benchmarks) for text in self.row_problems[name]]
        return {
            "format_version": np.array(INDEX_FORMAT_VERSION),
            "spec_hash": np.array(self.spec_hash),
            "n": np.array(self.n),
            "benchmarks": np.array(self.benchmarks, dtype=np.str_),
            "item_benchmark": self.item_benchmark,
            "item_ids": self.item_ids,
            "part_item": self.parts.item,
            "part_field": self.parts.field,
            "field_names": np.array(self.parts.names, dtype=np.str_),
            "template_benchmark": np.array([t.benchmark for t in self.templates], dtype=np.str_),
            "template_field": np.array([t.field for t in self.templates], dtype=np.str_),
            "template_tokens": np.array([" ".join(t.tokens) for t in self.templates], dtype=np.str_),
            "template_share": np.array([t.share for t in self.templates], dtype=np.float64),
            "gram_lengths": np.array(self.gram_lengths, dtype=np.int64),
            "problem_benchmark": np.array([i for i, _ in problems], dtype=np.int16),
            "problem_text": np.array([text for _, text in problems], dtype=np.str_),
            **{name: getattr(self.table, name) for name in ("keys", "offsets", "slots", "presence")},
        }

    @classmethod
    def load(cls, path: str | Path) -> "ContaminationIndex":
        arrays = _read_arrays(path)
        try:
            return cls._from_arrays(arrays)
        except KeyError as exc:
            raise ValueError(f"{path}: not a contamination index, no array {exc}") from exc

    @staticmethod
    def stored_spec_hash(path: str | Path) -> str | None:
        """The spec hash saved in the index file at ``path``; None if there is no readable index there."""
        try:
            with np.load(path, allow_pickle=False) as archive:
                if int(archive["format_version"]) != INDEX_FORMAT_VERSION:
                    return None
                return str(archive["spec_hash"])
        except (OSError, ValueError, KeyError):
            return None

    @classmethod
    def _from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "ContaminationIndex":
        benchmarks = [str(name) for name in arrays["benchmarks"]]
        row_problems: dict[str, list[str]] = {}
        for i, text in zip(arrays["problem_benchmark"].tolist(), arrays["problem_text"].tolist()):
            row_problems.setdefault(benchmarks[i], []).append(text)
        return cls(
            n=int(arrays["n"]),
            benchmarks=benchmarks,
            item_benchmark=arrays["item_benchmark"],
            item_ids=arrays["item_ids"],
            parts=Parts(arrays["part_item"], arrays["part_field"], tuple(str(name) for name in arrays["field_names"])),
            table=GramTable(arrays["keys"], arrays["offsets"], arrays["slots"], arrays["presence"]),
            gram_lengths=arrays["gram_lengths"].tolist(),
            row_problems=row_problems,
            spec_hash=str(arrays["spec_hash"]),
            templates=[
                Template(str(benchmark), str(field), tuple(str(tokens).split()), float(share))
                for benchmark, field, tokens, share in zip(
                    arrays["template_benchmark"], arrays["template_field"], arrays["template_tokens"], arrays["template_share"]
                )
            ],
        )

    @property
    def nbytes(self) -> int:
        """Memory held by the index arrays."""
        parts = self.parts.item.nbytes + self.parts.field.nbytes + self._part_starts.nbytes
        return self.table.nbytes + self.item_benchmark.nbytes + self.item_ids.nbytes + parts + self._totals.nbytes

    def item_count(self, benchmark: str) -> int:
        return int(np.count_nonzero(self.item_benchmark == self.benchmarks.index(benchmark)))

    # matching

    def match(self, text: str, threshold: float = DEFAULT_THRESHOLD) -> list[ItemMatch]:
        """Items whose exact or masked fraction in ``text`` reaches ``threshold``."""
        validate_threshold(threshold)
        items, fractions = self._matched(self._hits(Tokens.of(fold(text))), threshold)
        return self._item_matches(items, fractions)

    def redact(self, text: str, threshold: float = DEFAULT_THRESHOLD, marker: str = "") -> Redaction:
        """``text`` with the grams of matched items replaced by ``marker`` (removed by default)."""
        validate_threshold(threshold)
        folded, first, last = fold_with_sources(text)
        tokens = Tokens.of(folded)
        hits = self._hits(tokens)
        items, fractions = self._matched(hits, threshold)
        matches = self._item_matches(items, fractions)
        if not matches:
            return Redaction(text=text, matches=matches, removed_chars=0)
        covered = _covered_tokens(hits, self.parts.of_items(np.array(items)), len(tokens.hashes))
        spans = _token_runs(covered, first[tokens.starts], last[tokens.ends - 1], self.n)
        return _cut_spans(text, spans, marker, matches)

    def _hits(self, tokens: Tokens) -> _Hits:
        """Candidate positions and grams from the presence filter, then an exact lookup of the grams that pass."""
        count = len(tokens.hashes)
        if not self.gram_lengths or count < self.gram_lengths[0]:
            return _NO_HITS
        has_numbers = bool(tokens.is_number.any())
        masked = GramHasher(tokens.masked_hashes() if has_numbers else tokens.hashes)
        candidates = self.table.might_hold(masked.prefixes_everywhere(self.gram_lengths[0])).nonzero()[0]
        if len(candidates) == 0:
            return _NO_HITS
        starts, lengths = self._grams_at(candidates, count)
        masked_grams = masked.at(starts, lengths)
        passed = self.table.might_hold(masked_grams).nonzero()[0]
        if len(passed) == 0:
            return _NO_HITS
        starts, lengths, queries = starts[passed], lengths[passed], masked_grams[passed]
        if has_numbers:  # the exact grams, after the masked ones
            queries = np.concatenate((queries, GramHasher(tokens.hashes).at(starts, lengths)))
            starts, lengths = np.concatenate((starts, starts)), np.concatenate((lengths, lengths))
        return self._lookup(starts, lengths, queries)

    def _lookup(self, starts: np.ndarray, lengths: np.ndarray, queries: np.ndarray) -> _Hits:
        """The grams among ``queries`` that are keys, and the holders of those keys.

        Sorted queries make the binary searches share their first steps, and so their
        cache misses.
        """
        distinct, query_of = np.unique(queries, return_inverse=True)
        found, keys = self.table.find(distinct)
        if len(found) == 0:
            return _NO_HITS
        key_of = np.full(len(distinct), -1)
        key_of[found] = np.arange(len(found))
        gram_key = key_of[query_of]
        is_key = gram_key >= 0
        holder_key, holder_slot = self.table.holders(keys)
        return _Hits(starts[is_key], lengths[is_key], gram_key[is_key], holder_key, holder_slot)

    def _grams_at(self, candidates: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and length of a gram of every indexed length at each candidate, where it fits in ``count`` tokens."""
        starts = np.repeat(candidates, len(self._lengths))
        ends = (candidates[:, None] + self._lengths).ravel()
        if ends[-1] > count:  # the last candidate's longest gram ends last
            fits = ends <= count
            starts, ends = starts[fits], ends[fits]
        return starts, ends - starts

    def _matched(self, hits: _Hits, threshold: float) -> tuple[list[int], dict[int, float]]:
        """Items reaching ``threshold`` in either variant, and the fraction of every slot hit."""
        if len(hits.holder_slot) == 0:
            return [], {}
        slots, counts = np.unique(hits.holder_slot, return_counts=True)
        totals = self._totals[slots]
        fractions = dict(zip(slots.tolist(), (counts / totals).tolist()))
        found = (counts / totals >= threshold) & (counts >= np.minimum(MIN_MATCHED_GRAMS, totals))
        return sorted(set(self.parts.item[slots[found] // 2].tolist())), fractions

    def _item_matches(self, items: list[int], fractions: Mapping[int, float]) -> list[ItemMatch]:
        """One match per item, with the fractions of its best-matched part."""
        matches = []
        for item in items:
            parts = range(self._part_starts[item], self._part_starts[item + 1])
            best = max(parts, key=lambda part: max(fractions.get(2 * part + EXACT, 0.0), fractions.get(2 * part + MASKED, 0.0)))
            matches.append(ItemMatch(
                benchmark=self.benchmarks[self.item_benchmark[item]],
                item_id=int(self.item_ids[item]),
                exact_fraction=round(fractions.get(2 * best + EXACT, 0.0), 4),
                masked_fraction=round(fractions.get(2 * best + MASKED, 0.0), 4),
                field=self.parts.names[self.parts.field[best]],
            ))
        return matches


def indexed_parts(parts: Sequence[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """What of an item's fields is indexed, each on its own (field, text).

    A field of 2n tokens or more (a problem, a worked solution) is a part. A shorter one
    (an answer choice, a final answer) is joined to the part before it (the first, to the
    one after): on its own its grams would be short ones, which common phrases match. The
    first field -- the problem, in the order of ``fields`` -- is a part of its own too when
    it has n tokens or more, so that a copy of the problem alone is found whatever follows
    it in the file.
    """
    joined: list[tuple[str, str, int]] = []
    for field, text in parts:
        count = len(tokenize(text))
        if count and joined and count < 2 * n:
            previous, previous_text, previous_count = joined[-1]
            joined[-1] = (previous, f"{previous_text}\n{text}", previous_count + count)
        elif count:
            joined.append((field, text, count))
    if len(joined) > 1 and joined[0][2] < 2 * n:
        (_, first_text, first_count), (field, text, count) = joined[:2]
        joined[:2] = [(field, f"{first_text}\n{text}", first_count + count)]
    indexed = [(field, text) for field, text, _ in joined]
    first_field, first_text = parts[0] if parts else ("", "")
    if (first_field, first_text) not in indexed and len(tokenize(first_text)) >= n:
        indexed.insert(0, (first_field, first_text))
    return indexed


def validate_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")


def _read_arrays(path: str | Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read contamination index: {exc}") from exc
    version = int(arrays.get("format_version", -1))
    if version != INDEX_FORMAT_VERSION:
        raise ValueError(f"{path}: index format version {version}, expected {INDEX_FORMAT_VERSION}; rebuild it")
    return arrays


def _covered_tokens(hits: _Hits, matched_parts: np.ndarray, token_count: int) -> np.ndarray:
    """Boolean mask of tokens inside any gram (either variant) of a part of a matched item."""
    matched_key = np.zeros(int(hits.gram_key.max()) + 1, dtype=bool)
    matched_key[hits.holder_key[matched_parts[hits.holder_slot // 2]]] = True
    gram_matched = matched_key[hits.gram_key]
    starts = hits.gram_starts[gram_matched]
    coverage = np.zeros(token_count + 1, dtype=np.int64)
    np.add.at(coverage, starts, 1)
    np.add.at(coverage, starts + hits.gram_lengths[gram_matched], -1)
    return np.cumsum(coverage[:-1]) > 0


def _token_runs(covered: np.ndarray, starts: np.ndarray, ends: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Character spans of the runs of covered tokens, joining runs less than ``min_gap`` tokens apart.

    A gap shorter than a gram cannot be checked against the index, and in a copy it is
    typically a number-heavy stretch the masked variant leaves out; it goes with the copy.
    """
    edges = np.diff(np.concatenate(([0], covered.astype(np.int8), [0])))
    first = np.flatnonzero(edges == 1)
    last = np.flatnonzero(edges == -1) - 1
    if len(first) == 0:
        return []
    separate = first[1:] - last[:-1] - 1 >= min_gap
    first = first[np.concatenate(([True], separate))]
    last = last[np.concatenate((separate, [True]))]
    return list(zip(starts[first].tolist(), ends[last].tolist()))


def _cut_spans(text: str, spans: list[tuple[int, int]], marker: str, matches: list[ItemMatch]) -> Redaction:
    pieces, cursor, removed = [], 0, 0
    for start, end in spans:
        pieces += [text[cursor:start], marker]
        removed += end - start
        cursor = end
    pieces.append(text[cursor:])
    return Redaction(text="".join(pieces), matches=matches, removed_chars=removed)
