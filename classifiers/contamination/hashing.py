"""Token and gram hashes: polynomials over prefix sums, so any span hashes in O(1)."""

import numpy as np

MAX_GRAM_LENGTH = 1024

_UINT64 = 1 << 64
_CHARACTER_BASE = 0x100000001B3  # FNV's prime; odd, so invertible modulo 2**64
_GRAM_BASE = 0x9E3779B97F4A7C15
_FINAL_MULTIPLIER = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's
CACHED_POWERS = 1 << 18


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
    """Powers of a base and of its inverse modulo 2**64; the first ``CACHED_POWERS`` are kept."""

    def __init__(self, base: int):
        self._base = base
        self._inverse_base = pow(base, -1, _UINT64)
        self._forward = _power_series(base, CACHED_POWERS)
        self._inverse = _power_series(self._inverse_base, CACHED_POWERS)

    def forward(self, count: int) -> np.ndarray:
        return self._forward[:count] if count <= CACHED_POWERS else _power_series(self._base, count)

    def inverse(self, count: int) -> np.ndarray:
        return self._inverse[:count] if count <= CACHED_POWERS else _power_series(self._inverse_base, count)


CHARACTER_POWERS = _Powers(_CHARACTER_BASE)
_GRAM_POWERS = _Powers(_GRAM_BASE)


class PrefixPolynomial:
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


class GramHasher:
    """Hashes of the grams of a sequence of token hashes.

    A gram's *prefix* hash, for the presence filter, is the hash of its first tokens
    under a seed of its own, so that it never passes for a whole gram of that length.
    """

    def __init__(self, token_hashes: np.ndarray):
        self._polynomial = PrefixPolynomial(token_hashes, _GRAM_POWERS)

    def at(self, starts: np.ndarray, lengths: np.ndarray | int) -> np.ndarray:
        """Hashes of the grams of ``lengths`` tokens at ``starts``."""
        return _finish(self._polynomial.spans(starts, starts + lengths), _LENGTH_SEEDS[lengths])

    def prefixes_at(self, starts: np.ndarray, length: int) -> np.ndarray:
        return _finish(self._polynomial.spans(starts, starts + length), _PREFIX_SEED)

    def prefixes_everywhere(self, length: int) -> np.ndarray:
        """The prefix hash of ``length`` tokens at every position."""
        return _finish(self._polynomial.windows(length), _PREFIX_SEED)
