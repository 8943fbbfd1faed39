"""Benchmark contamination: an n-gram index of test items, matching, redaction, reports.

Text is normalized into word tokens: math notation in one form (:mod:`.math_text`: LaTeX,
LaTeX stripped, other commands for the same notation and Unicode rendering give the same
tokens), then NFKC, lower case, punctuation stripped, whitespace folded. A number such as
``80,000`` or ``3.5`` stays one token, so changing it keeps the token count; a token holding
a digit is a *number token*.

What is indexed are the *parts* of the items (``index.indexed_parts``): each field of 2n
tokens or more on its own (a problem, its worked solution), shorter fields (answer
choices) joined to the one before, and the first field -- the problem -- on its own too
when it has n tokens, so that a copy of the problem alone is found. A prompt template
that most items of a field start with is taken off first (:mod:`.templates`). Each part is
indexed twice, as word n-grams (n = 13 by default, as in GPT-3):

- *exact*: the n-grams of its tokens;
- *masked*: the n-grams after every number token is replaced by one placeholder, so a
  document that copies an item with its numbers changed but its words kept still
  matches. A part shorter than n tokens has none: with its numbers gone, a short problem
  is a template others fit ("simplify sqrt <num>").

A part shorter than 2n tokens is indexed in grams of half its tokens, down to ``min_n``
(8), so that a partial copy holds whole grams, and also as one gram of all its tokens; a
part under ``min_n`` tokens is that one gram and matches as a whole normalized string on
word boundaries. Such short grams made mostly of numbers ("1 2 3 4 5 6 7 8") are left out.

A gram shared by more than ``max_items_per_gram`` parts is template text (MMLU's
"For which of these two scenarios does the main character ..." opens 895 items) and is
left out of the index: it says nothing about which item was copied, and it would make
one copied item look like hundreds.

For a document, the *fraction* of a part is the share of its distinct indexed grams that
occur in the document, for the exact and the masked variant separately. An item is
declared a match when either fraction of one of its parts reaches the threshold with two
grams at least (one, for a part of one gram): a single shared gram is as often a name that
prose uses too. The masked variant keeps only grams of which at least half the tokens are
words.

The default threshold is low because a partial copy loses the grams that straddle its
cut: the first half of an item of w tokens holds w/2 - n + 1 of its w - n + 1 grams,
1 of 14 at w = 2n. On 2,000 clean documents (Wikipedia prose, Python standard-library
source) no item of GSM8K, HumanEval or MMLU reaches it.

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

from classifiers.contamination.index import (
    DEFAULT_MAX_ITEMS_PER_GRAM,
    DEFAULT_N,
    DEFAULT_THRESHOLD,
    INDEX_FORMAT_VERSION,
    ContaminationIndex,
    ItemMatch,
    Redaction,
    matches_to_json,
    validate_threshold,
)
from classifiers.contamination.report import ContaminationReport
from classifiers.contamination.tokens import NUMBER_PLACEHOLDER, tokenize, tokenize_with_spans

__all__ = [
    "DEFAULT_MAX_ITEMS_PER_GRAM",
    "DEFAULT_N",
    "DEFAULT_THRESHOLD",
    "INDEX_FORMAT_VERSION",
    "NUMBER_PLACEHOLDER",
    "ContaminationIndex",
    "ContaminationReport",
    "ItemMatch",
    "Redaction",
    "matches_to_json",
    "tokenize",
    "tokenize_with_spans",
    "validate_threshold",
]
