"""HTML to plain text with trafilatura, in datatrove's extraction sandbox.

The page's licence and opt-out signals are read from the HTML first (see
``curation.license``), since extraction drops the tags that carry them.

datatrove's extractors drop a page silently when extraction fails, times out or
yields nothing; this one records each such page in the drop ledger with its reason
(``extract_timeout``, ``extract_crash``, ``extract_error``, ``extract_empty``) and keeps
the page's HTML in the removed shard for inspection.
"""

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.extractors.base import BaseExtractor, ExtractorSandbox
from datatrove.utils.typeshelper import StatHints

from curation.license import license_signal, opt_out_signal
from curation.shards import RemovedSink
from curation.sources.warc import HTML_TYPES


def describe(doc: Document) -> str:
    where = doc.metadata.get("url") or doc.id
    if "warc_file" in doc.metadata:
        where += f" ({doc.metadata['warc_file']} @ byte {doc.metadata.get('warc_offset')})"
    return where


class HtmlExtractor(BaseExtractor):
    name = "⛏ trafilatura"

    def __init__(
        self,
        removed: RemovedSink,
        timeout: float = 5.0,
        favor_precision: bool = False,
        include_tables: bool = True,
        deduplicate: bool = False,
    ):
        super().__init__(timeout)
        self.removed = removed
        self.favor_precision = favor_precision
        self.include_tables = include_tables
        self.deduplicate = deduplicate

    def extract(self, text: str) -> str:
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
    def record_rights(doc: Document, html: str) -> None:
        """Licence and opt-out signals live in links and meta tags that extraction drops."""
        for key, value in (("license", license_signal(html)), ("opt_out", opt_out_signal(html))):
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
                    self.record_rights(doc, html)
                    try:
                        doc.text = sandbox.process_document(html, self.extract)
                    except TimeoutError:
                        reason, detail = "extract_timeout", f"{describe(doc)}: no result within {self.timeout}s"
                    except EOFError:
                        reason, detail = "extract_crash", f"{describe(doc)}: extractor process died"
                    except Exception as err:
                        reason, detail = "extract_error", f"{describe(doc)}: {type(err).__name__}: {err}"
                if reason is None and not doc.text.strip():
                    reason, detail = "extract_empty", f"{describe(doc)}: no main text found"
                if reason is None:
                    self.stat_update(StatHints.forwarded)
                    yield doc
                    continue
                self.stat_update(StatHints.dropped, f"dropped_{reason}")
                doc.text = html
                self.removed.write(doc, rank, reason=reason, detail=detail)
