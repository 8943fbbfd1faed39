"""Small real PDF files for tests, made with pymupdf.

``two_column_paper`` is laid out like a journal article: a running header (journal
name left, page number right) and footer (``Page i of n``), a full-width title and a
centred author line on the first page, two columns of body text whose lines are
numbered (``Left column of page 2, line 5 ...``) so reading order can be asserted,
and words split across line ends on page 1.
"""

import random

import numpy as np

import pymupdf

WIDTH, HEIGHT = 612, 792  # US Letter
MARGIN = 72
COLUMN_WIDTH = 224
RIGHT_COLUMN_X = MARGIN + COLUMN_WIDTH + 20  # a 20 pt gutter
BODY_TOP, LEADING, FONT_SIZE = 170, 12, 9
JOURNAL = "Journal of Synthetic Studies 7 (2024)"
TITLE = "Reading Order in Two Column Documents for Curation Tests"
AUTHOR = "Ada Lovelace and Alan Turing"

# Page 1's left column: split words a reader must put back together.
HYPHENATED_LEFT = [
    "We give an exam-",
    "ple of a word split at a line end, next",
    "to a well-known compound written twice,",
    "once whole and once as a well-",
    "known one, and the name Jean-",
    "Paul, whose hyphen is real.",
]
CROSS_COLUMN = ("This last sentence con-", "tinues at the top of the right column.")


def body_line(side: str, page: int, k: int) -> str:
    return f"{side} column of page {page}, line {k} of the text."


def column_lines(side: str, page: int, n_lines: int) -> list[str]:
    lines = [body_line(side, page, k) for k in range(1, n_lines + 1)]
    if page == 1 and side == "Left":
        lines = lines[:2] + HYPHENATED_LEFT + lines[2:] + [CROSS_COLUMN[0]]
    if page == 1 and side == "Right":
        lines = [CROSS_COLUMN[1]] + lines
    return lines


def draw_page(doc: pymupdf.Document, page_number: int, n_pages: int, lines_per_column: int) -> None:
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    page.insert_text((MARGIN, 50), JOURNAL, fontsize=8)
    page.insert_text((WIDTH - MARGIN - 10, 50), str(page_number), fontsize=8)
    footer = f"Page {page_number} of {n_pages}"
    page.insert_text(((WIDTH - pymupdf.get_text_length(footer, fontsize=8)) / 2, HEIGHT - 40), footer, fontsize=8)
    if page_number == 1:
        page.insert_text((MARGIN, 110), TITLE, fontsize=17)
        author_x = (WIDTH - pymupdf.get_text_length(AUTHOR, fontsize=11)) / 2
        page.insert_text((author_x, 135), AUTHOR, fontsize=11)
    for side, x in (("Left", MARGIN), ("Right", RIGHT_COLUMN_X)):
        for i, line in enumerate(column_lines(side, page_number, lines_per_column)):
            assert pymupdf.get_text_length(line, fontsize=FONT_SIZE) < COLUMN_WIDTH, line
            page.insert_text((x, BODY_TOP + i * LEADING), line, fontsize=FONT_SIZE)


def two_column_paper(n_pages: int = 3, lines_per_column: int = 12) -> bytes:
    doc = pymupdf.open()
    for number in range(1, n_pages + 1):
        draw_page(doc, number, n_pages, lines_per_column)
    doc.set_metadata({"title": TITLE, "author": AUTHOR})
    return doc.tobytes(garbage=3, deflate=True)


def single_column(paragraphs: list[list[str]], title: str = "") -> bytes:
    """One page; each paragraph's lines set close together, paragraphs apart."""
    doc = pymupdf.open()
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    y = 120
    for paragraph in paragraphs:
        for line in paragraph:
            page.insert_text((MARGIN, y), line, fontsize=11)
            y += 14
        y += 20
    if title:
        doc.set_metadata({"title": title})
    return doc.tobytes()


def scanned_page(doc: pymupdf.Document, lines: list[str], dpi: int = 150) -> None:
    """A page that holds only an image of ``lines`` (no text layer), like a scan."""
    source = pymupdf.open()
    original = source.new_page(width=WIDTH, height=HEIGHT)
    for i, line in enumerate(lines):
        original.insert_text((MARGIN, 120 + i * 28), line, fontsize=16)
    pixmap = original.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    page.insert_image(page.rect, pixmap=pixmap)


def scanned_pdf(pages: list[list[str]], text_pages: dict[int, list[str]] | None = None) -> bytes:
    """Scanned pages, with real text-layer pages at the (1-based) numbers in ``text_pages``."""
    doc = pymupdf.open()
    text_pages = text_pages or {}
    scans = iter(pages)
    for number in range(1, len(pages) + len(text_pages) + 1):
        if number in text_pages:
            page = doc.new_page(width=WIDTH, height=HEIGHT)
            for i, line in enumerate(text_pages[number]):
                page.insert_text((MARGIN, 120 + i * 14), line, fontsize=11)
        else:
            scanned_page(doc, next(scans))
    return doc.tobytes(deflate=True)


