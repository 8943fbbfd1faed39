"""WARC/WET/ARC files as a document source, local or over http(s) and s3.

Each HTTP 200 response with an HTML payload becomes a document whose text is the
decoded HTML (the extract step turns it into plain text); a PDF payload goes through
the PDF extractor; a WET ``conversion`` record is plain text already. Records that
never were documents (requests, metadata, redirects, images) are only counted in the stats.
A file that breaks mid-way keeps the records read before the break, and the break
itself becomes a document marked with ``error_reason`` that the stage intake sends
to the drop ledger, naming the file and the byte offset of the failing record.
"""

import re
from collections.abc import Mapping

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader
from datatrove.utils.logging import logger

from curation.documents import ERROR_DETAIL, ERROR_REASON
from curation.sources.commoncrawl import DownloadError, open_input
from curation.sources.names import source_names
from curation.sources.pdf import pdf_document_from_payload

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPE = "application/pdf"
PLAIN_TEXT = "text/plain"
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", re.IGNORECASE)


def detect_charset(payload: bytes, content_type: str | None) -> str | None:
    """The charset the page declares (HTTP header, then ``<meta>``), else a statistical guess."""
    import cchardet

    declared = HEADER_CHARSET.search(content_type or "")
    candidates = [declared.group(1) if declared else None]
    meta = META_CHARSET.search(payload[:4096])
    candidates.append(meta.group(1).decode("ascii", "ignore") if meta else None)
    candidates.append(cchardet.detect(payload[:65536]).get("encoding"))
    for name in candidates:
        if not name:
            continue
        try:
            payload.decode(name)
            return name.lower()
        except (LookupError, UnicodeDecodeError):
            continue
    return None


def mime_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def arc_headers_without_made_up_ids():
    """warcio's parser of ARC record headers (which it turns into WARC ones), minus the
    ``WARC-Record-ID`` it makes up: ARC records have no id, and warcio's is random,
    new on every read, so a rerun would give the same record another document id."""
    from warcio.recordloader import ARC2WARCHeadersParser

    class WithoutMadeUpIds(ARC2WARCHeadersParser):
        def parse(self, stream, statusline=None):
            headers = super().parse(stream, statusline)
            headers.remove_header("WARC-Record-ID")
            return headers

    return WithoutMadeUpIds()


def checked_archive_iterator(stream):
    """warcio's ArchiveIterator, remembering whether the last gzip member ended cleanly,
    reading ARC records without made-up ids (:func:`arc_headers_without_made_up_ids`).

    warcio ends a gzip file that was cut mid-member as if it were complete: the
    record at the cut vanishes without an error. ``truncated_gzip`` tells.
    """
    from warcio.archiveiterator import ArchiveIterator

    class Checked(ArchiveIterator):
        truncated_gzip = False

        def close(self):
            decompressor = getattr(self.reader, "decompressor", None)
            if decompressor is not None and not decompressor.eof:
                self.truncated_gzip = True
            super().close()

    records = Checked(stream, arc2warc=True)
    records.loader.arc_parser = arc_headers_without_made_up_ids()
    return records


