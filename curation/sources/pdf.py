"""PDF files as a document source: text in reading order, OCR for scanned pages.

Text comes from pymupdf's text layer -- MuPDF's structured text, read in one call as
XML without its characters: each block (the lines MuPDF sets together) and each line
with its box, direction and text -- and is put back together the way a reader would
read it. Blocks are laid out whole, except where their lines must be placed one by one:
a block that reaches into a margin zone, where its lines may be running ones, or one as
wide as the text, whose lines may be narrow ones in two columns, is cut along its lines'
boxes. So:

* **Columns.** A page whose lines are mostly narrow, with a vertical gap (the gutter)
  near the middle that (almost) no narrow line crosses and at least three lines on
  each side, is read column by column; each side is searched for gutters the same way,
  so three or more columns are read left to right too. Lines that cross the gutter (titles, centred
  author lines, abstracts, full-width figures) split the page into bands;
  each band is read left column first, then right (and on). Other pages are read block by
  block, blocks sorted top to bottom, then left to right.
* **Running headers and footers.** Lines in the top or bottom tenth of a page whose
  text, with digits masked where it has letters (``Page 3 of 9`` = ``Page 4 of 9``),
  recurs in the same zone at the same height on at least half of the pages (and on two
  at least) are removed, as are page numbers there (``12``, ``- 12 -``, ``Page 12``,
  ``xii``) that follow the page sequence -- but only a line alone in its band, beside a
  page number at most: table rows and form labels recur too, and stay. What was removed
  is counted in ``running_lines_removed``, with a sample in ``running_lines_sample``.
* **A page that fails** (unreadable, OCR error) is left out of its document and named in
  ``failed_pages`` and ``page_errors``; the document is a drop only when no page gives text.
* **A garbled text layer** (:func:`garbled_text_layer`: unmapped glyphs, or letters shifted
  by a broken font mapping) is OCR'd when OCR is configured, else kept and flagged; either
  way the page is in ``garbled_pages``.
* **OCR output that is noise** (:func:`ocr_noise`: letters mostly in runs no word is as
  long as, what an engine "reads" in specks) leaves its page out, as ``ocr_noise``.
* **Reflow and de-hyphenation.** The lines of a block are joined with spaces; blocks
  become paragraphs separated by a blank line. A line ending in ``letters-`` continues
  its word on the next line, across columns and pages too. The hyphen is dropped
  (``exam-`` + ``ple`` -> ``example``) unless the next line starts with something
  other than a lower-case letter (``Jean-`` + ``Paul`` -> ``Jean-Paul``) or the
  word is a compound: the document itself writes it hyphenated elsewhere and never
  joined (``well-known``), or, where the document writes neither, English writes it
  hyphenated by wordfreq's word frequencies (``three-dimensional``, ``in-memory``).
* Text that is not horizontal in the page's main direction (the rotated arXiv stamp
  in a margin, axis labels) is left out.

Pages with (almost) no text layer but an image are OCR'd when OCR is configured
(:mod:`curation.sources.ocr`).

Broken input never raises out of the reader: it becomes a document marked with its drop
(curation.drops: ``pdf/empty``, ``pdf/corrupt``, ``pdf/truncated``, ``pdf/encrypted``,
``pdf/no_text``, ``pdf/ocr_failed``) and a detail naming the file and,
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
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from itertools import groupby

import pymupdf
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.readers.base import BaseReader
from wordfreq import word_frequency

from curation.drops import DROP_MARK, Drop
from curation.sources.names import source_names
from curation.storage import open_binary
from curation.sources.ocr import OcrConfig, OcrFailed, OcrLine, OcrResult, PageOcr, open_ocr
from curation.text_kind import CODE_LINES, code_line_fraction

TEXT_FLAGS = pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_LIGATURES  # "ﬁ" -> "fi"
MARKER_WINDOW = 1024  # the PDF spec's allowance for where %PDF- and %%EOF may sit
TRAILING_PADDING = b"\x00 \t\r\n\x0c"  # what writers and transfers append after %%EOF (NUL blocks, blank lines)
HEADER_ZONE = 0.1  # top and bottom share of the page height searched for running lines
RUNNING_TOLERANCE = 0.01  # how far (share of the page height) a running line may move from page to page
RUNNING_SAMPLE = 3  # removed running lines named in a document's metadata
GARBLED_UNMAPPED = 0.05  # share of unmapped glyphs above which a text layer is garbled
GARBLED_VOWELLESS = 0.25  # share of Latin-script words without a vowel above which it is
GARBLED_MIN_WORDS = 30  # words a page needs before the vowel test says anything
GARBLED_SAMPLE_CHARS = 2000  # about 300 words: enough for the vowel test
OCR_WORD = re.compile(r"[^\W\d_]+")  # runs of letters, any script
OCR_LONGEST_WORD = 15  # letters: a longer run in OCR output is rarely a word
OCR_NOISE_SHARE = 0.3  # share of an OCR page's letters in such runs above which it is noise
OCR_NOISE_MIN_WORDS = 30  # words an OCR page needs before the test says anything
UNMAPPED = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f]")  # U+FFFD, control characters but tab and line ends
LATIN = "A-Za-zÀ-ÿ"
LATIN_WORD = re.compile(rf"[{LATIN}]{{2,}}")
VOWELS = frozenset("aeiouyàâäéèêëîïôöùûüÿáíóúAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜŸÁÍÓÚ")
LATIN_CONSONANTS = "".join(sorted({chr(code) for code in (*range(65, 91), *range(97, 123), *range(0xC0, 0x100))} - VOWELS))
VOWELLESS_WORD = re.compile(rf"(?<![{LATIN}])[{re.escape(LATIN_CONSONANTS)}]{{2,}}(?![{LATIN}])")  # a LATIN_WORD without a vowel
SPANNING_WIDTH = 0.6  # a line wider than this share of the text width spans columns
MIN_GUTTER_PT = 8  # narrowest gap between columns, in points
MIN_COLUMN_LINES = 3  # lines each side of a gutter needs to count as a column

XML_BUFFER_BYTES = 64 * 1024  # room for a dense page's XML (without characters); it grows if need be
XML_ITEM = re.compile(r'<block bbox="([^"]*)"|<line bbox="([^"]*)"[^>]*? dir="([^"]*)"[^>]*? text="([^"]*)"')  # a block, or a line of it
XML_ENTITY = re.compile(r"&(?:#x([0-9a-fA-F]+)|(quot|apos|amp|lt|gt));")
XML_NAMED = {"quot": '"', "apos": "'", "amp": "&", "lt": "<", "gt": ">"}

LETTERS = r"[^\W\d_]+"
LETTER = re.compile(r"[^\W\d_]")
WORD = re.compile(LETTERS)
HYPHENS = ("-", "\u00ad", "\u2010")
HYPHENATED_END = re.compile(rf"((?:{LETTERS}-)*{LETTERS})[-\u00ad\u2010]$")  # the word (or compound) before
COMPOUND = re.compile(rf"{LETTERS}(?:-{LETTERS})+")
PAGE_NUMBER = re.compile(  # 12, - 12 -, (12), [xii], Page 12, 12 of 30, 12/30
    r"(?:page\s+)?[-–—(\[]?\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,4})?", re.IGNORECASE
)
# Measured by bench.hyphens: of 2,495 compounds in Python's documentation 0.912 keep their hyphen; of 33,247 English
# words of 7+ letters split at a random point 0.0067 keep one wrongly ("take-away").
JOINED_MARGIN = 100
WORD_FREQUENCY_LANGUAGE = "en"
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
DIGITS = re.compile(r"\d+")


class PdfProblem(Exception):
    """A whole file that cannot be read; ``reason`` becomes the document's drop, ``pdf/<reason>``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Block:
    """Lines that MuPDF set together (a paragraph, a heading), with the box around them.

    A block whose lines must be placed one by one (module doc) is split into smaller
    blocks that keep its ``number``.
    """

    lines: list[str]
    x0: float
    y0: float
    x1: float
    y1: float
    number: int  # MuPDF's block number on the page