def encrypted(data: bytes, password: str = "secret") -> bytes:
    doc = pymupdf.open(stream=data, filetype="pdf")
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "-owner")


def truncated(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def interleaved_columns(n_lines: int = 6) -> bytes:
    """One page of two columns drawn row by row in a single text object, as some
    generators do: MuPDF puts the lines of both columns in one block, alternating."""
    doc = pymupdf.open()
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    writer = pymupdf.TextWriter(page.rect)
    for k in range(1, n_lines + 1):
        for side, x in (("Left", MARGIN), ("Right", RIGHT_COLUMN_X)):
            writer.append((x, BODY_TOP + k * LEADING), body_line(side, 1, k), fontsize=FONT_SIZE)
    writer.write_text(page)
    return doc.tobytes()


FRUITS = ("Apples", "Pears", "Plums", "Figs")


def fruit_line(page: int, k: int) -> str:
    return f"{FRUITS[page - 1]} are the subject of this page, line {k}."


def header_on_the_body(n_pages: int = 3, lines_per_page: int = 4) -> bytes:
    """Pages whose running header sits so close above the body text, at the same left
    edge, that MuPDF puts it in the body's first block (``fruit_line`` texts: the first
    of them is in the top margin zone too, and differs from page to page)."""
    doc = pymupdf.open()
    for number in range(1, n_pages + 1):
        page = doc.new_page(width=WIDTH, height=HEIGHT)
        page.insert_text((MARGIN, 60), JOURNAL, fontsize=10)
        for k in range(1, lines_per_page + 1):
            page.insert_text((MARGIN, 62 + k * LEADING), fruit_line(number, k), fontsize=10)
    return doc.tobytes()


def table_report(n_pages: int = 3) -> bytes:
    """A report whose pages each end with a table: a header row in the top margin zone
    ("Name and address of employer" | "Employees") and a data row in the bottom one (a date,
    a count, a name) that recur page after page at the same height, under a real running
    header ("Annual Report 2024") and above a page number."""
    doc = pymupdf.open()
    for number in range(1, n_pages + 1):
        page = doc.new_page(width=WIDTH, height=HEIGHT)
        page.insert_text((MARGIN, 40), "Annual Report 2024", fontsize=8)
        page.insert_text((MARGIN, 70), "Name and address of employer", fontsize=9)
        page.insert_text((400, 70), "Employees", fontsize=9)
        for i in range(4):
            page.insert_text((MARGIN, 200 + i * 14), f"Body paragraph {i + 1} of page {number}, with enough words to read.", fontsize=10)
        page.insert_text((MARGIN, 730), f"2024-03-{number:02d}", fontsize=9)
        page.insert_text((300, 730), str(13 * number), fontsize=9)
        page.insert_text((400, 730), "Acme Ltd, Leeds", fontsize=9)
        page.insert_text((WIDTH / 2, 765), str(number), fontsize=8)
    return doc.tobytes()


def shifted(text: str, by: int = -1) -> str:
    """``text`` with each ASCII letter moved ``by`` along the alphabet: what a font with a
    shifted Unicode mapping leaves in a text layer ("the" -> "sgd")."""
    def move(ch: str) -> str:
        if not ch.isascii() or not ch.isalpha():
            return ch
        base = ord("a") if ch.islower() else ord("A")
        return chr(base + (ord(ch) - base + by) % 26)

    return "".join(move(ch) for ch in text)


def garbled_paper(n_pages: int = 2, garbled: tuple[int, ...] = (2,)) -> bytes:
    """Pages of prose, those numbered in ``garbled`` with a shifted text layer."""
    doc = pymupdf.open()
    for number in range(1, n_pages + 1):
        page = doc.new_page(width=WIDTH, height=HEIGHT)
        for i in range(12):
            line = f"Line {i + 1} of page {number} tells how the river floods the valley every spring."
            page.insert_text((MARGIN, 150 + i * 14), shifted(line) if number in garbled else line, fontsize=10)
    return doc.tobytes()


def three_column_page(n_lines: int = 10) -> bytes:
    """One page of three 150 pt columns under a full-width title, each line numbered
    (``Column 2 line 4 ...``), drawn row by row in one text object: MuPDF puts the lines of
    all three columns in one block, alternating."""
    doc = pymupdf.open()
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    page.insert_text((MARGIN, 110), "A Title Set Across All Three Columns of the Page", fontsize=16)
    writer = pymupdf.TextWriter(page.rect)
    for k in range(1, n_lines + 1):
        for column, x in enumerate((MARGIN, MARGIN + 165, MARGIN + 330), start=1):
            writer.append((x, BODY_TOP + k * LEADING), three_column_line(column, k), fontsize=FONT_SIZE)
    writer.write_text(page)
    return doc.tobytes()


def three_column_line(column: int, k: int) -> str:
    return f"Column {column} line {k} of the page."


def specks_scan(seed: int = 0) -> bytes:
    """One page whose only content is an image of random black specks: what a hard scan
    gives an OCR engine that finds letters in anything."""
    rng = random.Random(seed)
    width, height = 1275, 1650  # US Letter at 150 dpi
    specks = bytes(rng.choice((0, 255, 255, 255)) for _ in range(width * height))
    doc = pymupdf.open()
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    page.insert_image(page.rect, pixmap=pymupdf.Pixmap(pymupdf.csGRAY, width, height, specks, False))
    return doc.tobytes()


def rotated_contents(n_pages: int = 3, n_lines: int = 12) -> bytes:
    """A table of contents on portrait pages shown landscape (``/Rotate 90``), its text
    drawn upwards in the unrotated page so that it reads across the displayed one: a
    running header ("Contents") and a page number in the displayed margins, and entries
    (``Chapter 4 ... 37``) from the top of the displayed page to its bottom."""
    doc = pymupdf.open()
    for number in range(1, n_pages + 1):
        page = doc.new_page(width=WIDTH, height=HEIGHT)
        page.set_rotation(90)
        shown = page.derotation_matrix  # displayed coordinates -> unrotated ones
        page.insert_text(pymupdf.Point(MARGIN, 30) * shown, "Contents", fontsize=9, rotate=90)
        for k in range(1, n_lines + 1):
            page.insert_text(pymupdf.Point(MARGIN, 50 + k * 40) * shown, contents_line(number, k), fontsize=11, rotate=90)
        page.insert_text(pymupdf.Point(HEIGHT / 2, WIDTH - 20) * shown, str(number), fontsize=9, rotate=90)
    return doc.tobytes()


def contents_line(page: int, k: int) -> str:
    chapter = (page - 1) * 100 + k
    return f"Chapter {chapter} On the subject of part {chapter} ........ {3 * chapter}"


def scan_of(data: bytes, degrees: float = 0.0, dpi: int = 300, noise: float = 0.0, blur: int = 0,
            jpeg_quality: int | None = None, seed: int = 0) -> bytes:
    """``data``'s pages as a scanner would give them: each page rendered in gray at ``dpi``,
    tilted by ``degrees`` (clockwise), with ``noise`` (the share of pixels flipped to black
    or white), a ``blur`` (box filter ``2 * blur + 1`` pixels wide) and JPEG compression,
    and put back as an image-only page."""
    rng = np.random.default_rng(seed)
    scan = pymupdf.open()
    for page in pymupdf.open(stream=data, filetype="pdf"):
        pixmap = page.get_pixmap(matrix=pymupdf.Matrix(dpi / 72, dpi / 72).prerotate(degrees), colorspace=pymupdf.csGRAY, alpha=False)
        gray = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.height, pixmap.stride)[:, : pixmap.width].astype(np.float64)
        if blur:
            gray = box_blur(gray, blur)
        if noise:
            flipped = rng.random(gray.shape) < noise
            gray[flipped] = rng.choice((0.0, 255.0), size=int(flipped.sum()))
        image = pymupdf.Pixmap(pymupdf.csGRAY, pixmap.width, pixmap.height, np.ascontiguousarray(gray.round().astype(np.uint8)).tobytes(), False)
        shown = scan.new_page(width=pixmap.width * 72 / dpi, height=pixmap.height * 72 / dpi)
        if jpeg_quality is None:
            shown.insert_image(shown.rect, pixmap=image)
        else:
            shown.insert_image(shown.rect, stream=image.tobytes("jpg", jpg_quality=jpeg_quality))
    return scan.tobytes(garbage=3, deflate=True)


