"""PDF files as a document source: text in reading order, OCR for scanned pages.

Text comes from pymupdf's text layer, line by line with positions, and is put back
together the way a reader would read it:

* **Columns.** A page whose lines are mostly narrow, with a vertical gap (the gutter)
  near the middle that (almost) no narrow line crosses and at least three lines on
  each side, is read column by column. Lines that cross the gutter (titles, centred
  author lines, abstracts, full-width figures) split the page into bands;
  each band is read left column first, then right. Other pages are read block by
  block, blocks sorted top to bottom, then left to right.
* **Running headers and footers.** Lines in the top or bottom tenth of a page whose
  text, with digits masked (``Page 3 of 9`` = ``Page 4 of 9``), recurs in the same
  zone on at least half of the pages (and on two at least) are removed, as are bare
  page numbers there (``12``, ``- 12 -``, ``Page 12``, ``xii``).
* **Reflow and de-hyphenation.** The lines of a block are joined with spaces; blocks
  become paragraphs separated by a blank line. A line ending in ``letters-`` continues
  its word on the next line, across columns and pages too. The hyphen is dropped
  (``exam-`` + ``ple`` -> ``example``) unless the next line starts with something
  other than a lower-case letter (``Jean-`` + ``Paul`` -> ``Jean-Paul``) or the
  document itself writes the hyphenated compound elsewhere and never the joined
  word (``well-known``): a lexicon of the document's own words, no dictionary.
* Text that is not horizontal in the page's main direction (the rotated arXiv stamp
  in a margin, axis labels) is left out.

Pages with (almost) no text layer but an image are OCR'd when OCR is configured
(:mod:`curation.sources.ocr`).

Broken input never raises out of the reader: it becomes a document marked with
``error_reason`` (``empty_pdf``, ``corrupt_pdf``, ``truncated_pdf``,
``encrypted_pdf``, ``no_text_pdf``, ``ocr_failed``) and a detail naming the file and,
where it applies, the page, which the stage intake sends to the drop ledger. A file
whose end lacks the ``%%EOF`` marker is truncated: MuPDF would repair it and quietly
return the pages before the cut, so it is refused -- except for a payload the crawler
is known to have cut (Common Crawl stops at 1 MiB), which is kept, marked
``truncated``, when some text can be read from it.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import accumulate

import fsspec
import pymupdf
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader

from curation.documents import ERROR_DETAIL, ERROR_REASON
from curation.sources.ocr import OcrConfig, OcrFailed, OcrResult, PageOcr, open_ocr

TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_LIGATURES  # "ﬁ" -> "fi"
MARKER_WINDOW = 1024  # the PDF spec's allowance for where %PDF- and %%EOF may sit
HEADER_ZONE = 0.1  # top and bottom share of the page height searched for running lines
SPANNING_WIDTH = 0.6  # a line wider than this share of the text width spans columns
MIN_GUTTER_PT = 8  # narrowest gap between columns, in points
MIN_COLUMN_LINES = 3  # lines each side of a gutter needs to count as a column

LETTERS = r"[^\W\d_]+"
HYPHENATED_END = re.compile(rf"((?:{LETTERS}-)*{LETTERS})[-\u00ad\u2010]$")  # the word (or compound) before
LEADING_WORD = re.compile(LETTERS)
COMPOUND = re.compile(rf"{LETTERS}(?:-{LETTERS})+")
PAGE_NUMBER = re.compile(  # 12, - 12 -, (12), [xii], Page 12, 12 of 30, 12/30
    r"(?:page\s+)?[-–—(\[]?\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,4})?", re.IGNORECASE
)
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class PdfProblem(Exception):
    """A whole file that cannot be read; ``reason`` becomes the document's ``error_reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class Line:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    block: int


@dataclass
class Page:
    """One page's text: positional ``lines``, or ``plain`` text from a VLM, or an ``error``."""

    number: int  # 1-based
    width: float
    height: float
    lines: list[Line] = field(default_factory=list)
    plain: str | None = None
    ocr: bool = False
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class PdfText:
    """The text of a whole PDF or of one page (pages are 1-based), with what it came from."""

    text: str
    pdf_path: str
    page_count: int | None = None  # None (like the page range) when the file could not be read at all
    page_start: int | None = None
    page_end: int | None = None
    title: str | None = None
    author: str | None = None
    ocr_pages: tuple[int, ...] = ()
    per_page: bool = False
    error_reason: str | None = None
    error_detail: str | None = None

    @property
    def id(self) -> str:
        return f"{self.pdf_path}#page={self.page_start}" if self.per_page else self.pdf_path

    @property
    def fully_ocr(self) -> bool:
        return self.page_start is not None and len(self.ocr_pages) == self.page_end - self.page_start + 1

    def metadata(self) -> dict:
        """Flat metadata keys, unknown ones left out; ``source`` is ``ocr`` when every
        page's text came from OCR."""
        meta = {
            "source": "ocr" if self.fully_ocr else "pdf",
            "pdf_path": self.pdf_path,
            "page": self.page_start if self.per_page else None,
            "page_count": self.page_count,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "ocr_pages": list(self.ocr_pages),
            "title": self.title,
            "author": self.author,
            ERROR_REASON: self.error_reason,
            ERROR_DETAIL: self.error_detail,
        }
        return {key: value for key, value in meta.items() if value is not None}