@dataclass
class Page:
    """One page's text: positional ``blocks``, or ``plain`` text from a VLM, or an ``error``."""

    number: int  # 1-based
    width: float
    height: float
    blocks: list[Block] = field(default_factory=list)
    plain: str | None = None
    ocr: bool = False
    error: tuple[str, str] | None = None
    running: list[str] = field(default_factory=list)  # running lines removed from its margins
    garbled: str | None = None  # why its text layer does not read as text (garbled_text_layer)
    ocr_dpi: int | None = None  # the dpi its image was OCR'd at, where the pixel cap (ocr.max_pixels) lowered it
    ocr_skew: float = 0.0  # degrees its image was turned back by before OCR
    ocr_confidence: float | None = None  # tesseract's mean word confidence on the page


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
    failed_pages: tuple[int, ...] = ()  # pages left out of a kept document, each named in page_errors
    page_errors: str | None = None
    running_lines: tuple[str, ...] = ()  # running headers, footers and page numbers removed
    garbled_pages: tuple[int, ...] = ()  # pages whose text layer was garbled: OCR'd when ocr_pages has them
    ocr_downscaled_pages: tuple[int, ...] = ()  # pages OCR'd below ocr.dpi, to stay within ocr.max_pixels
    ocr_confidence: float | None = None  # the lowest mean word confidence of its tesseract pages
    ocr_deskewed: str | None = None  # the pages turned straight before OCR, with their skew ("3: 2.0°")
    per_page: bool = False
    error_reason: str | None = None
    error_detail: str | None = None

    def document_id(self, name: str) -> str:
        """The id of this text's document, for a file whose stable name is ``name``."""
        return f"{name}#page={self.page_start}" if self.per_page else name

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
            "failed_pages": list(self.failed_pages) or None,
            "page_errors": self.page_errors,
            "running_lines_removed": len(self.running_lines) if self.page_start is not None else None,
            "garbled_pages": list(self.garbled_pages) or None,
            "ocr_downscaled_pages": list(self.ocr_downscaled_pages) or None,
            "ocr_confidence": self.ocr_confidence,
            "ocr_deskewed": self.ocr_deskewed,
            "running_lines_sample": " | ".join(list(dict.fromkeys(self.running_lines))[:RUNNING_SAMPLE]) or None,
            "title": self.title,
            "author": self.author,
            DROP_MARK: Drop("pdf", self.error_reason, self.error_detail) if self.error_reason else None,
        }
        return {key: value for key, value in meta.items() if value is not None}


# --- opening -------------------------------------------------------------------------


