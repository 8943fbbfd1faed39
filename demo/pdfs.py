"""PDF files of the demo corpus: two-column papers with a text layer, image-only scans, a truncated file.

Text is typeset with pymupdf's base-14 fonts, so every extract drawn here is latin-1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pymupdf

from demo.sites import SITES
from demo.sources import ExtractPool, child_rng, scaled
from demo.vocabulary import FAMILY_NAMES, GIVEN_NAMES, PAPER_TITLES
from demo.web import WEB_COUNTS
from demo.words import slug

PDF_COUNTS = {"paper": 14, "scan": 5, "broken_pdf": 1}


@dataclass
class PdfDoc:
    doc_key: str  # file name, or URL for a PDF served in a WARC
    kind: str  # paper | scan | broken_pdf | web_pdf
    title: str
    text: str
    data: bytes
    needs_ocr: bool = False
    is_broken: bool = False


PAGE_W, PAGE_H = 595.0, 842.0
MARGIN_X, TOP, BOTTOM = 54.0, 72.0, 842.0 - 64.0
COLUMN_GAP = 18.0
COLUMN_W = (PAGE_W - 2 * MARGIN_X - COLUMN_GAP) / 2
SCAN_DPI = 200
SCAN_TEXT_BOX = pymupdf.Rect(72, 72, PAGE_W - 72, PAGE_H - 72)
PDF_DATE = datetime(2024, 1, 15, 9, 30, tzinfo=timezone.utc)
PDF_PRODUCER = "curate demo corpus"


@dataclass(frozen=True)
class TextStyle:
    font: str
    size: float
    leading: float


TITLE_STYLE = TextStyle("hebo", 16.0, 20.0)
HEADING_STYLE = TextStyle("hebo", 10.5, 15.0)
BODY_STYLE = TextStyle("helv", 9.5, 12.0)
SMALL_STYLE = TextStyle("helv", 8.0, 10.0)


@dataclass
class Paper:
    title: str
    authors: list[str]
    journal: str
    abstract: str
    sections: list[tuple[str, list[str]]]  # (heading, paragraphs)

    @property
    def text(self) -> str:
        parts = [self.title, self.abstract]
        for heading, paragraphs in self.sections:
            parts += [heading, *paragraphs]
        return "\n\n".join(parts)


_WIDTHS: dict[str, list[float]] = {}


def text_width(text: str, style: TextStyle) -> float:
    """Width in points of latin-1 text in a base-14 font (no kerning, as insert_text draws it)."""
    if style.font not in _WIDTHS:
        font = pymupdf.Font(style.font)
        _WIDTHS[style.font] = [font.text_length(chr(c), fontsize=1) for c in range(256)]
    widths = _WIDTHS[style.font]
    return sum(widths[ord(c)] for c in text) * style.size


def is_syllable_break(word: str, k: int) -> bool:
    """A rough hyphenation point: before a consonant that is followed by a vowel (con-so-nant)."""
    vowels = "aeiouyAEIOUY"
    return word[k] not in vowels and word[k + 1] in vowels


def split_for_hyphen(line: str, word: str, width: float, style: TextStyle) -> int:
    """Largest break k such that 'line word[:k]-' fits, 3+ letters on each side; 0 if none."""
    if not (word.isalpha() and len(word) >= 7):
        return 0
    for k in range(len(word) - 3, 2, -1):
        if is_syllable_break(word, k) and text_width(f"{line} {word[:k]}-", style) <= width:
            return k
    return 0


def wrap(text: str, width: float, style: TextStyle, hyphenate: bool) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".lstrip()
        if text_width(candidate, style) <= width or not line:
            line = candidate
            continue
        k = split_for_hyphen(line, word, width, style) if hyphenate else 0
        if k:
            lines.append(f"{line} {word[:k]}-")
            line = word[k:]
        else:
            lines.append(line)
            line = word
    return lines + [line] if line else lines


class ColumnCursor:
    """Places lines top to bottom in two columns, page after page, below a first-page title block."""

    def __init__(self, doc: pymupdf.Document, paper: Paper):
        self.doc, self.column = doc, 0
        self.shape = doc.new_page(width=PAGE_W, height=PAGE_H).new_shape()
        self.column_top = self.y = title_block(self.shape, paper)

    def place(self, line: str, style: TextStyle) -> None:
        if self.y + style.leading > BOTTOM:
            self.column += 1
            if self.column == 2:
                self.finish()
                self.shape = self.doc.new_page(width=PAGE_W, height=PAGE_H).new_shape()
                self.column, self.column_top = 0, TOP
            self.y = self.column_top
        x = MARGIN_X + self.column * (COLUMN_W + COLUMN_GAP)
        self.shape.insert_text((x, self.y), line, fontsize=style.size, fontname=style.font)
        self.y += style.leading

    def finish(self) -> None:
        """Writes the current page's text (one content stream per page is much faster)."""
        self.shape.commit()

    def skip(self, points: float) -> None:
        self.y += points


