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

A gram shared by more than ``max_items_per_gram`` items is template text (MMLU's
"For which of these two scenarios does the main character ..." opens 895 items) and is
left out of the index: it says nothing about which item was copied, and it would make
one copied item look like hundreds.

For a document, the *fraction* of an item is the share of the item's distinct indexed
grams that occur in the document, for the exact and the masked variant separately. An
item is declared a match when either fraction reaches the threshold. The masked variant
keeps only grams of which at least half the tokens are words.

The default threshold is low because a partial copy loses the grams that straddle its
cut: the first half of an item of w tokens holds w/2 - n + 1 of its w - n + 1 grams,
1 of 14 at w = 2n. At 0.05 any half copy that holds a whole gram is caught, while on
2,000 clean documents (Wikipedia prose, Python standard-library source) no item of
GSM8K, HumanEval or MMLU reached it.

How a document is scanned, in numpy array operations over the whole document (no
Python loop per token):

1. Tokens: each character's class (word, digit, number separator) comes from a table
   over all code points; tokens are the runs of word characters, joined across "." and
   "," inside numbers. A token's 64-bit hash is a polynomial over its code points,
   computed for all tokens at once from prefix sums; it depends only on the token's
   characters, so it is the same in every process and on every machine.
2. Candidates: the masked hash of the first p tokens at every position (p, the
   shortest indexed gram length, is 6 with MMLU's shortest items) is tested against a
   Bloom filter holding the first p tokens of every indexed gram. Most documents keep
   no position; a third of 300-word ones keep one or two.
3. At those positions, the masked grams of every indexed length go through the same
   filter; the few that pass are looked up, in both variants, by binary search in one
   sorted table of both variants' grams.

Gram hashes are polynomials over token hashes, also from prefix sums, then seeded by
the gram's length and mixed.
"""

import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classifiers.benchmarks import Benchmark
from curation.atomic import atomic_path, write_text_atomic

DEFAULT_N = 13
DEFAULT_THRESHOLD = 0.05
DEFAULT_MAX_ITEMS_PER_GRAM = 10
MAX_GRAM_LENGTH = 1024
INDEX_FORMAT_VERSION = 2

# The token every number token becomes in the masked variant. It holds punctuation, so
# no text produces it as a token.
NUMBER_PLACEHOLDER = "<num>"

_CHUNK = re.compile(r"\S+|\s+")

# --- character classes and tokens ----------------------------------------------------

_WORD = 1  # a word character, [^\W_]: a letter or a digit
_DIGIT = 2  # a decimal digit, \d (with _WORD)
_SEPARATOR = 4  # "." or ","; inside a number token between digits
_CODE_POINTS = 0x110000


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).lower()


@functools.cache
def _character_classes() -> np.ndarray:
    """The class of every code point, as Python's regular expressions classify it."""
    every = np.arange(_CODE_POINTS, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    classes = np.zeros(_CODE_POINTS, dtype=np.uint8)
    classes[[match.start() for match in re.finditer(r"[^\W_]", every)]] = _WORD
    classes[[match.start() for match in re.finditer(r"\d", every)]] = _WORD | _DIGIT
    classes[[ord("."), ord(",")]] = _SEPARATOR
    return classes


def _code_points(folded: str) -> np.ndarray:
    return np.frombuffer(folded.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _token_bounds(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end (exclusive) of every token, and whether it holds a digit.

    Tokens are runs of word characters, consecutive runs joined into one number token
    where ``_number_joins`` says so.
    """
    word = np.zeros(len(classes) + 2, dtype=np.uint8)
    np.bitwise_and(classes, _WORD, out=word[1:-1])
    word = word.view(bool)
    bounds = (word[1:] != word[:-1]).nonzero()[0]
    if len(bounds) == 0:
        return bounds, bounds, np.empty(0, dtype=bool)
    starts, ends = bounds[0::2], bounds[1::2]
    digit = classes == _WORD | _DIGIT
    digits = digit.nonzero()[0]
    is_number = np.zeros(len(starts), dtype=bool)
    is_number[ends.searchsorted(digits, side="right")] = True
    joins = _number_joins(classes, digit, digits, starts, ends)
    if joins is None:
        return starts, ends, is_number
    first, last = np.concatenate(([True], ~joins)), np.concatenate((~joins, [True]))
    return starts[first], ends[last], is_number[first]


def _number_joins(
    classes: np.ndarray, digit: np.ndarray, digits: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray | None:
    """For each two consecutive runs of word characters: are they one number, as ``\\d+(?:[.,]\\d+)*`` reads it?

    They are when a single "." or "," separates them, with a digit on each side, and the
    first run is all digits ("80,000", "1.2.3", "3.5kg"). A run holding a letter ends its
    token at the separator: "a1.5" is "a1" and "5", "1.5a.5" is "1.5a" and "5". None
    when no separator sits between two digits, as in most text.
    """
    between = ((classes[1:-1] == _SEPARATOR) & digit[:-2] & digit[2:]).nonzero()[0] + 1
    if len(between) == 0:
        return None
    run = ends.searchsorted(between)  # the run that ends at the separator
    run_starts, run_ends = starts[run], ends[run]
    all_digits = digits.searchsorted(run_ends) - digits.searchsorted(run_starts) == run_ends - run_starts
    joins = np.zeros(len(ends) - 1, dtype=bool)
    joins[run[all_digits]] = True
    return joins


@dataclass(frozen=True)
class _Tokens:
    """The tokens of a folded text: character spans in it, hashes, and which are numbers."""

    starts: np.ndarray
    ends: np.ndarray
    hashes: np.ndarray  # uint64
    is_number: np.ndarray  # bool

    @classmethod
    def of(cls, folded: str) -> "_Tokens":
        codes = _code_points(folded)
        starts, ends, is_number = _token_bounds(_character_classes().take(codes))
        return cls(starts, ends, _PrefixPolynomial(codes, _CHARACTER_POWERS).spans(starts, ends), is_number)

    def masked_hashes(self) -> np.ndarray:
        """Token hashes with every number token's replaced by the placeholder's."""
        return np.where(self.is_number, _PLACEHOLDER_HASH, self.hashes)


def tokenize(text: str) -> list[str]:
    """Normalized word tokens of ``text``."""
    folded = _fold(text)
    starts, ends, _ = _token_bounds(_character_classes().take(_code_points(folded)))
    return [folded[start:end] for start, end in zip(starts.tolist(), ends.tolist())]


def tokenize_with_spans(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokens as :func:`tokenize` gives them, with each token's character span in ``text``."""
    folded, first, last = _fold_with_sources(text)
    starts, ends, _ = _token_bounds(_character_classes().take(_code_points(folded)))
    tokens = [folded[start:end] for start, end in zip(starts.tolist(), ends.tolist())]
    return tokens, first[starts], last[ends - 1]


def _fold_with_sources(text: str) -> tuple[str, np.ndarray, np.ndarray]:
    """Folded ``text``, and for each folded character the span of ``text`` it comes from.

    Where folding keeps every character in place (the usual case) a character comes from
    itself. Where it does not (NFKC expansions such as "ﬁ", or "İ" lower-casing to two
    characters), every character of a whitespace-delimited chunk comes from the whole
    chunk; folding never crosses whitespace, so the tokens are those of ``_fold(text)``.
    """
    if _folds_in_place(text):
        positions = np.arange(len(text))
        return text.lower(), positions, positions + 1
    pieces, first, last = [], [], []
    for chunk in _CHUNK.finditer(text):
        start, end = chunk.span()
        if _folds_in_place(chunk.group()):
            pieces.append(chunk.group().lower())
            first.append(np.arange(start, end))
            last.append(np.arange(start + 1, end + 1))
        else:
            pieces.append(_fold(chunk.group()))
            first.append(np.full(len(pieces[-1]), start))
            last.append(np.full(len(pieces[-1]), end))
    return "".join(pieces), np.concatenate(first), np.concatenate(last)


def _folds_in_place(text: str) -> bool:
    """Does folding map each character of ``text`` to exactly one character?"""
    return unicodedata.is_normalized("NFKC", text) and len(text.lower()) == len(text)


# --- hashing -------------------------------------------------------------------------

_UINT64 = 1 << 64
_CHARACTER_BASE = 0x100000001B3  # FNV's prime; odd, so invertible modulo 2**64
_GRAM_BASE = 0x9E3779B97F4A7C15
_FINAL_MULTIPLIER = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's
_CACHED_POWERS = 1 << 18


def _power_series(base: int, count: int) -> np.ndarray:
    """``base**i mod 2**64`` for ``i < count``, each step extending the known powers by as many again."""
    powers = np.ones(max(count, 1), dtype=np.uint64)
    known = 1
    while known < count:
        step = min(known, count - known)
        np.multiply(powers[:step], np.uint64(pow(base, known, _UINT64)), out=powers[known : known + step])
        known += step
    return powers[:count]


class _Powers:
    """Powers of a base and of its inverse modulo 2**64; the first ``_CACHED_POWERS`` are kept."""

    def __init__(self, base: int):
        self._base = base
        self._inverse_base = pow(base, -1, _UINT64)
        self._forward = _power_series(base, _CACHED_POWERS)
        self._inverse = _power_series(self._inverse_base, _CACHED_POWERS)

    def forward(self, count: int) -> np.ndarray:
        return self._forward[:count] if count <= _CACHED_POWERS else _power_series(self._base, count)

    def inverse(self, count: int) -> np.ndarray:
        return self._inverse[:count] if count <= _CACHED_POWERS else _power_series(self._inverse_base, count)


_CHARACTER_POWERS = _Powers(_CHARACTER_BASE)
_GRAM_POWERS = _Powers(_GRAM_BASE)


class _PrefixPolynomial:
    """``sum(values[t] * base**(end - 1 - t) for t in range(start, end))`` mod 2**64, for any span, in O(1).

    With prefix sums S[j] = sum_{t<j} values[t] * base**-t, a span's polynomial is
    base**(end - 1) * (S[end] - S[start]): one cumulative sum, then a few gathers per span.
    Token hashes are these over code points; gram hashes over token hashes, then finished.
    """

    def __init__(self, values: np.ndarray, powers: _Powers):
        self._count = len(values)
        self._prefix = np.zeros(self._count + 1, dtype=np.uint64)
        np.cumsum(values * powers.inverse(self._count), out=self._prefix[1:])
        self._powers = powers.forward(self._count)

    def spans(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return self._powers.take(ends - 1) * (self._prefix.take(ends) - self._prefix.take(starts))

    def windows(self, length: int) -> np.ndarray:
        """The polynomial of every span of ``length`` values (none if there are fewer)."""
        if length > self._count:
            return np.empty(0, dtype=np.uint64)
        return self._powers[length - 1 :] * (self._prefix[length:] - self._prefix[: self._count + 1 - length])


def _finish(polynomials: np.ndarray, seeds: np.ndarray | np.uint64) -> np.ndarray:
    """A gram's hash from its polynomial: seeded by its length, times an odd constant.

    A bijection for a given seed, so it changes no collision. It makes the top bits,
    which the presence filter reads, depend on every bit of the polynomial: grams that
    differ only in a short last token differ only in their polynomials' low bits.
    """
    z = polynomials ^ seeds
    z *= _FINAL_MULTIPLIER
    return z


def _length_seeds(count: int) -> np.ndarray:
    z = _finish(np.arange(count, dtype=np.uint64), np.uint64(_GRAM_BASE))
    return z ^ (z >> np.uint64(29))


_LENGTH_SEEDS = _length_seeds(MAX_GRAM_LENGTH + 1)  # so that grams of different lengths hash apart
_PREFIX_SEED = _LENGTH_SEEDS[0]  # no gram has length 0


class _GramHasher:
    """Hashes of the grams of a sequence of token hashes.

    A gram's *prefix* hash, for the presence filter, is the hash of its first tokens
    under a seed of its own, so that it never passes for a whole gram of that length.
    """

    def __init__(self, token_hashes: np.ndarray):
        self._polynomial = _PrefixPolynomial(token_hashes, _GRAM_POWERS)

    def at(self, starts: np.ndarray, lengths: np.ndarray | int) -> np.ndarray:
        """Hashes of the grams of ``lengths`` tokens at ``starts``."""
        return _finish(self._polynomial.spans(starts, starts + lengths), _LENGTH_SEEDS[lengths])

    def prefixes_at(self, starts: np.ndarray, length: int) -> np.ndarray:
        return _finish(self._polynomial.spans(starts, starts + length), _PREFIX_SEED)

    def prefixes_everywhere(self, length: int) -> np.ndarray:
        """The prefix hash of ``length`` tokens at every position."""
        return _finish(self._polynomial.windows(length), _PREFIX_SEED)


_PLACEHOLDER_HASH = _PrefixPolynomial(_code_points(NUMBER_PLACEHOLDER), _CHARACTER_POWERS).spans(
    np.array([0]), np.array([len(NUMBER_PLACEHOLDER)])
)[0]


# --- the gram table ------------------------------------------------------------------

_EXACT, _MASKED = 0, 1
_PRESENCE_BITS_PER_HASH = 64
_PROBE_BITS = 4  # bits set per hash, in one 64-bit word
_PROBE_MASK_BITS = 12


@dataclass(frozen=True)
class GramTable:
    """Sorted unique gram hashes of both variants, and who holds each.

    The holders of ``keys[i]`` are ``slots[offsets[i]:offsets[i+1]]``, a slot being
    ``2 * item + variant`` (0 exact, 1 masked). A gram without number tokens is the same
    in both variants, so it is held under both slots of an item.

    ``presence`` is a blocked Bloom filter over the masked hashes of every key, whole
    and of its first tokens (as many as the shortest gram has). A document position
    whose masked gram of that length misses it starts no indexed gram of either variant;
    at the few positions that pass, the masked grams of every indexed length are tested
    against it in turn, and only those that pass are searched for in ``keys`` (in both
    variants), a search that costs a cache miss per step. About 0.03% of absent hashes
    pass.
    """

    keys: np.ndarray  # uint64, sorted, unique
    offsets: np.ndarray  # int64, len(keys) + 1
    slots: np.ndarray  # int32
    presence: np.ndarray  # uint64 words, a power-of-two number of them

    @classmethod
    def build(cls, exact: "_Grams", masked: "_Grams", max_items_per_gram: int) -> "GramTable":
        """Drops repeats and grams held by too many items, in each variant, then merges the variants."""
        exact, masked = exact.held_by_few(max_items_per_gram), masked.held_by_few(max_items_per_gram)
        keys = np.concatenate((exact.keys, masked.keys))
        slots = np.concatenate((2 * exact.items + _EXACT, 2 * masked.items + _MASKED)).astype(np.int32)
        order = np.argsort(keys, kind="stable")
        keys, slots = keys[order], slots[order]
        key_starts = _run_starts(keys)
        offsets = np.append(key_starts, len(keys)).astype(np.int64)
        presence = _presence_words(np.concatenate((masked.masked, masked.prefixes, exact.masked, exact.prefixes)))
        return cls(keys=keys[key_starts], offsets=offsets, slots=slots, presence=presence)

    def might_hold(self, masked: np.ndarray) -> np.ndarray:
        """False where a masked hash is surely no key's, whole or prefix; True where it is, and rarely elsewhere."""
        words, masks = _probe(masked, len(self.presence))
        return (self.presence.take(words) & masks) == masks

    def find(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The queries that are keys: their positions in ``queries`` and in ``keys``."""
        if len(self.keys) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self.keys, queries), len(self.keys) - 1)
        found = (self.keys.take(positions) == queries).nonzero()[0]
        return found, positions[found]

    def holders(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For key positions: one (index in ``keys``, slot) pair per holder of each."""
        starts = self.offsets[keys]
        counts = self.offsets[keys + 1] - starts
        run_starts = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return np.repeat(np.arange(len(keys)), counts), self.slots[run_starts + np.arange(int(counts.sum()))]

    def grams_per_slot(self, item_count: int) -> np.ndarray:
        """Number of distinct indexed grams of each (item, variant): the denominator of a fraction."""
        return np.bincount(self.slots, minlength=2 * item_count)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.offsets.nbytes + self.slots.nbytes + self.presence.nbytes


def _probe_masks() -> np.ndarray:
    """Words with ``_PROBE_BITS`` of 64 bits set, one per mask index, spread evenly over all such words.

    Mask i is the set of bits ranked i * C(64, k) / 2**12 in colexicographic order,
    unranked greedily: its highest bit is the largest c with C(c, k) <= rank, and so on.
    """
    count = 1 << _PROBE_MASK_BITS
    ranks = np.arange(count, dtype=np.int64) * math.comb(64, _PROBE_BITS) // count
    masks = np.zeros(count, dtype=np.uint64)
    for k in range(_PROBE_BITS, 0, -1):
        combinations = np.array([math.comb(c, k) for c in range(64)], dtype=np.int64)
        bits = np.searchsorted(combinations, ranks, side="right") - 1
        ranks -= combinations[bits]
        masks |= np.uint64(1) << bits.astype(np.uint64)
    return masks


_PROBE_MASKS = _probe_masks()


def _probe(hashes: np.ndarray, word_count: int) -> tuple[np.ndarray, np.ndarray]:
    """The filter word of each hash (its top bits) and the bits it needs there (from the bits below those)."""
    word_bits = word_count.bit_length() - 1
    words = hashes >> np.uint64(64 - word_bits)
    mask_index = (hashes >> np.uint64(64 - word_bits - _PROBE_MASK_BITS)) & np.uint64((1 << _PROBE_MASK_BITS) - 1)
    return words, _PROBE_MASKS.take(mask_index)


def _presence_words(hashes: np.ndarray) -> np.ndarray:
    """A blocked Bloom filter: each hash sets ``_PROBE_BITS`` bits in one 64-bit word.

    Testing a hash is then one memory access and six array operations, which matters
    as much as the false positive rate at a few hundred grams a document.
    """
    distinct = np.sort(hashes)
    distinct = distinct[_run_starts(distinct)]
    word_count = 1 << max(10, int(len(distinct) * _PRESENCE_BITS_PER_HASH // 64 - 1).bit_length())
    presence = np.zeros(word_count, dtype=np.uint64)
    np.bitwise_or.at(presence, *_probe(distinct, word_count))
    return presence


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Indices where a run of equal values starts in a sorted array."""
    if len(values) == 0:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))


@dataclass(frozen=True)
class _Grams:
    """Indexed grams of one variant, each with the item holding it and its masked hashes (whole and first tokens)."""

    keys: np.ndarray
    items: np.ndarray
    masked: np.ndarray
    prefixes: np.ndarray

    def select(self, kept: np.ndarray) -> "_Grams":
        return _Grams(self.keys[kept], self.items[kept], self.masked[kept], self.prefixes[kept])

    def held_by_few(self, max_items: int) -> "_Grams":
        """One entry per (gram, item), keeping only grams held by at most ``max_items`` items.

        Grams come in item order (as ``_item_grams`` makes them), so a stable sort by
        hash orders them by (hash, item).
        """
        grams = self.select(np.argsort(self.keys, kind="stable"))
        distinct = np.ones(len(grams.keys), dtype=bool)
        distinct[1:] = (grams.keys[1:] != grams.keys[:-1]) | (grams.items[1:] != grams.items[:-1])
        grams = grams.select(distinct)
        key_starts = _run_starts(grams.keys)
        counts = np.diff(np.append(key_starts, len(grams.keys)))
        return grams.select(np.repeat(counts <= max_items, counts))

    @staticmethod
    def concatenate(parts: Sequence["_Grams"]) -> "_Grams":
        names = ("keys", "items", "masked", "prefixes")
        return _Grams(*(np.concatenate([getattr(part, name) for part in parts]) for name in names))


_BUILD_BATCH_CHARACTERS = _CACHED_POWERS // 2  # keeps a batch's powers in the cached tables


def _item_grams(texts: Sequence[str], n: int) -> tuple[_Grams, _Grams, list[int]]:
    """Exact and masked grams of every item, and the gram lengths used.

    An item's grams are of length n, or of its token count when that is shorter. Items
    are tokenized in batches: their folded texts joined by newlines, which no token spans.
    """
    folded = [_fold(text) for text in texts]
    gram_length = np.zeros(len(texts), dtype=np.int64)
    batches = []
    for first, last in _batches(folded, _BUILD_BATCH_CHARACTERS):
        tokens = _Tokens.of("\n".join(folded[first:last]))
        text_ends = np.cumsum([len(text) + 1 for text in folded[first:last]])
        item = np.searchsorted(text_ends, tokens.starts, side="right")
        gram_length[first:last] = np.minimum(n, np.bincount(item, minlength=last - first))
        batches.append((tokens, item, first))
    gram_lengths = sorted(set(gram_length[gram_length > 0].tolist()))
    if not gram_lengths:
        hashes, items = np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
        empty = _Grams(hashes, items, hashes, hashes)
        return empty, empty, []
    parts = [_batch_grams(tokens, item, first, gram_length, gram_lengths[0]) for tokens, item, first in batches]
    return _Grams.concatenate([p[0] for p in parts]), _Grams.concatenate([p[1] for p in parts]), gram_lengths


def _batches(texts: Sequence[str], max_characters: int) -> Iterable[tuple[int, int]]:
    """Consecutive index ranges of ``texts`` of about ``max_characters`` each (at least one text)."""
    first, size = 0, 0
    for i, text in enumerate(texts):
        if size and size + len(text) > max_characters:
            yield first, i
            first, size = i, 0
        size += len(text) + 1
    if first < len(texts):
        yield first, len(texts)


def _batch_grams(
    tokens: _Tokens, item: np.ndarray, first_item: int, gram_length: np.ndarray, prefix_length: int
) -> tuple[_Grams, _Grams]:
    """The grams of one batch; ``item`` is each token's item counted from ``first_item``, in order."""
    item_end = np.cumsum(np.bincount(item))
    lengths = gram_length[item + first_item]
    starts = np.flatnonzero(np.arange(len(item)) + lengths <= item_end[item])
    lengths, items = lengths[starts], item[starts] + first_item
    masked_hasher = _GramHasher(tokens.masked_hashes())
    masked, prefixes = masked_hasher.at(starts, lengths), masked_hasher.prefixes_at(starts, prefix_length)
    exact_grams = _Grams(_GramHasher(tokens.hashes).at(starts, lengths), items, masked, prefixes)
    masked_grams = _Grams(masked, items, masked, prefixes)
    return exact_grams, masked_grams.select(_word_majority(tokens.is_number, starts, lengths))


def _word_majority(is_number: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each gram: are at least half of its tokens words?

    A masked gram made mostly of placeholders ("<num> + <num> = <num> ...") would match
    any run of numbers in a document, so the masked variant keeps only the others.
    """
    words = np.concatenate(([0], np.cumsum(~is_number)))
    return 2 * (words[starts + lengths] - words[starts]) >= lengths


# --- matches and the index -----------------------------------------------------------


@dataclass(frozen=True)
class ItemMatch:
    benchmark: str
    item_id: int
    exact_fraction: float
    masked_fraction: float

    @property
    def strength(self) -> float:
        return max(self.exact_fraction, self.masked_fraction)

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


class ContaminationIndex:
    """One gram table of both variants over the items of several benchmarks."""

    def __init__(
        self,
        n: int,
        benchmarks: Sequence[str],
        item_benchmark: np.ndarray,
        item_ids: np.ndarray,
        table: GramTable,
        gram_lengths: Sequence[int],
        row_problems: Mapping[str, Sequence[str]] | None = None,
        spec_hash: str = "",
    ):
        self.n = n
        self.benchmarks = tuple(benchmarks)
        self.item_benchmark = item_benchmark
        self.item_ids = item_ids
        self.table = table
        self.gram_lengths = tuple(int(length) for length in gram_lengths)
        self.row_problems = {name: list((row_problems or {}).get(name, ())) for name in self.benchmarks}
        self.spec_hash = spec_hash
        self._totals = table.grams_per_slot(len(item_ids))
        self._lengths = np.array(self.gram_lengths, dtype=np.int64)

    # building

    @classmethod
    def build(
        cls,
        benchmarks: Sequence[Benchmark],
        n: int = DEFAULT_N,
        max_items_per_gram: int = DEFAULT_MAX_ITEMS_PER_GRAM,
    ) -> "ContaminationIndex":
        """Index the items of ``benchmarks``; their malformed rows are kept as ``row_problems``."""
        if not 1 <= n <= MAX_GRAM_LENGTH:
            raise ValueError(f"n must be between 1 and {MAX_GRAM_LENGTH}, got {n}")
        names = [benchmark.name for benchmark in benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names must be unique, got {names}")
        exact, masked, gram_lengths = _item_grams([item.text for b in benchmarks for item in b.items], n)
        return cls(
            n=n,
            benchmarks=names,
            item_benchmark=np.repeat(np.arange(len(benchmarks), dtype=np.int16), [len(b.items) for b in benchmarks]),
            item_ids=np.array([item.item_id for b in benchmarks for item in b.items], dtype=np.int64),
            table=GramTable.build(exact, masked, max_items_per_gram),
            gram_lengths=gram_lengths,
            row_problems={b.name: [str(problem) for problem in b.problems] for b in benchmarks},
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
            table=GramTable(arrays["keys"], arrays["offsets"], arrays["slots"], arrays["presence"]),
            gram_lengths=arrays["gram_lengths"].tolist(),
            row_problems=row_problems,
            spec_hash=str(arrays["spec_hash"]),
        )

    @property
    def nbytes(self) -> int:
        """Memory held by the index arrays."""
        return self.table.nbytes + self.item_benchmark.nbytes + self.item_ids.nbytes + self._totals.nbytes

    def item_count(self, benchmark: str) -> int:
        return int(np.count_nonzero(self.item_benchmark == self.benchmarks.index(benchmark)))

    # matching

    def match(self, text: str, threshold: float = DEFAULT_THRESHOLD) -> list[ItemMatch]:
        """Items whose exact or masked fraction in ``text`` reaches ``threshold``."""
        validate_threshold(threshold)
        items, fractions = self._matched(self._hits(_Tokens.of(_fold(text))), threshold)
        return self._item_matches(items, fractions)

    def redact(self, text: str, threshold: float = DEFAULT_THRESHOLD, marker: str = "") -> Redaction:
        """``text`` with the grams of matched items replaced by ``marker`` (removed by default)."""
        validate_threshold(threshold)
        folded, first, last = _fold_with_sources(text)
        tokens = _Tokens.of(folded)
        hits = self._hits(tokens)
        items, fractions = self._matched(hits, threshold)
        matches = self._item_matches(items, fractions)
        if not matches:
            return Redaction(text=text, matches=matches, removed_chars=0)
        covered = _covered_tokens(hits, np.array(items), len(tokens.hashes))
        spans = _token_runs(covered, first[tokens.starts], last[tokens.ends - 1], self.n)
        return _cut_spans(text, spans, marker, matches)

    def _hits(self, tokens: _Tokens) -> _Hits:
        """Candidate positions and grams from the presence filter, then an exact lookup of the grams that pass."""
        count = len(tokens.hashes)
        if not self.gram_lengths or count < self.gram_lengths[0]:
            return _NO_HITS
        has_numbers = bool(tokens.is_number.any())
        masked = _GramHasher(tokens.masked_hashes() if has_numbers else tokens.hashes)
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
            queries = np.concatenate((queries, _GramHasher(tokens.hashes).at(starts, lengths)))
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
        fractions = dict(zip(slots.tolist(), (counts / self._totals[slots]).tolist()))
        return sorted({slot // 2 for slot, fraction in fractions.items() if fraction >= threshold}), fractions

    def _item_matches(self, items: list[int], fractions: Mapping[int, float]) -> list[ItemMatch]:
        return [
            ItemMatch(
                benchmark=self.benchmarks[self.item_benchmark[item]],
                item_id=int(self.item_ids[item]),
                exact_fraction=round(fractions.get(2 * item + _EXACT, 0.0), 4),
                masked_fraction=round(fractions.get(2 * item + _MASKED, 0.0), 4),
            )
            for item in items
        ]


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


def _covered_tokens(hits: _Hits, matched_items: np.ndarray, token_count: int) -> np.ndarray:
    """Boolean mask of tokens inside any gram (either variant) of a matched item."""
    matched_key = np.zeros(int(hits.gram_key.max()) + 1, dtype=bool)
    matched_key[hits.holder_key[np.isin(hits.holder_slot // 2, matched_items)]] = True
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


# --- per-benchmark report ------------------------------------------------------------


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