def open_pdf(data: bytes, name: str, cut_by_crawler: bool) -> pymupdf.Document:
    """The parsed document, or :class:`PdfProblem` saying why the file cannot be read."""
    if not data:
        raise PdfProblem("empty", f"{name}: zero-byte file")
    if b"%PDF-" not in data[:MARKER_WINDOW]:
        raise PdfProblem("corrupt", f"{name}: not a PDF (no %PDF- header in its first {MARKER_WINDOW} bytes)")
    cut = b"%%EOF" not in data.rstrip(TRAILING_PADDING)[-MARKER_WINDOW:]
    cut_detail = f"{name}: file is cut short at {len(data)} bytes (no %%EOF marker at its end)"
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as err:  # MuPDF raises a family of errors (FileDataError, FzErrorFormat, ...)
        if cut:
            raise PdfProblem("truncated", f"{cut_detail} and cannot be opened: {err}") from None
        raise PdfProblem("corrupt", f"{name}: cannot be opened: {type(err).__name__}: {err}") from None
    if doc.needs_pass:
        raise PdfProblem("encrypted", f"{name}: encrypted, needs a password to open")
    if doc.page_count == 0:
        raise PdfProblem("truncated" if cut else "corrupt", f"{name}: no readable pages")
    if cut and not cut_by_crawler:
        raise PdfProblem("truncated", f"{cut_detail}; a partial download?")
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


def info_field(metadata: dict, key: str) -> str | None:
    value = " ".join((metadata.get(key) or "").split())
    return value or None


def document_info(doc: pymupdf.Document) -> dict:
    """``page_count``, ``title`` and ``author`` (``doc.metadata`` is rebuilt on every access: read once)."""
    metadata = doc.metadata or {}
    title, author = info_field(metadata, "title"), info_field(metadata, "author")
    return {"page_count": doc.page_count, "title": title, "author": author}


# --- blocks of a page ------------------------------------------------------------------

Box = tuple[float, float, float, float]
Direction = tuple[float, float]


def reading_frame(box: Box, direction: Direction | None, width: float, height: float) -> Box:
    """``box``, from the page's unrotated coordinates (``get_textpage`` reads a page with its
    ``/Rotate`` taken off), into the frame where text of ``direction`` reads left to right
    and its lines run top to bottom: a page whose text runs up or down (rotated for display,
    a landscape table) has its margins, columns and reading order along its text."""
    x0, y0, x1, y1 = box
    if direction == (0.0, -1.0):  # text reads upwards, lines stack rightwards
        return height - y1, x0, height - y0, x1
    if direction == (0.0, 1.0):  # text reads downwards, lines stack leftwards
        return y0, width - x1, y1, width - x0
    if direction == (-1.0, 0.0):  # upside down
        return width - x1, height - y1, width - x0, height - y0
    return box


UPRIGHT = (None, (1.0, 0.0))  # directions whose reading frame is the page's own


def frame_size(direction: Direction | None, width: float, height: float) -> tuple[float, float]:
    """The page's width and height in the :func:`reading_frame` of ``direction``."""
    return (height, width) if direction in ((0.0, -1.0), (0.0, 1.0)) else (width, height)


def stext_xml(textpage: pymupdf.TextPage) -> str:
    """MuPDF's XML for ``textpage`` without its characters: each block and line with its
    box, each line with its direction and text. One call into MuPDF, and cheaper than any
    of pymupdf's ``extract*`` methods that give positions."""
    buffer = pymupdf.mupdf.fz_new_buffer(XML_BUFFER_BYTES)
    output = pymupdf.mupdf.FzOutput(buffer)
    pymupdf.mupdf.fz_print_stext_page_as_xml_with_flags(output, textpage.this, 0, 0)
    output.fz_close_output()
    return buffer.fz_buffer_extract().decode("utf-8")


def xml_text(text: str) -> str:
    """An attribute value from :func:`stext_xml`, unescaped (MuPDF writes all but printable ASCII as ``&#x..;``)."""
    return XML_ENTITY.sub(xml_entity, text)


def xml_entity(match: re.Match) -> str:
    """A character that no text can hold (a lone surrogate half, past U+10FFFF) becomes U+FFFD."""
    if match[2]:
        return XML_NAMED[match[2]]
    code = int(match[1], 16)
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


@lru_cache(maxsize=1024)
def direction_of(text: str) -> Direction:
    """A line's writing direction from its ``dir`` attribute, rounded to tell directions apart."""
    x, y = map(float, text.split())
    return round(x, 1), round(y, 1)


def box_of(text: str) -> Box:
    x0, y0, x1, y1 = map(float, text.split())
    return x0, y0, x1, y1


def text_blocks(textpage: pymupdf.TextPage) -> list[tuple[Direction, Block, list[str]]]:
    """Each text block with some text: its direction (MuPDF starts a new block where the
    direction changes), the :class:`Block` in unrotated page coordinates, and the box of
    each of its lines as the XML writes it (read only for the blocks cut along them)."""
    found = []
    number, block_box, direction, texts, boxes = -1, "", "", [], []
    for block, box, line_direction, text in XML_ITEM.findall(stext_xml(textpage)):
        if block:
            if texts:
                found.append((direction_of(direction), Block(texts, *box_of(block_box), number), boxes))
            number, block_box, direction, texts, boxes = number + 1, block, "", [], []
            continue
        direction = direction or line_direction
        if text := line_text(text):
            texts.append(text)
            boxes.append(box)
    if texts:
        found.append((direction_of(direction), Block(texts, *box_of(block_box), number), boxes))
    return found


def line_text(written: str) -> str:
    """A line's text from the XML, unescaped, its white space runs made single spaces."""
    if "&" in written:
        written = xml_text(written)
    elif "  " not in written and written[:1] != " " and written[-1:] != " ":
        return written
    return " ".join(written.split())


def main_direction(found: list[tuple[Direction, Block, list[str]]]) -> Direction | None:
    weights = Counter()
    for direction, block, _ in found:
        weights[direction] += sum(map(len, block.lines))
    return weights.most_common(1)[0][0] if weights else None


def clear_of_margins(block: Block, height: float) -> bool:
    return block.y0 > height * HEADER_ZONE and block.y1 < height * (1 - HEADER_ZONE)


