"""Benchmark contamination: an n-gram index of test items, matching, redaction, reports.

Text is normalized (NFKC, lower case, punctuation stripped, whitespace folded) into word
tokens. A number such as ``80,000`` or ``3.5`` stays one token, so changing it keeps
the token count; a token holding a digit is a *number token*.

Each benchmark item is indexed twice, as word n-grams (n = 13 by default, as in GPT-3):

- *exact*: the n-grams of its tokens;
- *masked*: the n-grams after every number token is replaced by one placeholder, so a
  document that copies an item with its numbers changed but its words kept still
  matches.

An item with fewer than n tokens is indexed as one gram of its own length and so
matches as a whole normalized string on word boundaries.

n-grams are hashed to 64 bits: each token by blake2b (stable across processes and
machines), a gram by a polynomial over its token hashes, computed for all positions of
a document at once from prefix sums, then mixed. An index table is CSR-like: sorted
unique gram hashes, offsets, and the item ids under each hash.

A gram shared by more than ``max_items_per_gram`` items is template text (MMLU's
"For which of these two scenarios does the main character ..." opens 895 items) and is
left out of the index: it says nothing about which item was copied, and it would make
one copied item look like hundreds.

For a document, the *fraction* of an item is the share of the item's distinct indexed
grams that occur in the document, for the exact and the masked variant separately. An
item is declared a match when either fraction reaches the threshold. The masked table
keeps only grams of which at least half the tokens are words.

The default threshold is low because a partial copy loses the grams that straddle its
cut: the first half of an item of w tokens holds w/2 - n + 1 of its w - n + 1 grams,
1 of 14 at w = 2n. At 0.05 any half copy that holds a whole gram is caught, while on
1,000 clean Wikipedia documents no item of GSM8K, HumanEval or MMLU reached it.
"""

import functools
import hashlib
import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classifiers.benchmarks import Benchmark

DEFAULT_N = 13
DEFAULT_THRESHOLD = 0.05
DEFAULT_MAX_ITEMS_PER_GRAM = 10
INDEX_FORMAT_VERSION = 1

# A number (digits with inner separators, an optional suffix as in "3rd") or a word.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*[^\W_]*|[^\W_]+")
_DIGIT = re.compile(r"\d")
_CHUNK = re.compile(r"\S+")
# Cannot be produced by _TOKEN (it holds punctuation), so it never collides with a word.
NUMBER_PLACEHOLDER = "<num>"

_UINT64 = 1 << 64
_POLY_BASE = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
_POLY_BASE_INVERSE = pow(_POLY_BASE, -1, _UINT64)
_TOKEN_HASH_CACHE_SIZE = 1 << 18


# --- normalization -------------------------------------------------------------------


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def tokenize(text: str) -> list[str]:
    """Normalized word tokens of ``text``."""
    return _TOKEN.findall(_fold(text))