def title_block(shape: pymupdf.Shape, paper: Paper) -> float:
    """Title, authors and abstract across the full width of page 1; returns the y below."""
    full = PAGE_W - 2 * MARGIN_X
    y = TOP
    for style, text, hyphenate in ((TITLE_STYLE, paper.title, False), (BODY_STYLE, ", ".join(paper.authors), False)):
        for line in wrap(text, full, style, hyphenate):
            shape.insert_text((MARGIN_X, y), line, fontsize=style.size, fontname=style.font)
            y += style.leading
        y += 6
    shape.insert_text((MARGIN_X, y), "Abstract", fontsize=HEADING_STYLE.size, fontname=HEADING_STYLE.font)
    y += HEADING_STYLE.leading
    for line in wrap(paper.abstract, full, BODY_STYLE, True):
        shape.insert_text((MARGIN_X, y), line, fontsize=BODY_STYLE.size, fontname=BODY_STYLE.font)
        y += BODY_STYLE.leading
    return y + 14


def running_header_footer(doc: pymupdf.Document, paper: Paper) -> None:
    short = paper.title if len(paper.title) <= 48 else paper.title[:45] + "..."
    left = f"{paper.journal} · {short}"
    right = "Vol. 7 (2024)"
    for number, page in enumerate(doc, start=1):
        page.insert_text((MARGIN_X, 40), left, fontsize=SMALL_STYLE.size, fontname=SMALL_STYLE.font)
        page.insert_text((PAGE_W - MARGIN_X - text_width(right, SMALL_STYLE), 40), right,
                         fontsize=SMALL_STYLE.size, fontname=SMALL_STYLE.font)
        page.draw_line((MARGIN_X, 46), (PAGE_W - MARGIN_X, 46), width=0.5)
        footer = f"Page {number} of {doc.page_count}"
        page.insert_text(((PAGE_W - text_width(footer, SMALL_STYLE)) / 2, PAGE_H - 36), footer,
                         fontsize=SMALL_STYLE.size, fontname=SMALL_STYLE.font)


def pdf_bytes(doc: pymupdf.Document, title: str, author: str, subject: str) -> bytes:
    stamp = PDF_DATE.strftime("D:%Y%m%d%H%M%SZ")
    doc.set_metadata({"title": title, "author": author, "subject": subject, "keywords": subject,
                      "creator": PDF_PRODUCER, "producer": PDF_PRODUCER,
                      "creationDate": stamp, "modDate": stamp})
    return doc.tobytes(garbage=3, deflate=True, no_new_id=True)


def render_paper(paper: Paper) -> bytes:
    doc = pymupdf.open()
    cursor = ColumnCursor(doc, paper)
    for heading, paragraphs in paper.sections:
        cursor.skip(4)
        for line in wrap(heading, COLUMN_W, HEADING_STYLE, False):
            cursor.place(line, HEADING_STYLE)
        for paragraph in paragraphs:
            for line in wrap(paragraph, COLUMN_W, BODY_STYLE, True):
                cursor.place(line, BODY_STYLE)
            cursor.skip(4)
    cursor.finish()
    running_header_footer(doc, paper)
    return pdf_bytes(doc, paper.title, ", ".join(paper.authors), paper.journal)