def text_width(blocks: list[Block]) -> float:
    return max(block.x1 for block in blocks) - min(block.x0 for block in blocks) if blocks else 0.0


def is_wide(block: Block, body_width: float) -> bool:
    """Whether ``block`` may span columns. ``body_width`` is the width of the text clear of
    the margins, which no running line removed later can narrow: a block narrower than
    :data:`SPANNING_WIDTH` of it is narrow on the page as laid out, and so is each of its lines."""
    return block.x1 - block.x0 >= SPANNING_WIDTH * body_width


def needs_own_lines(block: Block, height: float, body_width: float) -> bool:
    """Whether a block's lines must be placed one by one: they may sit in a margin zone
    (and be running lines), or be narrow ones in a wide block (and fall in different columns)."""
    return len(block.lines) > 1 and (not clear_of_margins(block, height) or is_wide(block, body_width))


def block_of(lines: list[tuple[str, Box]], number: int) -> Block:
    """A block for ``(text, box)`` lines of block ``number``, in the box around them."""
    texts, boxes = zip(*lines)
    x0s, y0s, x1s, y1s = zip(*boxes)
    return Block(list(texts), min(x0s), min(y0s), max(x1s), max(y1s), number)


def split_lines(block: Block, boxes: list[Box], height: float, wide: bool) -> list[Block]:
    """``block`` cut along its line ``boxes``: every line on its own in a ``wide`` block,
    else each line in a margin zone on its own and each run of the others together."""
    boxed = list(zip(block.lines, boxes))
    if wide:
        return [Block([text], *box, block.number) for text, box in boxed]
    placed = []
    for in_margin, run in groupby(boxed, key=lambda line: margin_zone(line[1][1], line[1][3], height) is not None):
        if in_margin:
            placed += [Block([text], *box, block.number) for text, box in run]
        else:
            placed.append(block_of(list(run), block.number))
    return placed


def page_blocks(textpage: pymupdf.TextPage) -> tuple[list[Block], float, float]:
    """The page's text blocks in its main text direction, in that direction's
    :func:`reading_frame`, with the frame's width and height (:func:`laid_out`)."""
    found = text_blocks(textpage)
    main = main_direction(found)
    page_width, page_height = textpage.rect.width, textpage.rect.height

    def framed(box: Box) -> Box:
        return reading_frame(box, main, page_width, page_height)

    def line_boxes(written: list[str]) -> list[Box]:
        return [box_of(box) for box in written] if main in UPRIGHT else [framed(box_of(box)) for box in written]

    kept = [(block, boxes) for direction, block, boxes in found if direction == main]
    if main not in UPRIGHT:
        kept = [(Block(block.lines, *framed((block.x0, block.y0, block.x1, block.y1)), block.number), boxes) for block, boxes in kept]
    return laid_out(kept, *frame_size(main, page_width, page_height), line_boxes)


def laid_out(found: list[tuple[Block, list]], width: float, height: float, line_boxes=list) -> tuple[list[Block], float, float]:
    """Blocks with the boxes of their lines (read by ``line_boxes`` only for a block cut along
    them), those whose lines must be placed one by one (:func:`needs_own_lines`) split up;
    with the page's ``width`` and ``height``."""
    body_width = text_width([block for block, _ in found if clear_of_margins(block, height)])
    placed = []
    for block, boxes in found:
        if needs_own_lines(block, height, body_width):
            placed += split_lines(block, line_boxes(boxes), height, is_wide(block, body_width))
        else:
            placed.append(block)
    return placed, width, height


def ocr_blocks(lines: tuple[OcrLine, ...], width: float, height: float) -> tuple[list[Block], float, float]:
    """Tesseract's lines as blocks, one per paragraph it found, laid out like a text layer's."""
    found = []
    for number, paragraph in groupby(lines, key=lambda line: line.paragraph):
        paragraph = list(paragraph)
        found.append((block_of([(line.text, line.box) for line in paragraph], number), [line.box for line in paragraph]))
    return laid_out(found, width, height)


def text_chars(blocks: list[Block]) -> int:
    return sum(len(line) - line.count(" ") for block in blocks for line in block.lines)


def garbled_text_layer(blocks: list[Block]) -> str | None:
    """Why a page's text layer does not read as text, or None.

    A font without a usable Unicode mapping gives U+FFFD, control characters (glyph ids
    read as characters: "1RUPDO\\x03ZRUGV"), or letters shifted along the alphabet ("sgd
    Rbhdmbd"). The last shows in Latin-script words without a vowel: on 300 pages of the
    demo corpus' prose, code and papers at most 0.33 of the words (a code page, which this
    test leaves alone; prose 0.05 at the 95th percentile), on the same pages shifted by 1 to
    3 letters or read as glyph ids 0.28 to 0.71 at the median.
    """
    text = "\n".join(line for block in blocks for line in block.lines)
    chars = len(text) - text.count(" ") - text.count("\n")
    if chars == 0:
        return None
    unmapped = len(UNMAPPED.findall(text))
    if unmapped / chars > GARBLED_UNMAPPED:
        return f"{unmapped / chars:.0%} of its characters are unmapped glyphs (U+FFFD or control characters)"
    sample = text[:GARBLED_SAMPLE_CHARS]  # the vowel test reads the start of a long page
    words = len(LATIN_WORD.findall(sample))
    if words < GARBLED_MIN_WORDS:
        return None
    share = len(VOWELLESS_WORD.findall(sample)) / words
    if share > GARBLED_VOWELLESS and code_line_fraction(text) < CODE_LINES:  # identifiers lack vowels too
        return f"{share:.0%} of its {words} words have no vowel (a shifted font mapping)"
    return None