class WarcSource(BaseReader):
    """Reads WARC, WARC.gz and ARC files; rank r of n reads every n-th file of ``paths``.

    A document's id is its record's ``WARC-Record-ID``: the crawler made it unique
    for all time, and it does not depend on where the file is kept. A record without
    one (every ARC record) and a break in a file get ``<name>@<byte offset>``, where
    ``names`` maps a path to its stable name (:mod:`curation.sources.names`), so that
    the id survives moving the corpus: a path missing from ``names`` stands for
    itself, and with no ``names`` at all the files are named relative to the folder
    that holds them all. ``warc_file`` keeps the real path.
    """

    name = "🕷 warc"

    def __init__(
        self,
        paths: list[str],
        max_record_bytes: int = 10 * 2**20,
        default_metadata: dict | None = None,
        pdf_domain: str = "papers",
        names: Mapping[str, str] | None = None,
    ):
        super().__init__(default_metadata=default_metadata)
        self.paths = list(paths)
        self.names = source_names(self.paths, names)
        self.max_record_bytes = max_record_bytes
        self.pdf_domain = pdf_domain

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for path in self.paths[rank::world_size]:
            self.stat_update("input_files")
            yield from self.read_file(path)

    def read_file(self, path: str) -> DocumentsPipeline:
        processed, end = 0, 0
        try:
            with open_input(path) as stream:
                records = checked_archive_iterator(stream)
                for record in records:
                    with self.track_time():
                        doc = self.record_document(record, path, records)
                    end = max(0, records.get_record_offset() + records.get_record_length())
                    processed += 1
                    if doc is not None:
                        yield doc
            if records.truncated_gzip:
                raise EOFError("the gzip stream ends in the middle of a record (file truncated)")
        except DownloadError:
            raise  # the network, not the file: fail the rank so that a rerun retries it
        except Exception as err:  # warcio, gzip and zlib raise a variety of errors on broken files
            problem = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            detail = f"{path}: record #{processed + 1} (after byte {end}) is unreadable: {problem}"
            logger.warning(detail)
            self.stat_update("broken_files")
            yield self.error_document(path, end, "corrupt_warc", detail)

    def located_id(self, path: str, offset: int) -> str:
        return f"{self.names[path]}@{offset}"

    def error_document(self, path: str, offset: int, reason: str, detail: str) -> Document:
        return Document(
            text="",
            id=self.located_id(path, offset),
            metadata={"warc_file": path, "warc_offset": offset, ERROR_REASON: reason, ERROR_DETAIL: detail},
        )

    def record_document(self, record, path: str, records) -> Document | None:
        if record.rec_type == "conversion":  # WET: the crawler already extracted the text
            return self.payload_document(record, path, records, PLAIN_TEXT, None)
        if record.rec_type != "response" or record.http_headers is None:
            self.stat_update(f"skipped_{record.rec_type}")
            return None
        if record.http_headers.get_statuscode() != "200":
            self.stat_update("skipped_status_not_200")
            return None
        content_type = record.http_headers.get_header("Content-Type")
        kind = mime_type(record.rec_headers.get_header("WARC-Identified-Payload-Type") or content_type)
        if kind not in HTML_TYPES and kind != PDF_TYPE:
            self.stat_update(f"skipped_payload_{kind.replace('/', '_') or 'unknown'}")
            return None
        return self.payload_document(record, path, records, kind, content_type)

    def payload_document(self, record, path: str, records, kind: str, content_type: str | None) -> Document:
        payload = record.content_stream().read(self.max_record_bytes + 1)
        fully_read = record.raw_stream.limit == 0
        offset = records.get_record_offset()  # reads the record to its end: only after the payload
        record_id = record.rec_headers.get_header("WARC-Record-ID") or self.located_id(path, offset)
        url = record.rec_headers.get_header("WARC-Target-URI")
        truncated = bool(record.rec_headers.get_header("WARC-Truncated")) or not fully_read
        where = f"{path}: record {record_id} at byte {offset} ({url})"
        metadata = {
            "source": "web",
            "url": url,
            "warc_record_id": record_id,
            "warc_file": path,
            "warc_offset": offset,
            "warc_date": record.rec_headers.get_header("WARC-Date"),
            "content_type": kind,
            "truncated": truncated,
        } | (self.default_metadata or {})
        if len(payload) > self.max_record_bytes:
            return Document(text="", id=record_id, metadata=metadata | {
                ERROR_REASON: "oversized_record", ERROR_DETAIL: f"{where} exceeds {self.max_record_bytes} bytes"})
        if kind == PDF_TYPE:
            self.stat_update("pdf_documents")
            return pdf_document_from_payload(
                payload, url, record_id, truncated, warc_file=path, warc_offset=offset,
                default_metadata={"domain": self.pdf_domain, "warc_date": metadata["warc_date"]},
            )
        charset = detect_charset(payload, content_type)
        if charset is None:
            return Document(text=payload.decode("utf-8", "replace"), id=record_id, metadata=metadata | {
                ERROR_REASON: "bad_encoding", ERROR_DETAIL: f"{where}: no charset decodes the payload"})
        self.stat_update("documents")
        return Document(text=payload.decode(charset), id=record_id, metadata=metadata | {"charset": charset})