# --- opening -------------------------------------------------------------------------


def open_pdf(data: bytes, name: str, cut_by_crawler: bool) -> pymupdf.Document:
    """The parsed document, or :class:`PdfProblem` saying why the file cannot be read."""
    if not data:
        raise PdfProblem("empty_pdf", f"{name}: zero-byte file")
    if b"%PDF-" not in data[:MARKER_WINDOW]:
        raise PdfProblem("corrupt_pdf", f"{name}: not a PDF (no %PDF- header in its first {MARKER_WINDOW} bytes)")
    cut = b"%%EOF" not in data[-MARKER_WINDOW:]
    cut_detail = f"{name}: file is cut short at {len(data)} bytes (no %%EOF marker at its end)"
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as err:  # MuPDF raises a family of errors (FileDataError, FzErrorFormat, ...)
        if cut:
            raise PdfProblem("truncated_pdf", f"{cut_detail} and cannot be opened: {err}") from None
        raise PdfProblem("corrupt_pdf", f"{name}: cannot be opened: {type(err).__name__}: {err}") from None
    if doc.needs_pass:
        raise PdfProblem("encrypted_pdf", f"{name}: encrypted, needs a password to open")
    if doc.page_count == 0:
        raise PdfProblem("truncated_pdf" if cut else "corrupt_pdf", f"{name}: no readable pages")
    if cut and not cut_by_crawler:
        raise PdfProblem("truncated_pdf", f"{cut_detail}; a partial download?")
    return doc


@contextmanager
def quiet_mupdf() -> Iterator[None]:
    """MuPDF prints every repair it attempts on a broken file to stderr, and keeps each
    message in a process-wide list that never shrinks; the outcome goes to the drop
    ledger instead. The display switch is process-wide too, and restored on exit."""
    previous = pymupdf.TOOLS.mupdf_display_errors()
    pymupdf.TOOLS.mupdf_display_errors(False)
    try:
        yield
    finally:
        pymupdf.TOOLS.mupdf_display_errors(previous)
        pymupdf.TOOLS.reset_mupdf_warnings()


def info_field(doc: pymupdf.Document, key: str) -> str | None:
    value = " ".join(((doc.metadata or {}).get(key) or "").split())
    return value or None


# --- lines of a page -------------------------------------------------------------------


def unrotated_size(page: pymupdf.Page) -> tuple[float, float]:
    """Text positions are given in the unrotated page; so must the page size be."""
    rect = page.rect * page.derotation_matrix
    return abs(rect.width), abs(rect.height)


def page_lines(page: pymupdf.Page, textpage: pymupdf.TextPage | None = None) -> list[Line]:
    """Non-empty text lines with their boxes, only those in the page's main text direction."""
    blocks = page.get_text("dict", flags=TEXT_FLAGS, textpage=textpage)["blocks"]
    found = []
    for number, block in enumerate(blocks):
        for line in block.get("lines", ()):
            text = " ".join("".join(span["text"] for span in line["spans"]).split())
            if text:
                direction = (round(line["dir"][0], 1), round(line["dir"][1], 1))
                found.append((direction, Line(text, *line["bbox"], block=number)))
    weights = Counter()
    for direction, line in found:
        weights[direction] += len(line.text)
    main = weights.most_common(1)[0][0] if weights else None
    return [line for direction, line in found if direction == main]


def text_chars(lines: list[Line]) -> int:
    return sum(len(line.text.replace(" ", "")) for line in lines)