def ocr_noise(text: str) -> str | None:
    """Why OCR output is noise rather than text, or None. On an image of specks, tesseract
    "reads" runs of letters ("eeeeeeeoeeesFree", "eyaeore=eeaooecasme"); words of real text
    are rarely longer than 15 letters, so a page whose letters sit mostly in such runs is noise."""
    words = OCR_WORD.findall(text)
    letters = sum(map(len, words))
    if len(words) < OCR_NOISE_MIN_WORDS or letters == 0:
        return None
    share = sum(len(word) for word in words if len(word) > OCR_LONGEST_WORD) / letters
    if share > OCR_NOISE_SHARE:
        return f"looks like noise: {share:.0%} of its letters are in runs longer than {OCR_LONGEST_WORD}"
    return None


def read_page(doc: pymupdf.Document, index: int, name: str, ocr: PageOcr | None) -> Page:
    """One page's text layer, replaced by OCR where the page looks scanned or its text layer
    is garbled (:func:`garbled_text_layer`); a garbled page without OCR is kept and flagged."""
    number = index + 1
    where = f"{name}: page {number}"
    try:
        page = doc[index]
        blocks, width, height = page_blocks(page.get_textpage(flags=TEXT_FLAGS))
        garbled = garbled_text_layer(blocks)
        if ocr is None or not (garbled or ocr.wants(page, text_chars(blocks))):
            return Page(number, width, height, blocks, garbled=garbled)
    except Exception as err:  # a broken content stream or resource: this page only
        return Page(number, 0, 0, error=("corrupt", f"{where}: unreadable: {type(err).__name__}: {err}"))
    try:
        result = ocr.read(page, where)
    except OcrFailed as err:
        return Page(number, width, height, blocks, error=("ocr_failed", f"{where}: {err}"))
    except Exception as err:  # MuPDF could not render the page for OCR
        detail = f"{where}: cannot be rendered: {type(err).__name__}: {err}"
        return Page(number, width, height, blocks, error=("corrupt", detail))
    read = replace(ocr_page(number, width, height, result), garbled=garbled)
    rejected = ocr_rejection(result, read, ocr.config.min_confidence)
    return read if rejected is None else Page(number, width, height, error=(rejected[0], f"{where}: {rejected[1]}"))


def ocr_rejection(result: OcrResult, read: Page, min_confidence: float) -> tuple[str, str] | None:
    """Why a page's OCR output is not kept (``low_confidence``, ``ocr_noise``), or None."""
    if result.confidence is not None and result.confidence < min_confidence:
        return "low_confidence", f"OCR mean word confidence {result.confidence:.1f} is below ocr.min_confidence {min_confidence:g}"
    noise = ocr_noise("\n".join(page_texts(read)))
    return None if noise is None else ("ocr_noise", f"OCR output {noise}")


def ocr_page(number: int, width: float, height: float, result: OcrResult) -> Page:
    if result.lines is not None:
        blocks, width, height = ocr_blocks(result.lines, *result.size)
        return Page(number, width, height, blocks, ocr=True, ocr_dpi=result.dpi, ocr_skew=result.skew,
                    ocr_confidence=result.confidence)
    return Page(number, width, height, plain=result.text, ocr=True, ocr_dpi=result.dpi)


# --- running headers and footers ------------------------------------------------------------


def margin_zone(y0: float, y1: float, height: float) -> str | None:
    """The margin zone (``top``, ``bottom``) of a line running from ``y0`` to ``y1`` down the page."""
    middle = (y0 + y1) / 2
    if middle <= height * HEADER_ZONE:
        return "top"
    if middle >= height * (1 - HEADER_ZONE):
        return "bottom"
    return None


def running_key(text: str) -> str:
    """What a running line keeps from page to page: its text, with digits masked when it has
    letters (``Page 3 of 9`` = ``Page 4 of 9``); a line of digits alone (a date, a count, a
    CAS number) must recur exactly."""
    lowered = text.lower().strip()
    return DIGITS.sub("#", lowered) if any(ch.isalpha() for ch in lowered) else lowered


def is_page_number(text: str) -> bool:
    return PAGE_NUMBER.fullmatch(text) is not None


def page_number_value(text: str) -> int | None:
    digits = DIGITS.search(text)
    return int(digits.group()) if digits and is_page_number(text) else None


@dataclass
class MarginLine:
    page: Page
    block: Block
    zone: str
    text: str

    def __post_init__(self):
        self.key = (self.zone, running_key(self.text))
        self.height = (self.block.y0 + self.block.y1) / 2 / self.page.height  # its middle, as a share of the page


def margin_lines(pages: list[Page]) -> list[MarginLine]:
    return [MarginLine(page, block, zone, line) for page in pages for block in page.blocks
            if (zone := margin_zone(block.y0, block.y1, page.height)) for line in block.lines]


def bands(lines: list[MarginLine]) -> dict[int, list[MarginLine]]:
    """Each margin line's band: the lines of its page whose boxes overlap it vertically."""
    by_page: dict[int, list[MarginLine]] = defaultdict(list)
    for line in lines:
        by_page[id(line.page)].append(line)
    return {id(line): [other for other in by_page[id(line.page)]
                       if other.block.y0 < line.block.y1 and line.block.y0 < other.block.y1] for line in lines}