def box_blur(gray: np.ndarray, radius: int) -> np.ndarray:
    width = 2 * radius + 1
    for axis in (0, 1):
        padded = np.pad(gray, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        sums = np.cumsum(padded, axis=axis)
        sums = np.insert(sums, 0, 0.0, axis=axis)
        gray = (np.take(sums, range(width, sums.shape[axis]), axis=axis) - np.take(sums, range(0, sums.shape[axis] - width), axis=axis)) / width
    return gray


def full_column_paper(lines_per_column: int = 45, seed: int = 0) -> bytes:
    """One page of two columns filled edge to edge, as justified text is: every line is
    words up to the column's width, so the 20 pt gutter is the only gap between them."""
    rng = random.Random(seed)
    words = "the river floods valley every spring and farmers plant rice along its banks where soil stays wet".split()
    doc = pymupdf.open()
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    for x in (MARGIN, RIGHT_COLUMN_X):
        for i in range(lines_per_column):
            line = f"{'LR'[x > MARGIN]}{i + 1:02d}"
            while pymupdf.get_text_length(candidate := f"{line} {rng.choice(words)}", fontsize=FONT_SIZE) < COLUMN_WIDTH:
                line = candidate
            page.insert_text((x, BODY_TOP - 60 + i * LEADING), line, fontsize=FONT_SIZE)
    return doc.tobytes()
