"""Word-level text helpers: counts, shingle similarity, slugs, and the edits applied to quoted text."""

from __future__ import annotations

import random
import re


def word_count(text: str) -> int:
    return len(text.split())


def word_shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def shingle_jaccard(a: str, b: str, n: int = 5) -> float:
    """Jaccard similarity of the word n-gram sets of a and b (lowercased, punctuation dropped)."""
    sa, sb = word_shingles(a, n), word_shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def change_numbers(text: str, rng: random.Random) -> str:
    """Replace every number with a different one of the same length."""

    def different(match: re.Match) -> str:
        digits = match.group()
        while True:
            first = str(rng.randint(1 if len(digits) > 1 else 0, 9))
            candidate = first + "".join(str(rng.randint(0, 9)) for _ in digits[1:])
            if candidate != digits:
                return candidate

    return re.sub(r"\d+", different, text)


def first_half(text: str) -> str:
    """The text up to the last whitespace before its middle (formatting kept)."""
    cut = max(text.rfind(" ", 0, len(text) // 2), text.rfind("\n", 0, len(text) // 2))
    return text[:cut]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "page"
