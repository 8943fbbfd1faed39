"""WARC/WET/ARC files as a document source, local or over http(s) and s3.

Each HTTP 200 response with an HTML payload becomes a document whose text is the
decoded HTML (the extract step turns it into plain text); a PDF payload goes through
the PDF extractor; a WET ``conversion`` record is plain text already. Records that
never were documents (requests, metadata, redirects, images) are only counted in the stats.
A bad record or span becomes a document marked with its drop (``warc/<reason>``,
curation.drops) that the stage intake sends to the drop ledger, naming the file and the
byte offset:

* in a .warc.gz every record is its own gzip member, inflated and checked (CRC) here:
  a corrupt member is skipped up to the next gzip member that inflates to a record
  (``corrupt``, with the span and ``skipped_bytes``), and reading goes on;
* a record the file ends inside is dropped (``truncated``), the records before it kept;
* an uncompressed file that breaks keeps the records before the break (``corrupt``);
* a file that is no WARC/ARC at all (JSON lines, plain text, a .gz that is not gzip)
  is one ``not_a_warc`` document saying what it looks like, never quoting it.
"""

import functools
import io
import re
import zlib
from collections.abc import Mapping
from urllib.parse import urlsplit

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader
from datatrove.utils.logging import logger

from curation.drops import Drop, mark
from curation.sources.commoncrawl import DownloadError, open_input
from curation.sources.names import source_names
from curation.sources.pdf import pdf_document_from_payload
from curation.sources.sharding import FilesByRank
from curation.sources.sniff import looks_like_records, what_it_looks_like, wrong_kind

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPE = "application/pdf"
PLAIN_TEXT = "text/plain"
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", re.IGNORECASE)

GZIP_MAGIC = b"\x1f\x8b\x08"
READ_BYTES = 1 << 20
SNIFF_BYTES = 1 << 16
TARGET_URI = re.compile(rb"WARC-Target-URI:\s*(\S+)")


def safe_problem(err: Exception) -> str:
    """An exception in a few words, without the file content some warcio errors quote."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    text = re.sub(r"(first line|status ?line)s?:.*", r"\1: (not shown)", text, flags=re.IGNORECASE)
    return text[:200]


class _Inflated:
    """One gzip member inflated from ``buffer[pos:]``: ``state`` is ok, cut (the data ends
    first) or broken (zlib fails); ``end`` is the index just past the member."""

    def __init__(self, state: str, end: int, content: bytes, problem: str = ""):
        self.state, self.end, self.content, self.problem = state, end, content, problem


class _GzipMembers:
    """The gzip members of a stream, inflated one by one, over a buffer that refills."""

    def __init__(self, stream, head: bytes, keep_bytes: int):
        self.stream, self.buffer, self.base, self.eof = stream, bytearray(head), 0, False
        self.keep_bytes = keep_bytes

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(READ_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def forget_before(self, pos: int) -> int:
        """Drops buffered bytes before ``pos`` (an index), returns the new index of that byte."""
        if pos > 4 * READ_BYTES:
            del self.buffer[:pos]
            self.base += pos
            return 0
        return pos

    def at_end(self, pos: int) -> bool:
        return pos >= len(self.buffer) and not self.fill()

    def inflate(self, pos: int) -> _Inflated:
        decompressor, content, i, size = zlib.decompressobj(31), bytearray(), pos, 2**14
        try:
            while not decompressor.eof:
                if i >= len(self.buffer) and not self.fill():
                    return _Inflated("cut", i, bytes(content))
                with memoryview(self.buffer) as view:  # no copy; released before the buffer grows
                    chunk = view[i:i + size]
                    data = decompressor.decompress(chunk)
                    i += len(chunk) - len(decompressor.unused_data)
                    chunk.release()
                size = min(2 * size, READ_BYTES)  # small members cost small reads
                if len(content) < self.keep_bytes:
                    content += data[: self.keep_bytes - len(content)]
        except zlib.error as err:
            return _Inflated("broken", i, bytes(content), safe_problem(err))
        return _Inflated("ok", i, bytes(content))

    def next_member(self, pos: int) -> int:
        """The index of the next gzip member after ``pos`` that inflates to a record's start."""
        search = pos + 1
        while True:
            found = self.buffer.find(GZIP_MAGIC, search)
            if found < 0:
                search = max(search, len(self.buffer) - len(GZIP_MAGIC) + 1)
                if not self.fill():
                    return len(self.buffer)
                continue
            member = self.inflate(found)
            if member.state != "broken" and looks_like_records(member.content[:SNIFF_BYTES]):
                return found
            search = found + 1


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