def read_page(doc: pymupdf.Document, index: int, name: str, ocr: PageOcr | None) -> Page:
    """One page's text layer, replaced by OCR where the page looks scanned."""
    number = index + 1
    where = f"{name}: page {number}"
    try:
        page = doc[index]
        width, height = unrotated_size(page)
        lines = page_lines(page)
        if ocr is None or not ocr.wants(page, text_chars(lines)):
            return Page(number, width, height, lines)
    except Exception as err:  # a broken content stream or resource: this page only
        return Page(number, 0, 0, error=("corrupt_pdf", f"{where}: unreadable: {type(err).__name__}: {err}"))
    try:
        return ocr_page(page, number, width, height, ocr.read(page, where))
    except OcrFailed as err:
        return Page(number, width, height, lines, error=("ocr_failed", f"{where}: {err}"))
    except Exception as err:  # MuPDF could not render the page for OCR
        detail = f"{where}: cannot be rendered: {type(err).__name__}: {err}"
        return Page(number, width, height, lines, error=("corrupt_pdf", detail))


def ocr_page(page: pymupdf.Page, number: int, width: float, height: float, result: OcrResult) -> Page:
    if result.textpage is not None:
        return Page(number, width, height, page_lines(page, result.textpage), ocr=True)
    return Page(number, width, height, plain=result.text, ocr=True)


# --- running headers and footers ------------------------------------------------------------


def margin_zone(line: Line, page: Page) -> str | None:
    middle = (line.y0 + line.y1) / 2
    if middle <= page.height * HEADER_ZONE:
        return "top"
    if middle >= page.height * (1 - HEADER_ZONE):
        return "bottom"
    return None


def running_key(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower())


def is_page_number(text: str) -> bool:
    return PAGE_NUMBER.fullmatch(text) is not None