def make_paper(rng: random.Random, pool: ExtractPool, min_words: int) -> Paper:
    extracts = pool.take(max_count=60, min_words=min_words)
    lead, body = extracts[0], extracts[1:]
    sections, number = [], 1
    while body:
        size = rng.randint(2, 4)
        group, body = body[:size], body[size:]
        heading = "Introduction" if number == 1 else group[0].title
        sections.append((f"{number} {heading}", [e.text for e in group]))
        number += 1
    authors = [f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}" for _ in range(rng.randint(1, 4))]
    field_name = "General Studies" if lead.topic == "Uncategorized" else lead.topic
    return Paper(rng.choice(PAPER_TITLES).format(t=lead.title), authors, f"Demo Journal of {field_name}",
                 lead.text, sections)


def fits_on_page(text: str) -> bool:
    page = pymupdf.open().new_page(width=PAGE_W, height=PAGE_H)
    return page.insert_textbox(SCAN_TEXT_BOX, text, fontsize=11, fontname="tiro") >= 0


def render_scan(pages: list[str], title: str) -> bytes:
    """Each page's text typeset, rendered to a grayscale image, and only the image kept."""
    out = pymupdf.open()
    for text in pages:
        page = pymupdf.open().new_page(width=PAGE_W, height=PAGE_H)
        page.insert_textbox(SCAN_TEXT_BOX, text, fontsize=11, fontname="tiro")
        pixmap = page.get_pixmap(dpi=SCAN_DPI, colorspace=pymupdf.csGRAY)
        target = out.new_page(width=PAGE_W, height=PAGE_H)
        target.insert_image(target.rect, pixmap=pixmap)
    return pdf_bytes(out, title, "", "Scanned report")


def make_scan(rng: random.Random, pool: ExtractPool, name: str) -> PdfDoc:
    """Image-only pages (one to three): a title, then extracts filling each page."""
    extracts = pool.take(max_count=12, min_words=rng.randint(250, 700))
    title = extracts[0].title
    pages, current = [], title
    for extract in extracts:
        candidate = f"{current}\n\n{extract.text}"
        if fits_on_page(candidate):
            current = candidate
        else:
            pages.append(current)
            current = extract.text
    pages.append(current)
    return PdfDoc(name, "scan", title, "\n\n".join(pages), render_scan(pages, title), needs_ocr=True)


def build_pdfs(seed: int, scale: float, pool: ExtractPool) -> tuple[list[PdfDoc], list[PdfDoc]]:
    """(files under pdf/, PDFs served in the WARC files)."""
    rng = child_rng(seed, "pdf")
    files = []
    for i in range(scaled(PDF_COUNTS["paper"], scale)):
        paper = make_paper(rng, pool, rng.randint(1200, 2600))
        files.append(PdfDoc(f"paper-{i:03d}.pdf", "paper", paper.title, paper.text, render_paper(paper)))
    files += [make_scan(rng, pool, f"scan-{i:03d}.pdf") for i in range(scaled(PDF_COUNTS["scan"], scale))]
    for i in range(scaled(PDF_COUNTS["broken_pdf"], scale)):
        paper = make_paper(rng, pool, 600)
        data = render_paper(paper)
        truncated = data[: data.index(b"/Type/Page/")]  # a download cut off before the first page
        files.append(PdfDoc(f"broken-{i:03d}.pdf", "broken_pdf", paper.title, "", truncated, is_broken=True))
    served = []
    site = SITES["reports"][0]
    for i in range(scaled(WEB_COUNTS["web_pdf"], scale)):
        paper = make_paper(rng, pool, 350)
        url = f"https://{site.host}/reports/2024/{slug(paper.title)}-{i}.pdf"
        served.append(PdfDoc(url, "web_pdf", paper.title, paper.text, render_paper(paper)))
    return files, served


def write_pdf_files(out_dir: Path, pdfs: list[PdfDoc]) -> list[str]:
    (out_dir / "pdf").mkdir(parents=True, exist_ok=True)
    for pdf in pdfs:
        (out_dir / "pdf" / pdf.doc_key).write_bytes(pdf.data)
    return [f"pdf/{pdf.doc_key}" for pdf in pdfs]