@functools.cache
def _arc_parser_class():
    from warcio.recordloader import ARC2WARCHeadersParser

    class WithoutMadeUpIds(ARC2WARCHeadersParser):
        def parse(self, stream, statusline=None):
            headers = super().parse(stream, statusline)
            headers.remove_header("WARC-Record-ID")
            return headers

    return WithoutMadeUpIds


def arc_headers_without_made_up_ids():
    """warcio's parser of ARC record headers (which it turns into WARC ones), minus the
    ``WARC-Record-ID`` it makes up: ARC records have no id, and warcio's is random,
    new on every read, so a rerun would give the same record another document id."""
    return _arc_parser_class()()


@functools.cache
def _quiet_iterator_class():
    from warcio.archiveiterator import ArchiveIterator

    class Quiet(ArchiveIterator):
        INC_RECORD = ""  # warcio would print the junk line itself to stderr

    return Quiet


def checked_archive_iterator(stream):
    """warcio's ArchiveIterator reading ARC records without made-up ids
    (:func:`arc_headers_without_made_up_ids`), and never printing the file's content.

    It reads an uncompressed file, or one gzip member that :class:`_GzipMembers`
    inflated already (warcio would end a gzip file cut mid-member as if it were
    complete, and take a corrupt member for uncompressed data).
    """
    records = _quiet_iterator_class()(stream, arc2warc=True)
    records.loader.arc_parser = arc_headers_without_made_up_ids()
    return records


class _Prefixed:
    """A stream whose first bytes were read already (``head``), read from the start again."""

    def __init__(self, stream, head: bytes):
        self.stream, self.head = stream, head

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data = self.head if size is None or size < 0 else self.head[:size]
            self.head = self.head[len(data):]
            return data
        return self.stream.read(size)


class _MemberOffsets:
    """The offsets of records inflated from one gzip member: the member's place in the file."""

    def __init__(self, records, start: int):
        self.records, self.start = records, start

    def get_record_offset(self) -> int:
        self.records.get_record_offset()  # reads the record to its end
        return self.start


