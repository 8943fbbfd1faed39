"""Prompt templates in benchmark files: text most items of a field start with.

A benchmark file written for one harness often carries its prompt in every item ("Return your
final response within \\boxed{}."). Copies of the problems rarely carry it, so its grams
dilute every item's fraction, and a document holding the template alone matches nothing
real. The longest run of tokens that at least :data:`TEMPLATE_SHARE` of a field's parts start
with, if it is :data:`MIN_TEMPLATE_TOKENS` long and the field has :data:`MIN_TEMPLATE_ITEMS`
items, is taken off those parts before they are indexed, and reported.
"""

from collections import Counter
from dataclasses import dataclass

from classifiers.contamination.tokens import tokenize, tokenize_with_spans

TEMPLATE_SHARE = 0.5
MIN_TEMPLATE_TOKENS = 3
MIN_TEMPLATE_ITEMS = 20  # what a few items share says nothing of a harness


@dataclass(frozen=True)
class Template:
    benchmark: str
    field: str
    tokens: tuple[str, ...]
    share: float  # of the field's parts that start with it

    def describe(self) -> str:
        return f"{self.benchmark}.{self.field}: {self.share:.0%} of items start with {' '.join(self.tokens)!r}"


def common_prefix(texts: list[str]) -> tuple[tuple[str, ...], float]:
    """The longest token prefix that :data:`TEMPLATE_SHARE` of ``texts`` start with, and their share."""
    token_lists = [tokenize(text) for text in texts]
    holders = list(range(len(texts)))
    prefix: list[str] = []
    while True:
        nexts = Counter(token_lists[i][len(prefix)] for i in holders if len(token_lists[i]) > len(prefix))
        if not nexts:
            break
        token, count = nexts.most_common(1)[0]
        if count < TEMPLATE_SHARE * len(texts):
            break
        prefix.append(token)
        holders = [i for i in holders if len(token_lists[i]) >= len(prefix) and token_lists[i][len(prefix) - 1] == token]
    return tuple(prefix), (len(holders) / len(texts) if texts else 0.0)


def field_template(benchmark: str, field: str, texts: list[str]) -> Template | None:
    if len(texts) < MIN_TEMPLATE_ITEMS:
        return None
    prefix, share = common_prefix(texts)
    if len(prefix) < MIN_TEMPLATE_TOKENS:
        return None
    return Template(benchmark, field, prefix, share)


def without_template(text: str, template: Template) -> str:
    """``text`` after the template, where it starts with it; else ``text``."""
    tokens, _, ends = tokenize_with_spans(text)
    count = len(template.tokens)
    if tuple(tokens[:count]) != template.tokens:
        return text
    return text[int(ends[count - 1]) :]
