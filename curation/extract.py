"""HTML to plain text with trafilatura or resiliparse, in datatrove's extraction sandbox.

``engine`` picks the extractor: ``trafilatura`` (lxml, main-content heuristics with
fallbacks) or ``resiliparse`` (``extract_plain_text(main_content=True)`` on Lexbor, over
an order of magnitude faster; the options below were chosen with ``bench/extract.py``
against the demo corpus' ground truth).

The page's licence and opt-out signals (see ``curation.license``) and its count of code
elements (``code_markup``, see ``curation.text_kind``) are read from the HTML first, since
extraction drops the tags that carry them.

datatrove's extractors drop a page silently when extraction fails, times out or
yields nothing; this one records each such page in the drop ledger with its reason
(``extract/timeout``, ``extract/crash``, ``extract/error``, ``extract/empty``) and keeps
the page's HTML in the removed shard for inspection.
"""

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.extractors.base import BaseExtractor, ExtractorSandbox
from datatrove.utils.typeshelper import StatHints

from curation.drops import Drop
from curation.license import license_signal, opt_out_signal
from curation.shards import RemovedSink
from curation.sources.warc import HTML_TYPES
from curation.text_kind import CODE_MARKUP, code_markup_count


def describe(doc: Document) -> str:
    where = doc.metadata.get("url") or doc.id
    if "warc_file" in doc.metadata:
        where += f" ({doc.metadata['warc_file']} @ byte {doc.metadata.get('warc_offset')})"
    return where


ENGINES = ("trafilatura", "resiliparse")

# Page furniture resiliparse's main-content heuristics keep, named by generic selectors only
# (no site's ids or classes): the <h1> title (trafilatura keeps it out of the text too),
# HTML5 landmarks, and ``.meta`` post-metadata lines ("From X, the free encyclopedia").
# On the demo's content pages they raise resiliparse's token F1 from 0.954 to 0.989 (trafilatura:
# 0.988), line F1 from 0.846 to 0.964 (bench/extract.py); post_meta=False adds 0.007 more.
RESILIPARSE_SKIP = ["h1", ".meta", "header", "footer", "nav", "aside"]
RESILIPARSE_OPTIONS = {
    "main_content": True,
    "preserve_formatting": True,  # blocks on their own lines: line-based filters need them
    "list_bullets": False,  # list items as plain lines, like trafilatura and the ground truth
    "alt_texts": False,
    "links": False,
    "form_fields": False,
    "noscript": False,
    "post_meta": False,  # bylines, dates, votes
    "skip_elements": RESILIPARSE_SKIP,
}


def resiliparse_text(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, **RESILIPARSE_OPTIONS)


class HtmlExtractor(BaseExtractor):
    name = "⛏ trafilatura"

    def __init__(
        self,
        removed: RemovedSink,
        timeout: float = 5.0,
        favor_precision: bool = False,
        include_tables: bool = True,
        deduplicate: bool = False,
        engine: str = "trafilatura",
    ):
        if engine not in ENGINES:
            raise ValueError(f"unknown extraction engine {engine!r}; expected one of {', '.join(ENGINES)}")
        self.name = f"⛏ {engine}"  # before the base class names the step's stats after it
        super().__init__(timeout)
        self.removed = removed
        self.favor_precision = favor_precision  # favor_precision, include_tables, deduplicate: trafilatura only
        self.include_tables = include_tables
        self.deduplicate = deduplicate
        self.engine = engine

    def extract(self, text: str) -> str:
        if self.engine == "resiliparse":
            return resiliparse_text(text)
        from trafilatura import extract

        return (
            extract(
                text,
                favor_precision=self.favor_precision,
                include_comments=False,
                include_tables=self.include_tables,
                deduplicate=self.deduplicate,
            )
            or ""
        )

    @staticmethod
    def record_markup_signals(doc: Document, html: str) -> None:
        """Licence and opt-out signals live in links and meta tags that extraction drops, and
        code samples in <pre>/<code> elements it turns into plain lines (curation.text_kind)."""
        for key, value in (("license", license_signal(html)), ("opt_out", opt_out_signal(html)), (CODE_MARKUP, code_markup_count(html))):
            if value:
                doc.metadata[key] = value

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with self.removed, ExtractorSandbox(timeout=self.timeout, warmup_text="") as sandbox:
            for doc in data:
                self.stat_update(StatHints.total)
                if doc.metadata.get("content_type") not in HTML_TYPES:
                    self.stat_update("not_html")  # PDF and WET text is plain text already
                    yield doc
                    continue
                html = doc.text
                reason, detail = None, None
                with self.track_time():
                    self.record_markup_signals(doc, html)
                    try:
                        doc.text = sandbox.process_document(html, self.extract)
                    except TimeoutError:
                        reason, detail = "timeout", f"{describe(doc)}: no result within {self.timeout}s"
                    except EOFError:
                        reason, detail = "crash", f"{describe(doc)}: extractor process died"
                    except Exception as err:
                        reason, detail = "error", f"{describe(doc)}: {type(err).__name__}: {err}"
                if reason is None and not doc.text.strip():
                    reason, detail = "empty", f"{describe(doc)}: no main text found"
                if reason is None:
                    self.stat_update(StatHints.forwarded)
                    yield doc
                    continue
                self.stat_update(StatHints.dropped, f"dropped_{reason}")
                doc.text = html
                self.removed.write(doc, rank, Drop("extract", reason, detail))