class WarcSource(FilesByRank, BaseReader):
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
        pdf_domain: str | None = "papers",
        names: Mapping[str, str] | None = None,
        storage: Mapping | None = None,
    ):
        super().__init__(default_metadata=default_metadata)
        self.paths = list(paths)
        self.names = source_names(self.paths, names)
        self.max_record_bytes = max_record_bytes
        self.pdf_domain = pdf_domain
        self.storage = dict(storage or {})

    def read_file(self, path: str) -> DocumentsPipeline:
        # a DownloadError (the network, not the file) fails the rank, so that a rerun retries it
        with open_input(path, storage=self.storage) as stream:
            head = stream.read(SNIFF_BYTES)
            if head[:2] == b"\x1f\x8b":
                yield from self.read_gzip_members(path, stream, head)
            else:
                yield from self.read_plain(path, stream, head)

    def not_a_warc(self, path: str, detail: str) -> Document:
        logger.warning(detail)
        self.stat_update("not_warc_files")
        return self.error_document(path, 0, "not_a_warc", detail)

    def read_plain(self, path: str, stream, head: bytes) -> DocumentsPipeline:
        """An uncompressed WARC/ARC: read with warcio up to its first unreadable record."""
        if not looks_like_records(head):
            named_gz = " (and not gzip though named .gz)" if head and urlsplit(path).path.endswith(".gz") else ""
            yield self.not_a_warc(path, wrong_kind(path, what_it_looks_like(head), "a WARC") + named_gz)
            return
        processed, end = 0, 0
        try:
            records = checked_archive_iterator(_Prefixed(stream, head))
            for record in records:
                with self.track_time():
                    doc = self.record_document(record, path, records)
                end = max(0, records.get_record_offset() + records.get_record_length())
                processed += 1
                if doc is not None:
                    yield doc
        except DownloadError:
            raise
        except Exception as err:  # warcio raises a variety of errors on broken files
            detail = f"{path}: record #{processed + 1} (after byte {end}) is unreadable: {safe_problem(err)}"
            logger.warning(detail)
            self.stat_update("broken_files")
            yield self.error_document(path, end, "corrupt", detail)

    def read_gzip_members(self, path: str, stream, head: bytes) -> DocumentsPipeline:
        """A WARC.gz, one record per gzip member: a member that does not inflate is skipped up
        to the next one that does (one error document for the span), the rest read on."""
        members = _GzipMembers(stream, head, keep_bytes=self.max_record_bytes + 2**20)
        pos, number = 0, 0
        while not members.at_end(pos):
            start = members.base + pos
            member = members.inflate(pos)
            number += 1
            if number == 1 and member.state != "broken" and not looks_like_records(member.content[:SNIFF_BYTES]):
                yield self.not_a_warc(
                    path, wrong_kind(f"{path} (gzip)", what_it_looks_like(member.content[:SNIFF_BYTES]), "a WARC"))
                return
            if member.state == "broken":
                resume = members.next_member(pos)
                end = members.base + resume
                where = f"byte {end}" if resume < len(members.buffer) else f"the end of the file (byte {end})"
                detail = (f"{path}: gzip member #{number} at byte {start} is corrupt ({member.problem}); "
                          f"skipped bytes {start}-{end} ({end - start} bytes) up to {where}")
                logger.warning(detail)
                self.stat_update("corrupt_spans")
                self.stat_update("skipped_bytes", value=end - start)
                doc = self.error_document(path, start, "corrupt", detail)
                doc.metadata["skipped_bytes"] = end - start
                yield doc
                pos = resume
            elif member.state == "cut":
                uri = TARGET_URI.search(member.content[:SNIFF_BYTES])
                url = f" ({uri.group(1).decode('utf-8', 'replace')})" if uri else ""
                detail = (f"{path}: the record at byte {start}{url} is cut short: the file ends "
                          f"{members.base + member.end - start} bytes into its gzip member (file truncated)")
                logger.warning(detail)
                self.stat_update("truncated_records")
                yield self.error_document(path, start, "truncated", detail)
                return
            else:
                yield from self.member_documents(path, start, member.content)
                pos = member.end
            pos = members.forget_before(pos)

    def member_documents(self, path: str, start: int, content: bytes) -> DocumentsPipeline:
        docs, count = [], 0
        try:
            records = checked_archive_iterator(io.BytesIO(content))
            located = _MemberOffsets(records, start)
            for record in records:
                count += 1
                if count > 1:
                    raise ValueError(f"non-chunked gzip: the gzip member at byte {start} holds more than one record")
                with self.track_time():
                    doc = self.record_document(record, path, located)
                if doc is not None:
                    docs.append(doc)
        except Exception as err:  # warcio raises a variety of errors on broken records
            detail = f"{path}: the record at byte {start} is unreadable: {safe_problem(err)}"
            logger.warning(detail)
            self.stat_update("broken_records")
            docs = [self.error_document(path, start, "corrupt", detail)]
        yield from docs

    def short_record(self, path: str, offset: int, record_id: str, reason: str, counter: str, detail: str) -> Document:
        """A record holding less than its Content-Length: a drop naming the record, never a document."""
        self.stat_update(counter)
        logger.warning(detail)
        doc = self.error_document(path, offset, reason, detail)
        doc.metadata["warc_record_id"] = record_id
        return doc

    def located_id(self, path: str, offset: int) -> str:
        return f"{self.names[path]}@{offset}"

    def error_document(self, path: str, offset: int, reason: str, detail: str) -> Document:
        metadata = {"warc_file": path, "warc_offset": offset} | (self.default_metadata or {})
        return mark(Document(text="", id=self.located_id(path, offset), metadata=metadata), Drop("warc", reason, detail))

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
            return mark(Document(text="", id=record_id, metadata=metadata),
                        Drop("warc", "oversized_record", f"{where} exceeds {self.max_record_bytes} bytes"))
        if not fully_read and isinstance(records, _MemberOffsets):  # a complete member, a short record
            return self.short_record(path, offset, record_id, "corrupt", "broken_records",
                                     f"{where} is cut short: its gzip member ends before the record's Content-Length does")
        if not fully_read:  # the file ends inside the record: what is there is only part of it
            return self.short_record(path, offset, record_id, "truncated", "truncated_records",
                                     f"{where} is cut short: the file ends before the record does (file truncated)")
        if kind == PDF_TYPE:
            self.stat_update("pdf_documents")
            return pdf_document_from_payload(
                payload, url, record_id, truncated, warc_file=path, warc_offset=offset,
                default_metadata=(self.default_metadata or {}) | {"domain": self.pdf_domain, "warc_date": metadata["warc_date"]},
            )
        charset = detect_charset(payload, content_type)
        if charset is None:
            return mark(Document(text=payload.decode("utf-8", "replace"), id=record_id, metadata=metadata),
                        Drop("warc", "bad_encoding", f"{where}: no charset decodes the payload"))
        self.stat_update("documents")
        return Document(text=payload.decode(charset), id=record_id, metadata=metadata | {"charset": charset})
