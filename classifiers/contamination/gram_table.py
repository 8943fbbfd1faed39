"""The sorted table of indexed gram hashes, its presence filter, and the grams of benchmark items."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from classifiers.contamination.hashing import CACHED_POWERS, GramHasher
from classifiers.contamination.tokens import Tokens, fold

EXACT, MASKED = 0, 1
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
        slots = np.concatenate((2 * exact.items + EXACT, 2 * masked.items + MASKED)).astype(np.int32)
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

        Grams come in item order (as ``item_grams`` makes them), so a stable sort by
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


_BUILD_BATCH_CHARACTERS = CACHED_POWERS // 2  # keeps a batch's powers in the cached tables


def gram_lengths_of(token_counts: np.ndarray, n: int, min_n: int) -> np.ndarray:
    """The gram length of each item: n, or for an item shorter than 2n half its tokens (at
    least ``min_n``), so that a part of it holds whole grams; an item under ``min_n``
    tokens is one gram of its length."""
    return np.minimum(token_counts, np.clip(token_counts // 2, min_n, n))


def item_grams(texts: Sequence[str], n: int, min_n: int) -> tuple[_Grams, _Grams, list[int]]:
    """Exact and masked grams of every item, and the gram lengths used (:func:`gram_lengths_of`).

    An item shorter than 2n tokens is also one gram of all its tokens, so that a copy of it
    matches in full even where its shorter grams are common ones (held by many items). An
    item shorter than n tokens has no masked grams: its masked string, numbers gone, is a
    template many others fit ("simplify sqrt <num>"). Items are tokenized in batches: their
    folded texts joined by newlines, which no token spans.
    """
    folded = [fold(text) for text in texts]
    token_count = np.zeros(len(texts), dtype=np.int64)
    batches = []
    for first, last in _batches(folded, _BUILD_BATCH_CHARACTERS):
        tokens = Tokens.of("\n".join(folded[first:last]))
        text_ends = np.cumsum([len(text) + 1 for text in folded[first:last]])
        item = np.searchsorted(text_ends, tokens.starts, side="right")
        token_count[first:last] = np.bincount(item, minlength=last - first)
        batches.append((tokens, item, first))
    lengths = _ItemLengths(token_count, gram_lengths_of(token_count, n, min_n), n)
    gram_lengths = sorted(set(lengths.gram[lengths.gram > 0].tolist()) | set(token_count[lengths.whole].tolist()))
    if not gram_lengths:
        hashes, items = np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
        empty = _Grams(hashes, items, hashes, hashes)
        return empty, empty, []
    parts = [_batch_grams(tokens, item, first, lengths, gram_lengths[0]) for tokens, item, first in batches]
    return _Grams.concatenate([p[0] for p in parts]), _Grams.concatenate([p[1] for p in parts]), gram_lengths


@dataclass(frozen=True)
class _ItemLengths:
    tokens: np.ndarray  # per item
    gram: np.ndarray  # its gram length
    n: int

    @property
    def whole(self) -> np.ndarray:
        """Items indexed whole too: shorter than 2n, longer than their grams."""
        return (self.tokens < 2 * self.n) & (self.tokens > self.gram)


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


def _batch_grams(tokens: Tokens, item: np.ndarray, first_item: int, lengths: _ItemLengths, prefix_length: int) -> tuple[_Grams, _Grams]:
    """The grams of one batch; ``item`` is each token's item counted from ``first_item``, in order."""
    item_end = np.cumsum(np.bincount(item))
    gram = lengths.gram[item + first_item]
    regular = np.flatnonzero(np.arange(len(item)) + gram <= item_end[item])
    whole = np.flatnonzero(lengths.whole[first_item : first_item + len(item_end)])
    whole_lengths = lengths.tokens[whole + first_item]
    local = np.concatenate((item[regular], whole))
    order = np.argsort(local, kind="stable")  # in item order, as _Grams.held_by_few needs them
    starts = np.concatenate((regular, item_end[whole] - whole_lengths))[order]
    gram_lengths = np.concatenate((gram[regular], whole_lengths))[order]
    items = local[order] + first_item
    is_whole = gram_lengths == lengths.tokens[items]
    masked_hasher = GramHasher(tokens.masked_hashes())
    masked, prefixes = masked_hasher.at(starts, gram_lengths), masked_hasher.prefixes_at(starts, prefix_length)
    exact_grams = _Grams(GramHasher(tokens.hashes).at(starts, gram_lengths), items, masked, prefixes)
    masked_grams = _Grams(masked, items, masked, prefixes)
    wordy = _word_majority(tokens.is_number, starts, gram_lengths)
    short = gram_lengths < lengths.n  # a short gram made of numbers ("1 2 3 4 5 6 7 8") is in any list
    maskable = lengths.tokens[items] >= lengths.n
    return exact_grams.select(wordy | ~short | is_whole), masked_grams.select(wordy & maskable)


def _word_majority(is_number: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each gram: are at least half of its tokens words?

    A masked gram made mostly of placeholders ("<num> + <num> = <num> ...") would match
    any run of numbers in a document, so the masked variant keeps only the others.
    """
    words = np.concatenate(([0], np.cumsum(~is_number)))
    return 2 * (words[starts + lengths] - words[starts]) >= lengths
