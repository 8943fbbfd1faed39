"""Code, technical text or prose: which rules a document is judged by.

Gopher, C4 and FineWeb rules were tuned on natural-language web text. On technical
documentation they drop good pages for what such pages are made of: a brace in a code
sample (C4's ``curly_bracket``), annotation lines repeated on every entry of a reference
page ("New in version 3.3.", "Availability: Unix."; FineWeb's ``char_dup_ratio``,
Gopher's duplicated n-grams), signatures without terminal punctuation. On 150 pages of
Python's HTML documentation the web settings alone kept 0.63; judged by kind, 0.97 of the
451 content pages are kept (``bench/technical_pages.py``).

:class:`TextKind` sorts each document once, into ``text_kind``:

- ``code``: at least ``code_lines`` of its non-empty lines look like code. Prose rules
  skip it (a heuristic's ``prose_only``).
- ``technical``: its HTML had at least ``code_markup`` code elements (``<pre>``,
  ``<code>``, ``<kbd>``, ``<samp>``; counted at extraction into ``code_markup``), or at
  least ``technical_lines`` of its lines look like code (document files have no HTML).
  Each heuristic judges it with its ``technical_params`` over its ``params``.
- ``prose``: everything else, judged with the web settings.
"""

import re

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter

TEXT_KIND = "text_kind"
CODE_MARKUP = "code_markup"
CODE, TECHNICAL, PROSE = "code", "technical", "prose"
CODE_LINES = 0.25  # the share of code-looking lines that makes a text code

# A line that reads as code: a statement, a comment, a brace, a doctest or shell prompt, a
# call or signature (a name directly followed by "(": "Mole (animal)" is a title, not a call).
CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |return\b|if .*:$|for .*:$|while .*:$|elif |else:|try:|except"
    r"|with .*:$|@\w+|#|//|/\*|\*|[{}]|>>>|\.\.\. |\$ |.*[;{}]\s*$|.*[\w\]]\(.*\)\s*:?\s*$|\w+(\.\w+)* = )"
)
CODE_MARKUP_TAG = re.compile(r"<(?:pre|code|kbd|samp)[\s>]", re.IGNORECASE)


def code_markup_count(html: str) -> int:
    return len(CODE_MARKUP_TAG.findall(html))


def prose_lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip() and not CODE_LINE.match(line))


def code_line_fraction(text: str) -> float:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return 0.0
    return sum(bool(CODE_LINE.match(line)) for line in lines) / len(lines)


class TextKind(PipelineStep):
    """Sets ``text_kind`` (code, technical or prose) on every document; see the module docstring."""

    name = "🔎 text kind"
    type = "🏷 annotate"

    def __init__(self, code_lines: float = CODE_LINES, technical_lines: float = 0.1, code_markup: int = 2):
        super().__init__()
        self.code_lines = code_lines
        self.technical_lines = technical_lines
        self.code_markup = code_markup

    def kind(self, doc: Document) -> str:
        share = code_line_fraction(doc.text)
        if share >= self.code_lines:
            return CODE
        if share >= self.technical_lines or (doc.metadata.get(CODE_MARKUP) or 0) >= self.code_markup:
            return TECHNICAL
        return PROSE

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            with self.track_time():
                doc.metadata[TEXT_KIND] = self.kind(doc)
            self.stat_update(doc.metadata[TEXT_KIND])
            yield doc


class ByTextKind(BaseFilter):
    """A prose heuristic in two settings, picked by ``text_kind``: ``technical`` judges
    technical text (and code, unless ``prose_only`` lets code pass, counted as
    ``exempt_code``), ``web`` judges prose."""

    def __init__(self, web: BaseFilter, technical: BaseFilter, prose_only: bool = True, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.web = web
        self.technical = technical
        self.prose_only = prose_only
        self.name = web.name
        self.stats = type(self.stats)(f"{web.type}: {web.name}")

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        kind = doc.metadata.get(TEXT_KIND, PROSE)
        if kind == CODE and self.prose_only:
            self.stat_update("exempt_code")
            return True
        if kind == PROSE:
            return self.web.filter(doc)
        self.stat_update("judged_technical")
        return self.technical.filter(doc)
