"""Normalized word tokens of a text, with their hashes and character spans (see the package docstring)."""

import functools
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from classifiers.contamination.hashing import CHARACTER_POWERS, PrefixPolynomial
from classifiers.contamination.math_text import canonical_math, canonical_math_with_sources

# The token every number token becomes in the masked variant. It holds punctuation, so
# no text produces it as a token.
NUMBER_PLACEHOLDER = "<num>"

_CHUNK = re.compile(r"\S+|\s+")

_WORD = 1  # a word character, [^\W_]: a letter or a digit
_DIGIT = 2  # a decimal digit, \d (with _WORD)
_SEPARATOR = 4  # "." or ","; inside a number token between digits
_CODE_POINTS = 0x110000


def fold(text: str) -> str:
    """``text`` as tokens are read from it: math notation in one form (:mod:`.math_text`),
    NFKC-normalized, lower-cased."""
    text = canonical_math(text)
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


def code_points(folded: str) -> np.ndarray:
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
class Tokens:
    """The tokens of a folded text: character spans in it, hashes, and which are numbers."""

    starts: np.ndarray
    ends: np.ndarray
    hashes: np.ndarray  # uint64
    is_number: np.ndarray  # bool

    @classmethod
    def of(cls, folded: str) -> "Tokens":
        codes = code_points(folded)
        starts, ends, is_number = _token_bounds(_character_classes().take(codes))
        return cls(starts, ends, PrefixPolynomial(codes, CHARACTER_POWERS).spans(starts, ends), is_number)

    def masked_hashes(self) -> np.ndarray:
        """Token hashes with every number token's replaced by the placeholder's."""
        return np.where(self.is_number, PLACEHOLDER_HASH, self.hashes)


def tokenize(text: str) -> list[str]:
    """Normalized word tokens of ``text``."""
    folded = fold(text)
    starts, ends, _ = _token_bounds(_character_classes().take(code_points(folded)))
    return [folded[start:end] for start, end in zip(starts.tolist(), ends.tolist())]


def tokenize_with_spans(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokens as :func:`tokenize` gives them, with each token's character span in ``text``."""
    folded, first, last = fold_with_sources(text)
    starts, ends, _ = _token_bounds(_character_classes().take(code_points(folded)))
    tokens = [folded[start:end] for start, end in zip(starts.tolist(), ends.tolist())]
    return tokens, first[starts], last[ends - 1]


def fold_with_sources(text: str) -> tuple[str, np.ndarray, np.ndarray]:
    """Folded ``text``, and for each folded character the span of ``text`` it comes from."""
    rewritten = canonical_math_with_sources(text)
    if rewritten is None:
        return _case_fold_with_sources(text)
    canonical, math_first, math_last = rewritten
    folded, first, last = _case_fold_with_sources(canonical)
    return folded, math_first[first], math_last[last - 1]


def _case_fold_with_sources(text: str) -> tuple[str, np.ndarray, np.ndarray]:
    """NFKC-normalized, lower-cased ``text``, and for each character the span of ``text`` it comes from.

    Where folding keeps every character in place (the usual case) a character comes from
    itself. Where it does not (NFKC expansions such as "ﬁ", or "İ" lower-casing to two
    characters), every character of a whitespace-delimited chunk comes from the whole
    chunk; folding never crosses whitespace, so the tokens are those of ``fold(text)``.
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
            pieces.append(unicodedata.normalize("NFKC", chunk.group()).lower())
            first.append(np.full(len(pieces[-1]), start))
            last.append(np.full(len(pieces[-1]), end))
    return "".join(pieces), np.concatenate(first), np.concatenate(last)


def _folds_in_place(text: str) -> bool:
    """Does folding map each character of ``text`` to exactly one character?"""
    return unicodedata.is_normalized("NFKC", text) and len(text.lower()) == len(text)


PLACEHOLDER_HASH = PrefixPolynomial(code_points(NUMBER_PLACEHOLDER), CHARACTER_POWERS).spans(
    np.array([0]), np.array([len(NUMBER_PLACEHOLDER)])
)[0]