def tokenize_with_spans(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokens as :func:`tokenize` gives them, with each token's character span in ``text``.

    Where folding keeps every character in place (the usual case) spans are exact. Where
    it does not (NFKC expansions such as "ﬁ", or "İ" lower-casing to two characters),
    a token's span is its whitespace-delimited chunk; folding never crosses whitespace,
    so the tokens are the same either way.
    """
    if _folds_in_place(text):
        tokens, spans = _tokens_in_place(text, 0)
    else:
        tokens, spans = [], []
        for chunk in _CHUNK.finditer(text):
            chunk_tokens, chunk_spans = _chunk_tokens(chunk.group(), chunk.start())
            tokens += chunk_tokens
            spans += chunk_spans
    bounds = np.array(spans, dtype=np.int64).reshape(-1, 2)
    return tokens, bounds[:, 0], bounds[:, 1]


def _folds_in_place(text: str) -> bool:
    """Does folding map each character of ``text`` to exactly one character?"""
    return unicodedata.is_normalized("NFKC", text) and len(text.lower()) == len(text)


def _tokens_in_place(text: str, offset: int) -> tuple[list[str], list[tuple[int, int]]]:
    matches = list(_TOKEN.finditer(text.lower()))
    return [m.group() for m in matches], [(offset + m.start(), offset + m.end()) for m in matches]


def _chunk_tokens(chunk: str, offset: int) -> tuple[list[str], list[tuple[int, int]]]:
    if _folds_in_place(chunk):
        return _tokens_in_place(chunk, offset)
    tokens = _TOKEN.findall(_fold(chunk))
    return tokens, [(offset, offset + len(chunk))] * len(tokens)


# --- hashing -------------------------------------------------------------------------


def _stable_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


_PLACEHOLDER_HASH = _stable_hash(NUMBER_PLACEHOLDER)


class _TokenHashCache:
    """Token -> (exact, masked) hash, kept in arrays so a document's hashes are one gather.

    Cleared when full: hashes are pure functions of the token, so this bounds memory on
    an open vocabulary without changing any result.
    """

    def __init__(self, capacity: int):
        self._capacity = capacity
        self._slots: dict[str, int] = {}
        self._hashes = np.zeros((capacity, 2), dtype=np.uint64)
        self._lock = threading.Lock()

    def rows(self, tokens: Sequence[str]) -> np.ndarray:
        """A (len(tokens), 2) array of exact and masked hashes."""
        if len(tokens) > self._capacity:
            step = self._capacity
            return np.concatenate([self.rows(tokens[i : i + step]) for i in range(0, len(tokens), step)])
        with self._lock:
            if len(self._slots) + len(tokens) > self._capacity:
                self._slots.clear()
            slots = self._slots
            indices = np.array([slots[t] if t in slots else self._add(t) for t in tokens], dtype=np.int64)
            return self._hashes[indices]

    def _add(self, token: str) -> int:
        slot = len(self._slots)
        exact = _stable_hash(token)
        self._hashes[slot] = (exact, _PLACEHOLDER_HASH if _DIGIT.search(token) else exact)
        self._slots[token] = slot
        return slot


_TOKEN_HASHES = _TokenHashCache(_TOKEN_HASH_CACHE_SIZE)


def token_hashes(tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Exact and number-masked 64-bit hashes of ``tokens``; they differ only at number tokens."""
    rows = _TOKEN_HASHES.rows(tokens)
    return rows[:, 0], rows[:, 1]


@functools.cache
def _powers(base: int, count: int) -> np.ndarray:
    powers = [1] * count
    for i in range(1, count):
        powers[i] = powers[i - 1] * base % _UINT64
    return np.array(powers, dtype=np.uint64)


def _power_table(base: int, count: int) -> np.ndarray:
    """``base**i mod 2**64`` for ``i < count``, cached in power-of-two sizes."""
    size = 1 << max(10, (count - 1).bit_length())
    return _powers(base, size)[:count]


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads the polynomial's low-bit structure over all bits."""
    z = values ^ (values >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@functools.cache
def _length_seed(length: int) -> np.uint64:
    return np.uint64(_stable_hash(f"gram-length:{length}"))


class GramHasher:
    """Hashes of every gram of any length in one token-hash sequence, O(1) array ops per length.

    With prefix sums S[j] = sum_{t<j} h[t] * B^-t, the gram of length L at position i is
    sum_k h[i+k] * B^(L-1-k) = B^(i+L-1) * (S[i+L] - S[i])  (mod 2**64).
    """

    def __init__(self, token_hashes: np.ndarray):
        count = len(token_hashes)
        self._count = count
        self._prefix = np.zeros(count + 1, dtype=np.uint64)
        np.cumsum(token_hashes * _power_table(_POLY_BASE_INVERSE, count), out=self._prefix[1:])
        self._base_powers = _power_table(_POLY_BASE, count)

    def grams(self, length: int) -> np.ndarray:
        """Hash of the gram of ``length`` tokens starting at each position (empty if too short)."""
        if length > self._count:
            return np.empty(0, dtype=np.uint64)
        sums = self._prefix[length:] - self._prefix[: self._count + 1 - length]
        return _mix64(self._base_powers[length - 1 :] * sums ^ _length_seed(length))


# --- index tables --------------------------------------------------------------------


_PRESENCE_BITS = 26  # 8 MiB of bits per table: ~1.3% false hits at a million grams


@dataclass(frozen=True)
class GramTable:
    """Sorted unique gram hashes; the items holding ``keys[i]`` are ``items[offsets[i]:offsets[i+1]]``.

    A bit per value of a hash's top bits (built on construction, not saved) rules out
    almost every gram of a clean document before the binary search, whose cache misses
    would otherwise dominate matching time.
    """

    keys: np.ndarray  # uint64, sorted, unique
    offsets: np.ndarray  # int64, len(keys) + 1
    items: np.ndarray  # int32
    presence: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "presence", _presence_bits(self.keys))

    @classmethod
    def from_pairs(cls, keys: np.ndarray, items: np.ndarray, max_items_per_gram: int) -> "GramTable":
        """Build from (gram hash, item) pairs; drops repeats and grams held by too many items."""
        order = np.lexsort((items, keys))
        keys, items = keys[order], items[order]
        distinct = np.ones(len(keys), dtype=bool)
        distinct[1:] = (keys[1:] != keys[:-1]) | (items[1:] != items[:-1])
        keys, items = keys[distinct], items[distinct]
        key_starts = _run_starts(keys)
        unique_keys, counts = keys[key_starts], np.diff(np.append(key_starts, len(keys)))
        kept_per_key = counts <= max_items_per_gram
        kept = np.repeat(kept_per_key, counts)
        offsets = np.zeros(int(kept_per_key.sum()) + 1, dtype=np.int64)
        np.cumsum(counts[kept_per_key], out=offsets[1:])
        return cls(keys=unique_keys[kept_per_key], offsets=offsets, items=items[kept].astype(np.int32))

    def might_contain(self, hashes: np.ndarray) -> np.ndarray:
        """False where a hash is surely not a key; True for keys and ~1% of the others."""
        prefixes = hashes >> np.uint64(64 - _PRESENCE_BITS)
        bits = self.presence[prefixes >> np.uint64(3)] >> (prefixes & np.uint64(7)).astype(np.uint8)
        return (bits & 1).astype(bool)

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For unique ``queries``: one (query position, item) pair per item under each found key."""
        if len(self.keys) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        slots = np.searchsorted(self.keys, queries)
        found = self.keys[np.minimum(slots, len(self.keys) - 1)] == queries
        query_positions, slots = np.flatnonzero(found), slots[found]
        starts = self.offsets[slots]
        counts = self.offsets[slots + 1] - starts
        run_starts = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return np.repeat(query_positions, counts), self.items[run_starts + np.arange(int(counts.sum()))]

    def grams_per_item(self, item_count: int) -> np.ndarray:
        """Number of distinct indexed grams of each item: the denominator of its fraction."""
        return np.bincount(self.items, minlength=item_count).astype(np.int32)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.offsets.nbytes + self.items.nbytes + self.presence.nbytes


def _presence_bits(keys: np.ndarray) -> np.ndarray:
    """Packed bits, one per value of the top ``_PRESENCE_BITS`` bits, set where a key has it.

    ``keys`` are sorted, so keys sharing a byte of the bit array are adjacent.
    """
    prefixes = keys >> np.uint64(64 - _PRESENCE_BITS)
    byte_of_key = prefixes >> np.uint64(3)
    bit_of_key = np.left_shift(1, prefixes & np.uint64(7)).astype(np.uint8)
    presence = np.zeros(1 << (_PRESENCE_BITS - 3), dtype=np.uint8)
    group_starts = _run_starts(byte_of_key)
    if len(group_starts):
        presence[byte_of_key[group_starts]] = np.bitwise_or.reduceat(bit_of_key, group_starts)
    return presence


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Indices where a run of equal values starts in a sorted array."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))


# --- matches and the index -----------------------------------------------------------


@dataclass(frozen=True)
class ItemMatch:
    benchmark: str
    item_id: int
    exact_fraction: float
    masked_fraction: float

    def as_dict(self) -> dict[str, object]:
        return {
            "benchmark": self.benchmark,
            "item_id": self.item_id,
            "exact_fraction": self.exact_fraction,
            "masked_fraction": self.masked_fraction,
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
class _VariantHits:
    """Where one variant (exact or masked) of a document hits the index.

    Grams are kept only where the table might hold them; hits are (unique hash, item)
    pairs, so an item's count is of its distinct grams, as its total is.
    """

    gram_starts: np.ndarray  # first token of each kept gram
    gram_lengths: np.ndarray
    gram_hash: np.ndarray  # kept gram -> position in unique_hashes
    unique_hashes: np.ndarray
    hit_hash: np.ndarray  # position in unique_hashes, one per (hash, item) hit
    hit_item: np.ndarray
    item_ids: np.ndarray  # items with at least one hit, sorted
    fractions: np.ndarray  # aligned with item_ids


def _document_grams(token_hashes: np.ndarray, lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hash, first token and length of every gram of each of ``lengths`` in a document."""
    hasher = GramHasher(token_hashes)
    per_length = [hasher.grams(length) for length in lengths]
    sizes = [len(hashes) for hashes in per_length]
    hashes = np.concatenate([np.empty(0, dtype=np.uint64), *per_length])
    starts = np.concatenate([np.empty(0, dtype=np.int64), *map(np.arange, sizes)])
    return hashes, starts, np.repeat(np.asarray(lengths, dtype=np.int64), sizes)


def _variant_hits(table: GramTable, totals: np.ndarray, token_hashes: np.ndarray, lengths: Sequence[int]) -> _VariantHits:
    hashes, starts, gram_lengths = _document_grams(token_hashes, lengths)
    kept = table.might_contain(hashes)
    unique_hashes, gram_hash = np.unique(hashes[kept], return_inverse=True)
    hit_hash, hit_item = table.lookup(unique_hashes)
    item_ids, counts = np.unique(hit_item, return_counts=True)
    return _VariantHits(
        gram_starts=starts[kept],
        gram_lengths=gram_lengths[kept],
        gram_hash=gram_hash,
        unique_hashes=unique_hashes,
        hit_hash=hit_hash,
        hit_item=hit_item,
        item_ids=item_ids,
        fractions=counts / totals[item_ids],
    )


class ContaminationIndex:
    """Exact and number-masked gram tables over the items of several benchmarks."""

    def __init__(
        self,
        n: int,
        benchmarks: Sequence[str],
        item_benchmark: np.ndarray,
        item_ids: np.ndarray,
        exact: GramTable,
        masked: GramTable,
        gram_lengths: Sequence[int],
    ):
        self.n = n
        self.benchmarks = tuple(benchmarks)
        self.item_benchmark = item_benchmark
        self.item_ids = item_ids
        self.exact = exact
        self.masked = masked
        self.gram_lengths = tuple(int(length) for length in gram_lengths)
        self._exact_totals = exact.grams_per_item(len(item_ids))
        self._masked_totals = masked.grams_per_item(len(item_ids))

    # building

    @classmethod
    def build(
        cls,
        benchmarks: Sequence[Benchmark],
        n: int = DEFAULT_N,
        max_items_per_gram: int = DEFAULT_MAX_ITEMS_PER_GRAM,
    ) -> "ContaminationIndex":
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        names = [benchmark.name for benchmark in benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names must be unique, got {names}")
        exact_grams, masked_grams, lengths = [], [], set()
        for benchmark in benchmarks:
            for item in benchmark.items:
                exact, masked, length = _item_grams(item.text, n)
                exact_grams.append(exact)
                masked_grams.append(masked)
                lengths.add(length)
        item_benchmark = np.repeat(np.arange(len(benchmarks), dtype=np.int16), [len(b.items) for b in benchmarks])
        item_ids = np.array([item.item_id for b in benchmarks for item in b.items], dtype=np.int64)
        lengths.discard(0)
        return cls(
            n=n,
            benchmarks=names,
            item_benchmark=item_benchmark,
            item_ids=item_ids,
            exact=_table_of(exact_grams, max_items_per_gram),
            masked=_table_of(masked_grams, max_items_per_gram),
            gram_lengths=sorted(lengths),
        )

    # persistence

    def save(self, path: str | Path) -> Path:
        """Write the index as one uncompressed ``.npz`` (gram hashes do not compress)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"{path}: the index file name must end in .npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez(temporary, **self._arrays())
        temporary.replace(path)
        return path

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "format_version": np.array(INDEX_FORMAT_VERSION),
            "n": np.array(self.n),
            "benchmarks": np.array(self.benchmarks, dtype=np.str_),
            "item_benchmark": self.item_benchmark,
            "item_ids": self.item_ids,
            "gram_lengths": np.array(self.gram_lengths, dtype=np.int64),
            **{f"exact_{name}": getattr(self.exact, name) for name in ("keys", "offsets", "items")},
            **{f"masked_{name}": getattr(self.masked, name) for name in ("keys", "offsets", "items")},
        }

    @classmethod
    def load(cls, path: str | Path) -> "ContaminationIndex":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot read contamination index: {exc}") from exc
        version = int(arrays.get("format_version", -1))
        if version != INDEX_FORMAT_VERSION:
            raise ValueError(f"{path}: index format version {version}, expected {INDEX_FORMAT_VERSION}; rebuild it")
        try:
            return cls._from_arrays(arrays)
        except KeyError as exc:
            raise ValueError(f"{path}: not a contamination index, no array {exc}") from exc

    @classmethod
    def _from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "ContaminationIndex":
        return cls(
            n=int(arrays["n"]),
            benchmarks=[str(name) for name in arrays["benchmarks"]],
            item_benchmark=arrays["item_benchmark"],
            item_ids=arrays["item_ids"],
            exact=GramTable(arrays["exact_keys"], arrays["exact_offsets"], arrays["exact_items"]),
            masked=GramTable(arrays["masked_keys"], arrays["masked_offsets"], arrays["masked_items"]),
            gram_lengths=arrays["gram_lengths"].tolist(),
        )

    @property
    def nbytes(self) -> int:
        """Memory held by the index arrays."""
        return self.exact.nbytes + self.masked.nbytes + self.item_benchmark.nbytes + self.item_ids.nbytes

    def item_count(self, benchmark: str) -> int:
        return int(np.count_nonzero(self.item_benchmark == self.benchmarks.index(benchmark)))

    # matching

    def match(self, text: str, threshold: float = DEFAULT_THRESHOLD) -> list[ItemMatch]:
        """Items whose exact or masked fraction in ``text`` reaches ``threshold``."""
        _check_threshold(threshold)
        exact_hashes, masked_hashes = token_hashes(tokenize(text))
        return self._matches(self._hits(exact_hashes, masked_hashes), threshold)

    def redact(self, text: str, threshold: float = DEFAULT_THRESHOLD, marker: str = "") -> Redaction:
        """``text`` with the grams of matched items replaced by ``marker`` (removed by default)."""
        _check_threshold(threshold)
        tokens, starts, ends = tokenize_with_spans(text)
        hits = self._hits(*token_hashes(tokens))
        matches = self._matches(hits, threshold)
        if not matches:
            return Redaction(text=text, matches=matches, removed_chars=0)
        matched_items = self._matched_items(hits, threshold)
        covered = _covered_tokens(hits, matched_items, len(tokens))
        return _cut_spans(text, _token_runs(covered, starts, ends, self.n), marker, matches)

    def _hits(self, exact_hashes: np.ndarray, masked_hashes: np.ndarray) -> tuple[_VariantHits, _VariantHits]:
        return (
            _variant_hits(self.exact, self._exact_totals, exact_hashes, self.gram_lengths),
            _variant_hits(self.masked, self._masked_totals, masked_hashes, self.gram_lengths),
        )

    def _matched_items(self, hits: tuple[_VariantHits, _VariantHits], threshold: float) -> np.ndarray:
        exact, masked = hits
        return np.union1d(exact.item_ids[exact.fractions >= threshold], masked.item_ids[masked.fractions >= threshold])

    def _matches(self, hits: tuple[_VariantHits, _VariantHits], threshold: float) -> list[ItemMatch]:
        exact, masked = hits
        matched = self._matched_items(hits, threshold)
        exact_fractions = _fractions_for(matched, exact)
        masked_fractions = _fractions_for(matched, masked)
        return [
            ItemMatch(
                benchmark=self.benchmarks[self.item_benchmark[item]],
                item_id=int(self.item_ids[item]),
                exact_fraction=round(float(exact_fraction), 4),
                masked_fraction=round(float(masked_fraction), 4),
            )
            for item, exact_fraction, masked_fraction in zip(matched, exact_fractions, masked_fractions)
        ]


def _check_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")


def _item_grams(text: str, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact and masked gram hashes of one item, and the gram length used (n, or fewer for a short item)."""
    exact_hashes, masked_hashes = token_hashes(tokenize(text))
    length = min(n, len(exact_hashes))
    if length == 0:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64), 0
    exact = GramHasher(exact_hashes).grams(length)
    masked = GramHasher(masked_hashes).grams(length)
    mostly_words = _word_majority(exact_hashes != masked_hashes, length)
    return np.unique(exact), np.unique(masked[mostly_words]), length


def _word_majority(is_number: np.ndarray, length: int) -> np.ndarray:
    """For each gram of ``length`` tokens: are at least half of its tokens words?

    A masked gram made mostly of placeholders ("<num> + <num> = <num> ...") would match
    any run of numbers in a document, so the masked table keeps only the others.
    """
    words = np.concatenate(([0], np.cumsum(~is_number)))
    return 2 * (words[length:] - words[:-length]) >= length


def _table_of(item_grams: list[np.ndarray], max_items_per_gram: int) -> GramTable:
    keys = np.concatenate(item_grams) if item_grams else np.empty(0, dtype=np.uint64)
    items = np.repeat(np.arange(len(item_grams), dtype=np.int32), [len(grams) for grams in item_grams])
    return GramTable.from_pairs(keys, items, max_items_per_gram)


def _fractions_for(items: np.ndarray, hits: _VariantHits) -> np.ndarray:
    """Fractions of ``items`` in one variant, 0 where that variant has no hit."""
    fractions = np.zeros(len(items))
    slots = np.searchsorted(hits.item_ids, items)
    present = slots < len(hits.item_ids)
    present[present] = hits.item_ids[slots[present]] == items[present]
    fractions[present] = hits.fractions[slots[present]]
    return fractions


def _covered_tokens(hits: tuple[_VariantHits, _VariantHits], matched_items: np.ndarray, token_count: int) -> np.ndarray:
    """Boolean mask of tokens inside any gram (either variant) of a matched item."""
    coverage = np.zeros(token_count + 1, dtype=np.int64)
    for variant in hits:
        matched_hash = np.zeros(len(variant.unique_hashes), dtype=bool)
        matched_hash[variant.hit_hash[np.isin(variant.hit_item, matched_items)]] = True
        gram_matched = matched_hash[variant.gram_hash]
        starts = variant.gram_starts[gram_matched]
        np.add.at(coverage, starts, 1)
        np.add.at(coverage, starts + variant.gram_lengths[gram_matched], -1)
    return np.cumsum(coverage[:-1]) > 0


def _token_runs(covered: np.ndarray, starts: np.ndarray, ends: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """Character spans of the runs of covered tokens, joining runs less than ``min_gap`` tokens apart.

    A gap shorter than a gram cannot be checked against the index, and in a copy it is
    typically a number-heavy stretch the masked table leaves out; it goes with the copy.
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


# --- per-benchmark report ------------------------------------------------------------


@dataclass
class ContaminationReport:
    """Which items of each benchmark were found anywhere in a corpus; merge across ranks.

    ``found`` holds item ids, so merging the reports of several workers counts an item
    found by two of them once.
    """

    items_total: dict[str, int]
    found: dict[str, set[int]] = field(default_factory=dict)
    documents: int = 0
    contaminated_documents: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_index(cls, index: ContaminationIndex) -> "ContaminationReport":
        return cls(items_total={name: index.item_count(name) for name in index.benchmarks})

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
        merged = ContaminationReport(items_total=dict(self.items_total))
        merged.documents = self.documents + other.documents
        for name in self.items_total:
            merged.found[name] = self.found.get(name, set()) | other.found.get(name, set())
            count = self.contaminated_documents.get(name, 0) + other.contaminated_documents.get(name, 0)
            merged.contaminated_documents[name] = count
        return merged

    def summary(self) -> dict[str, dict[str, float]]:
        """Per benchmark: items, items found, the fraction found, contaminated documents."""
        return {
            name: {
                "items": total,
                "items_found": len(self.found.get(name, ())),
                "fraction_found": len(self.found.get(name, ())) / total if total else 0.0,
                "documents": self.contaminated_documents.get(name, 0),
            }
            for name, total in self.items_total.items()
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "items_total": self.items_total,
            "found": {name: sorted(ids) for name, ids in self.found.items()},
            "documents": self.documents,
            "contaminated_documents": self.contaminated_documents,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "ContaminationReport":
        return cls(
            items_total={str(k): int(v) for k, v in data["items_total"].items()},
            found={str(k): {int(i) for i in ids} for k, ids in data["found"].items()},
            documents=int(data["documents"]),
            contaminated_documents={str(k): int(v) for k, v in data["contaminated_documents"].items()},
        )

    def write_json(self, path: str | Path) -> None:
        """Write atomically (temporary file, then rename), one file per rank."""
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=1))
        temporary.replace(path)

    @classmethod
    def read_json(cls, path: str | Path) -> "ContaminationReport":
        return cls.from_dict(json.loads(Path(path).read_text()))