def running_lines(pages: list[Page]) -> list[MarginLine]:
    """The margin lines that are running headers, footers or page numbers.

    A running line recurs (:func:`running_key`) in the same zone, at the same height (within
    ``RUNNING_TOLERANCE`` of the page), on at least half of the pages and two at least. A
    bare page number counts only where it follows the page sequence (its value minus the
    page's number is the same on most pages that have one; roman numerals: front matter).
    Either counts only alone in its band (the lines beside it, vertically overlapping), beside
    a page number at most: two text lines side by side are a table row or a form's labels,
    whose cells recur too.
    """
    laid_out = [page for page in pages if page.blocks]
    lines = margin_lines(laid_out)
    threshold = max(2, len(laid_out) // 2)
    heights: dict[tuple[str, str], list[float]] = defaultdict(list)
    for line in lines:
        heights[line.key].append(line.height)
    offsets = Counter(value - line.page.number for line in lines if (value := page_number_value(line.text)) is not None)
    offset = offsets.most_common(1)[0][0] if offsets else None

    def recurs(line: MarginLine) -> bool:
        return sum(abs(height - line.height) <= RUNNING_TOLERANCE for height in heights[line.key]) >= threshold

    def numbers_the_page(line: MarginLine) -> bool:
        value = page_number_value(line.text)
        if value is None:
            return is_page_number(line.text)  # roman numerals
        return value - line.page.number == offset and (offsets[offset] >= 2 or len(laid_out) == 1)

    numbers = {id(line) for line in lines if numbers_the_page(line)}
    candidates = numbers | {id(line) for line in lines if recurs(line)}

    def alone(line: MarginLine) -> bool:
        band = band_of[id(line)]
        texts = [other for other in band if id(other) not in numbers]
        return all(id(other) in candidates for other in band) and len(texts) <= 1

    band_of = bands(lines)
    return [line for line in lines if id(line) in candidates and alone(line)]


def remove_running_lines(pages: list[Page]) -> None:
    """Drop running headers/footers and page numbers from the margin zones (module doc and
    :func:`running_lines`); each page keeps what was removed in ``running``.

    A line in a margin zone is a block of its own (:func:`needs_own_lines`).
    """
    dropped: dict[int, set[str]] = defaultdict(set)  # block id -> its running lines
    for line in running_lines(pages):
        line.page.running.append(line.text)
        dropped[id(line.block)].add(line.text)
    for page in pages:
        kept = []
        for block in page.blocks:
            lines = [text for text in block.lines if text not in dropped[id(block)]] if id(block) in dropped else block.lines
            if len(lines) == len(block.lines):
                kept.append(block)
            elif lines:
                kept.append(replace(block, lines=lines))
        page.blocks = kept


# --- reading order --------------------------------------------------------------------


def line_count(blocks: Iterable[Block]) -> int:
    return sum(len(block.lines) for block in blocks)


def crossing_changes(blocks: list[Block]) -> dict[int, int]:
    """Where the number of lines running across integer x changes, and by how much; a
    block's lines run across ``floor(x0) + 1 .. ceil(x1) - 1``."""
    changes = defaultdict(int)
    for block in blocks:
        low, high = math.floor(block.x0) + 1, math.ceil(block.x1) - 1
        if low <= high:
            changes[low] += len(block.lines)
            changes[high + 1] -= len(block.lines)
    return changes


def crossing_stretches(changes: dict[int, int], first: int, last: int) -> Iterator[tuple[int, int, int]]:
    """``(start, end, lines)`` for the stretches of ``first..last`` that the same number of lines cross."""
    crossing = sum(change for x, change in changes.items() if x <= first)
    start = first
    for cut in sorted(x for x in changes if first < x <= last):
        yield start, cut - 1, crossing
        crossing += changes[cut]
        start = cut
    yield start, last, crossing


def widest_gap(blocks: list[Block], first: int, last: int, tolerance: int) -> tuple[int, int] | None:
    """The longest stretch of integer x in ``first..last`` (the leftmost of equals) that at
    most ``tolerance`` lines cross, as (first, last)."""
    if first > last:
        return None
    best, start = None, None
    for low, high, crossing in crossing_stretches(crossing_changes(blocks), first, last):
        if crossing > tolerance:
            start = None
            continue
        start = low if start is None else start
        if best is None or high - start > best[1] - best[0]:
            best = (start, high)
    return best


def column_gutter(blocks: list[Block]) -> float | None:
    """The x of the gap between two columns, or None for a single-column page (module doc).

    A few narrow lines may cross the gap (a centred author line or heading): up to a
    tenth of them; they are read as spanning lines.
    """
    total = line_count(blocks)
    if total < 2 * MIN_COLUMN_LINES:
        return None
    left, right = min(block.x0 for block in blocks), max(block.x1 for block in blocks)
    narrow = [block for block in blocks if block.x1 - block.x0 < SPANNING_WIDTH * (right - left)]
    narrow_lines = line_count(narrow)
    if narrow_lines * 2 < total:
        return None
    first, last = max(0, int(left + (right - left) / 4)), int(right - (right - left) / 4)
    run = widest_gap(narrow, first, last, narrow_lines // 10)
    if run is None or run[1] - run[0] + 1 < MIN_GUTTER_PT:
        return None
    gutter = (run[0] + run[1]) / 2
    left_lines = line_count(block for block in narrow if block.x1 <= gutter)
    right_lines = line_count(block for block in narrow if block.x0 >= gutter)
    return gutter if min(left_lines, right_lines) >= MIN_COLUMN_LINES else None


def column_gutters(blocks: list[Block]) -> list[float]:
    """The gutters of a page of any number of columns, left to right: the page's gutter, then
    those each side holds (a side that is itself two or more columns)."""
    gutter = column_gutter(blocks)
    if gutter is None:
        return []
    left = [block for block in blocks if block.x1 <= gutter]
    right = [block for block in blocks if block.x0 >= gutter]
    return [*column_gutters(left), gutter, *column_gutters(right)]


def column_of(block: Block, gutters: list[float]) -> int | None:
    """The block's column, counted from the left, or None where it crosses a gutter."""
    for column, gutter in enumerate(gutters):
        if block.x1 <= gutter:
            return column
        if block.x0 < gutter:
            return None
    return len(gutters)


def group_blocks(blocks: list[Block], key) -> list[tuple[object, list[Block]]]:
    """Blocks grouped by ``key`` (keeping MuPDF's order inside a group), groups in first-seen order."""
    groups: dict = {}
    for block in blocks:
        groups.setdefault(key(block), []).append(block)
    return list(groups.items())


def top_left(blocks: list[Block]) -> tuple[float, float]:
    return min(block.y0 for block in blocks), min(block.x0 for block in blocks)


def lines_of(blocks: list[Block]) -> list[str]:
    return [line for block in blocks for line in block.lines]


def reading_order(page: Page) -> list[list[str]]:
    """The page's paragraphs (one per block, or block part in one column) as their lines, in reading order."""
    gutters = column_gutters(page.blocks)
    if not gutters:
        groups = [members for _, members in group_blocks(page.blocks, lambda block: block.number)]
        return [lines_of(members) for members in sorted(groups, key=top_left)]
    parts = group_blocks(page.blocks, lambda block: (block.number, column_of(block, gutters)))
    parts.sort(key=lambda part: top_left(part[1]))
    ordered: list[list[str]] = []
    band: list[list[list[str]]] = [[] for _ in range(len(gutters) + 1)]  # the paragraphs of each column
    for (_, column), members in parts:
        if column is None:  # a line across the columns ends the band above it
            ordered += [paragraph for paragraphs in band for paragraph in paragraphs]
            band = [[] for _ in range(len(gutters) + 1)]
            ordered.append(lines_of(members))
        else:
            band[column].append(lines_of(members))
    return ordered + [paragraph for paragraphs in band for paragraph in paragraphs]


# --- text -----------------------------------------------------------------------------


def is_letter(text: str, at: int) -> bool:
    return 0 <= at < len(text) and LETTER.match(text, at) is not None


def occurrences(text: str, needle: str) -> Iterator[int]:
    at = text.find(needle)
    while at != -1:
        yield at
        at = text.find(needle, at + 1)


class Lexicon:
    """The document's own vocabulary, to tell a line-end hyphen from a real one, read from
    its ``texts`` only when a hyphenated line end first asks."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = list(texts)

    @cached_property
    def compounds(self) -> frozenset[str]:
        """Letters joined by hyphens. A compound holds no white space and a hyphen before its
        last letter: only such words are searched."""
        texts = (text.lower() for text in self.texts if "-" in text[:-1])
        words = (word for text in texts for word in text.split() if "-" in word[:-1])
        return frozenset(compound for word in words for compound in COMPOUND.findall(word))

    @cached_property
    def text(self) -> str:
        """All the text, lower-cased, searched for a word only when a compound asks (listing
        every word would cost more than all the asking)."""
        return "\n".join(self.texts).lower()

    def has_word(self, word: str) -> bool:
        """Whether ``word`` is a whole run of letters somewhere in the text."""
        text, end = self.text, len(word)
        return WORD.fullmatch(word) is not None and any(
            not is_letter(text, at - 1) and not is_letter(text, at + end) for at in occurrences(text, word)
        )

    def keeps_hyphen(self, head: str, tail: str) -> bool:
        """Whether ``head-`` + ``tail`` at a line end is a compound: the document writes it so
        and never joined; else, where the document writes neither, :func:`commonly_hyphenated`.
        ``head`` may be a compound itself: ``state-of-the`` + ``art``."""
        joined, compound = (head + tail).lower(), f"{head}-{tail}".lower()
        if compound in self.compounds or commonly_hyphenated(head.rpartition("-")[2].lower(), tail.lower()):
            return not self.has_word(joined.rpartition("-")[2])
        return False


@lru_cache(maxsize=65536)
def commonly_hyphenated(head: str, tail: str) -> bool:
    """Whether English writes ``head-tail`` rather than ``headtail``, by wordfreq's word
    frequencies: the joined word must be :data:`JOINED_MARGIN` times as frequent as the
    hyphenated form, which wordfreq estimates from its parts and so overstates ("trans-former"
    comes out 10 times as frequent as "transformer")."""
    return word_frequency(head + tail, WORD_FREQUENCY_LANGUAGE) * JOINED_MARGIN < word_frequency(f"{head}-{tail}", WORD_FREQUENCY_LANGUAGE)


def hyphenated_word(text: str) -> str | None:
    """The word (or compound) that ``text`` leaves hyphenated at its end, if any."""
    if not text.endswith(HYPHENS):
        return None
    match = HYPHENATED_END.search(text.rsplit(None, 1)[-1])  # a word holds no white space
    return match.group(1) if match else None


def continue_hyphenated(text: str, head: str, line: str, lexicon: Lexicon) -> str:
    """``text`` (ending ``head-``) continued by ``line``: hyphen dropped or kept (module doc)."""
    if line[0].islower() and (tail := WORD.match(line)) and not lexicon.keeps_hyphen(head, tail.group(0)):
        return text[:-1] + line
    return text[:-1] + "-" + line


def reflow(text: str, lines: list[str], lexicon: Lexicon) -> str:
    """``text`` continued by ``lines``, joined with spaces, words split at line ends rejoined."""
    parts = [text]
    for line in lines:
        last = parts[-1]  # ends as all the parts so far do
        if last.endswith(HYPHENS) and (head := hyphenated_word(last)):
            parts[-1] = continue_hyphenated(last, head, line, lexicon)
        else:
            parts.append(line)
    return " ".join(parts)


def join_paragraphs(paragraphs: Iterable[list[str]], lexicon: Lexicon) -> str:
    """Text from paragraphs given as their lines; a paragraph that ends mid-word (``exam-``)
    is continued by the next one, across columns and pages."""
    texts: list[str] = []
    for lines in paragraphs:
        if texts and hyphenated_word(texts[-1]):
            texts[-1] = reflow(texts[-1], lines, lexicon)
        else:
            texts.append(reflow(lines[0], lines[1:], lexicon))
    return "\n\n".join(texts)


def page_paragraphs(page: Page) -> list[list[str]]:
    if page.plain is not None:
        return [[paragraph.strip()] for paragraph in PARAGRAPH_BREAK.split(page.plain) if paragraph.strip()]
    return reading_order(page)


def page_texts(page: Page) -> list[str]:
    return [page.plain] if page.plain is not None else lines_of(page.blocks)


# --- documents ------------------------------------------------------------------------


def part_text(pages: list[Page], name: str, lexicon: Lexicon, ocr_configured: bool = False, **common) -> PdfText:
    """One :class:`PdfText` for consecutive ``pages``. A page that failed (unreadable, OCR
    error) is left out and named in ``failed_pages`` / ``page_errors``; the part is a drop only
    when no page gives text, with the first page error, or ``no_text`` saying why."""
    good = [page for page in pages if not page.error]
    failed = [page for page in pages if page.error]
    text = join_paragraphs((paragraph for page in good for paragraph in page_paragraphs(page)), lexicon)
    reason = detail = None
    if not text.strip() and failed:
        reason, detail = failed[0].error
        if len(failed) > 1:
            detail += f" (and {len(failed) - 1} more page(s) with errors)"
    elif not text.strip():
        where = f"page {pages[0].number}" if len(pages) == 1 else f"pages {pages[0].number}-{pages[-1].number}"
        reason, detail = "no_text", f"{name}: no text on {where} ({no_text_cause(good, ocr_configured)})"
    return PdfText(
        text=text,
        pdf_path=name,
        page_start=pages[0].number,
        page_end=pages[-1].number,
        ocr_pages=tuple(page.number for page in good if page.ocr),
        failed_pages=tuple(page.number for page in failed) if reason is None else (),
        running_lines=tuple(line for page in good for line in page.running),
        garbled_pages=tuple(page.number for page in pages if page.garbled),
        ocr_downscaled_pages=tuple(page.number for page in good if page.ocr_dpi),
        ocr_confidence=min((round(page.ocr_confidence, 1) for page in good if page.ocr_confidence is not None), default=None),
        ocr_deskewed=", ".join(f"{page.number}: {page.ocr_skew:g}°" for page in good if page.ocr_skew) or None,
        page_errors="; ".join(page.error[1] for page in failed) if reason is None and failed else None,
        error_reason=reason,
        error_detail=detail,
        **common,
    )


def no_text_cause(pages: list[Page], ocr_configured: bool) -> str:
    if any(page.ocr for page in pages):
        return "OCR read the page images and found no text"
    if ocr_configured:
        return "no text layer, and no page image for OCR to read"
    return "no text layer, and no OCR engine: scans need ocr.engine"


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
            common = document_info(doc)
            pages = [read_page(doc, index, name, ocr) for index in range(doc.page_count)]
    remove_running_lines(pages)
    lexicon = Lexicon(text for page in pages for text in page_texts(page))
    if per_page:
        return [part_text([page], name, lexicon, ocr is not None, per_page=True, **common) for page in pages]
    return [part_text(pages, name, lexicon, ocr is not None, **common)]


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
    it, and marked ``pdf/truncated`` when not.
    """
    name = f"{warc_file}: record {record_id} ({url})" if warc_file else f"{url} (record {record_id})"
    part = extract_pdf(payload, name, ocr=ocr, cut_by_crawler=truncated)[0]
    if truncated and part.error_reason == "no_text":
        part = PdfText(
            text="",
            pdf_path=name,
            page_count=part.page_count,
            error_reason="truncated",
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

    A document's id is the file's stable name (``#page=<n>`` added per page), not its
    path, so that it survives moving the corpus: ``names`` maps a path to its name
    (:mod:`curation.sources.names`); a path missing from it stands for itself, and
    with no ``names`` at all the files are named relative to the folder that holds
    them all. ``pdf_path`` and error details keep the real path.
    """

    name = "📄 pdf"

    def __init__(
        self,
        paths: list[str],
        per_page: bool = False,
        ocr: OcrConfig | None = None,
        domain: str | None = "papers",
        default_metadata: dict | None = None,
        names: Mapping[str, str] | None = None,
        storage: Mapping | None = None,
    ):
        super().__init__(default_metadata=default_metadata)
        self.paths = list(paths)
        self.names = source_names(self.paths, names)
        self.per_page = per_page
        self.ocr = ocr
        self.domain = domain
        self.storage = dict(storage or {})

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        with open_ocr(self.ocr) or nullcontext() as engine:
            for path in self.paths[rank::world_size]:
                self.stat_update("input_files")
                yield from self.read_file(path, engine)

    def read_file(self, path: str, engine: PageOcr | None) -> DocumentsPipeline:
        with open_binary(path, self.storage) as file:
            data = file.read()
        with self.track_time():
            parts = extract_pdf(data, path, per_page=self.per_page, ocr=engine)
        extra = {"domain": self.domain} | (self.default_metadata or {})
        for part in parts:
            self.stat_update(part.error_reason or "documents")
            self.stat_update("ocr_pages", value=len(part.ocr_pages))
            yield Document(text=part.text, id=part.document_id(self.names[path]), metadata=part.metadata() | extra)
