"""The one text normalization the quality and domain classifiers see, at training and at apply time.

A classifier trained on one spelling of a text and applied to another loses accuracy
without any error to show for it; so both training and scoring call ``normalize_text``
with the ``max_words`` recorded next to the model, and nothing else touches the text.

Steps: Unicode NFKC, lower case, then tokens of four kinds, joined by single spaces
(newlines and runs of whitespace thus fold into one space):

- a number (digits with inner ``.`` or ``,`` separators) becomes ``<num>``: the value of a
  number says nothing about the quality or the topic of a page, and hashed features
  would otherwise spend themselves on every distinct value;
- a run of letters;
- a run of punctuation or symbols, split off the words it touches (``"end."`` and
  ``"end"`` are one word; ``"!!!"`` and ``"):"`` stay one token, which code and spam
  detection both use);
- a run of underscores, split off too, so no normalized text can hold a token such as
  ``__label__hq`` that fastText would read as a label.

Only the first ``max_words`` tokens are kept. The result is a fixed point: normalizing
it again changes nothing.
"""

import re
import unicodedata
from collections.abc import Iterable
from itertools import islice

DEFAULT_MAX_WORDS = 1000
NUMBER_PLACEHOLDER = "<num>"

_TOKEN = re.compile(rf"{re.escape(NUMBER_PLACEHOLDER)}|(\d+(?:[.,]\d+)*)|[^\W\d_]+|[^\w\s]+|_+")


def normalize_text(text: str, max_words: int = DEFAULT_MAX_WORDS) -> str:
    """``text`` as the classifiers see it: one line of at most ``max_words`` normalized tokens."""
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")
    folded = unicodedata.normalize("NFKC", text).lower()
    tokens = islice(_TOKEN.finditer(folded), max_words)
    return " ".join(NUMBER_PLACEHOLDER if match.group(1) else match.group(0) for match in tokens)


def normalize_texts(texts: Iterable[str], max_words: int = DEFAULT_MAX_WORDS) -> list[str]:
    """``normalize_text`` over many texts (the first step of the domain model's scikit-learn pipeline)."""
    return [normalize_text(text, max_words) for text in texts]