def remove_running_lines(pages: list[Page]) -> None:
    """Drop running headers/footers and bare page numbers from the margin zones (module doc)."""
    laid_out = [page for page in pages if page.lines]
    seen = Counter()
    for page in laid_out:
        seen.update({(zone, running_key(line.text)) for line in page.lines if (zone := margin_zone(line, page))})
    threshold = max(2, len(laid_out) // 2)
    running = {key for key, count in seen.items() if count >= threshold}

    def is_running(line: Line, page: Page) -> bool:
        zone = margin_zone(line, page)
        return zone is not None and (is_page_number(line.text) or (zone, running_key(line.text)) in running)

    for page in laid_out:
        page.lines = [line for line in page.lines if not is_running(line, page)]


# --- reading order --------------------------------------------------------------------


def crossings(lines: list[Line], size: int) -> list[int]:
    """For each integer x in ``0..size``, how many ``lines`` run across it."""
    delta = [0] * (size + 2)
    for line in lines:
        low, high = max(0, math.floor(line.x0) + 1), min(size, math.ceil(line.x1) - 1)
        if low <= high:
            delta[low] += 1
            delta[high + 1] -= 1
    return list(accumulate(delta))[: size + 1]


def widest_run(xs: list[int]) -> tuple[int, int] | None:
    """The longest stretch of consecutive integers in sorted ``xs``, as (first, last)."""
    best, start = None, None
    for i, x in enumerate(xs):
        if start is None or x != xs[i - 1] + 1:
            start = x
        if best is None or x - start > best[1] - best[0]:
            best = (start, x)
    return best


def column_gutter(lines: list[Line], page_width: float) -> float | None:
    """The x of the gap between two columns, or None for a single-column page (module doc).

    A few narrow lines may cross the gap (a centred author line or heading): up to a
    tenth of them; they are read as spanning lines.
    """
    if len(lines) < 2 * MIN_COLUMN_LINES:
        return None
    left, right = min(line.x0 for line in lines), max(line.x1 for line in lines)
    narrow = [line for line in lines if line.x1 - line.x0 < SPANNING_WIDTH * (right - left)]
    if len(narrow) * 2 < len(lines):
        return None
    crossing = crossings(narrow, math.ceil(max(page_width, right)))
    middle = range(max(0, int(left + (right - left) / 4)), int(right - (right - left) / 4) + 1)
    run = widest_run([x for x in middle if crossing[x] <= len(narrow) // 10])
    if run is None or run[1] - run[0] + 1 < MIN_GUTTER_PT:
        return None
    gutter = (run[0] + run[1]) / 2
    left_lines = sum(line.x1 <= gutter for line in narrow)
    right_lines = sum(line.x0 >= gutter for line in narrow)
    return gutter if min(left_lines, right_lines) >= MIN_COLUMN_LINES else None


def column_side(line: Line, gutter: float) -> str:
    if line.x1 <= gutter:
        return "left"
    return "right" if line.x0 >= gutter else "span"


def group_lines(lines: list[Line], key) -> list[tuple[str, list[Line]]]:
    """Lines grouped by ``key`` (keeping MuPDF's order inside a group), groups in first-seen order."""
    groups: dict = {}
    for line in lines:
        groups.setdefault(key(line), []).append(line)
    return list(groups.items())


def reading_order(page: Page) -> list[list[Line]]:
    """The page's lines as paragraphs (one per block, or block part in one column), in reading order."""
    gutter = column_gutter(page.lines, page.width)
    if gutter is None:
        blocks = [members for _, members in group_lines(page.lines, lambda line: line.block)]
        return sorted(blocks, key=lambda block: (min(l.y0 for l in block), min(l.x0 for l in block)))
    parts = group_lines(page.lines, lambda line: (line.block, column_side(line, gutter)))
    parts.sort(key=lambda part: (min(l.y0 for l in part[1]), min(l.x0 for l in part[1])))
    ordered: list[list[Line]] = []
    band: dict[str, list[list[Line]]] = {"left": [], "right": []}
    for (_, side), members in parts:
        if side == "span":
            ordered += band["left"] + band["right"]
            band = {"left": [], "right": []}
            ordered.append(members)
        else:
            band[side].append(members)
    return ordered + band["left"] + band["right"]


# --- text -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lexicon:
    """The document's own vocabulary, to tell a line-end hyphen from a real one."""

    words: frozenset[str]
    compounds: frozenset[str]

    @classmethod
    def of(cls, texts: Iterable[str]) -> Lexicon:
        words, compounds = set(), set()
        for text in texts:
            lowered = text.lower()
            words.update(re.findall(LETTERS, lowered))
            compounds.update(COMPOUND.findall(lowered))
        return cls(frozenset(words), frozenset(compounds))

    def keeps_hyphen(self, head: str, tail: str) -> bool:
        """``head`` may be a compound itself: ``state-of-the`` + ``art``."""
        joined, compound = (head + tail).lower(), f"{head}-{tail}".lower()
        return compound in self.compounds and joined.rpartition("-")[2] not in self.words


def continue_hyphenated(paragraph: str, line: str, lexicon: Lexicon) -> str:
    """``paragraph`` (ending ``letters-``) continued by ``line``: hyphen dropped or kept (module doc)."""
    head = HYPHENATED_END.search(paragraph).group(1)
    tail = LEADING_WORD.match(line)
    if line[0].islower() and tail and not lexicon.keeps_hyphen(head, tail.group(0)):
        return paragraph[:-1] + line
    return paragraph[:-1] + "-" + line


def join_lines(items: Iterable[tuple[str, bool]], lexicon: Lexicon) -> str:
    """Text from ``(line, starts_paragraph)`` pairs: lines reflowed, hyphenated words rejoined."""
    paragraphs: list[str] = []
    for line, starts_paragraph in items:
        if paragraphs and HYPHENATED_END.search(paragraphs[-1]):
            paragraphs[-1] = continue_hyphenated(paragraphs[-1], line, lexicon)
        elif starts_paragraph or not paragraphs:
            paragraphs.append(line)
        else:
            paragraphs[-1] += " " + line
    return "\n\n".join(paragraphs)


def page_items(page: Page) -> Iterator[tuple[str, bool]]:
    if page.plain is not None:
        for paragraph in PARAGRAPH_BREAK.split(page.plain):
            if paragraph.strip():
                yield paragraph.strip(), True
        return
    for paragraph in reading_order(page):
        for i, line in enumerate(paragraph):
            yield line.text, i == 0


def page_texts(page: Page) -> Iterator[str]:
    if page.plain is not None:
        yield page.plain
    yield from (line.text for line in page.lines)


# --- documents ------------------------------------------------------------------------


def part_text(pages: list[Page], name: str, lexicon: Lexicon, **common) -> PdfText:
    """One :class:`PdfText` for consecutive ``pages``, carrying the first page error if any."""
    text = join_lines((item for page in pages for item in page_items(page)), lexicon)
    errors = [page.error for page in pages if page.error]
    reason, detail = errors[0] if errors else (None, None)
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more page(s) with errors)"
    if reason is None and not text.strip():
        where = f"page {pages[0].number}" if len(pages) == 1 else f"pages {pages[0].number}-{pages[-1].number}"
        reason, detail = "no_text_pdf", f"{name}: no text on {where} (no text layer, none from OCR; scans need ocr.engine)"
    return PdfText(
        text=text,
        pdf_path=name,
        page_start=pages[0].number,
        page_end=pages[-1].number,
        ocr_pages=tuple(page.number for page in pages if page.ocr),
        error_reason=reason,
        error_detail=detail,
        **common,
    )


def extract_pdf(
    data: bytes | str | os.PathLike,
    name: str | None = None,
    per_page: bool = False,
    ocr: PageOcr | None = None,
    cut_by_crawler: bool = False,
) -> list[PdfText]:
    """The text of a PDF: one :class:`PdfText` for the file, or one per page with ``per_page``.

    ``data`` is the file's bytes or a local path; ``name`` (default: the path) is what
    ``pdf_path`` and error details call the file. ``cut_by_crawler`` says the bytes are
    known to be cut short: a readable prefix is then kept instead of refused. Broken
    input gives a single :class:`PdfText` with ``error_reason`` set, never an exception;
    only OCR that cannot run at all (:class:`~curation.sources.ocr.OcrUnavailableError`)
    raises, from :func:`~curation.sources.ocr.open_ocr`.
    """
    if not isinstance(data, bytes):
        name = name or os.fspath(data)
        with open(data, "rb") as file:
            data = file.read()
    name = name or "<pdf>"
    with quiet_mupdf():
        try:
            doc = open_pdf(data, name, cut_by_crawler)
        except PdfProblem as problem:
            return [PdfText(text="", pdf_path=name, error_reason=problem.reason, error_detail=problem.detail)]
        with doc:
            common = {"page_count": doc.page_count, "title": info_field(doc, "title"), "author": info_field(doc, "author")}
            pages = [read_page(doc, index, name, ocr) for index in range(doc.page_count)]
    remove_running_lines(pages)
    lexicon = Lexicon.of(text for page in pages for text in page_texts(page))
    if per_page:
        return [part_text([page], name, lexicon, per_page=True, **common) for page in pages]
    return [part_text(pages, name, lexicon, **common)]


def pdf_document_from_payload(
    payload: bytes,
    url: str,
    record_id: str,
    truncated: bool,
    warc_file: str | None = None,
    warc_offset: int | None = None,
    ocr: PageOcr | None = None,
    default_metadata: dict | None = None,
) -> Document:
    """A document for a PDF found in a WARC response (one per payload, never per page).

    Common Crawl cuts payloads at 1 MiB and says so with ``WARC-Truncated``: such a
    ``truncated`` payload is kept with ``truncated=True`` when text can be read from
    it, and marked ``truncated_pdf`` when not.
    """
    name = f"{warc_file}: record {record_id} ({url})" if warc_file else f"{url} (record {record_id})"
    part = extract_pdf(payload, name, ocr=ocr, cut_by_crawler=truncated)[0]
    if truncated and part.error_reason == "no_text_pdf":
        part = PdfText(
            text="",
            pdf_path=name,
            page_count=part.page_count,
            error_reason="truncated_pdf",
            error_detail=f"{name}: payload cut by the crawler at {len(payload)} bytes; no text could be read from it",
        )
    metadata = part.metadata() | {
        "url": url,
        "warc_record_id": record_id,
        "warc_file": warc_file,
        "warc_offset": warc_offset,
        "content_type": "application/pdf",
        "truncated": truncated,
    }
    metadata.pop("pdf_path")
    metadata = {key: value for key, value in metadata.items() if value is not None} | (default_metadata or {})
    return Document(text=part.text, id=record_id, metadata=metadata)


class PdfSource(BaseReader):
    """Reads PDF files (local paths or fsspec URLs); rank r of n reads every n-th path.

    One document per file, or one per page with ``per_page``. ``ocr`` configures OCR
    of scanned pages; the engine starts in :meth:`run`, so the step pickles cleanly.
    A path that cannot be opened at all (a missing file) raises: that is a wrong
    configuration, not broken input.
    """

    name = "📄 pdf"

    def __init__(
        self,
        paths: list[str],
        per_page: bool = False,
        ocr: OcrConfig | None = None,
        domain: str = "papers",
        default_metadata: dict | None = None,
    ):
        super().__init__(default_metadata=default_metadata)
        self.paths = list(paths)
        self.per_page = per_page
        self.ocr = ocr
        self.domain = domain

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        with open_ocr(self.ocr) or nullcontext() as engine:
            for path in self.paths[rank::world_size]:
                self.stat_update("input_files")
                yield from self.read_file(path, engine)

    def read_file(self, path: str, engine: PageOcr | None) -> DocumentsPipeline:
        with fsspec.open(path, "rb") as file:
            data = file.read()
        with self.track_time():
            parts = extract_pdf(data, path, per_page=self.per_page, ocr=engine)
        extra = {"domain": self.domain} | (self.default_metadata or {})
        for part in parts:
            self.stat_update(part.error_reason or "documents")
            self.stat_update("ocr_pages", value=len(part.ocr_pages))
            yield Document(text=part.text, id=part.id, metadata=part.metadata() | extra)
