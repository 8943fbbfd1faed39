import os
import shutil

import pymupdf
import pytest

from curation.drops import marked
from bench.pdf import character_error_rate, folded
from curation.sources.ocr import DEFAULT_MIN_CONFIDENCE, OcrConfig, open_ocr
from curation.sources.pdf import (
    Block,
    Lexicon,
    Page,
    PdfSource,
    extract_pdf,
    join_paragraphs,
    pdf_document_from_payload,
    garbled_text_layer,
    ocr_noise,
    remove_running_lines,
)
from tests.pdfs import (
    AUTHOR,
    JOURNAL,
    TITLE,
    body_line,
    contents_line,
    encrypted,
    fruit_line,
    full_column_paper,
    header_on_the_body,
    interleaved_columns,
    scanned_pdf,
    single_column,
    specks_scan,
    garbled_paper,
    shifted,
    table_report,
    three_column_line,
    three_column_page,
    truncated,
    rotated_contents,
    scan_of,
    two_column_paper,
)

SCAN_LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Scanned pages need optical character recognition.",
    "Twelve barrels of apples arrived on Tuesday.",
]


@pytest.fixture(scope="module")
def tesseract():
    """Tesseract's language data; skipped where absent, a failure under CI."""
    if shutil.which("tesseract") is None and not os.environ.get("TESSDATA_PREFIX"):
        install = "apt-get install tesseract-ocr tesseract-ocr-eng"
        if os.environ.get("CI") == "true":
            pytest.fail(f"tesseract is not installed: CI must run the OCR tests ({install})")
        pytest.skip(f"tesseract is not installed ({install})")


def positions(text: str, needles: list[str]) -> list[int]:
    found = [text.find(needle) for needle in needles]
    assert -1 not in found, [n for n, at in zip(needles, found) if at == -1]
    return found


def test_two_column_paper_reads_in_order_without_running_lines():
    [paper] = extract_pdf(two_column_paper(n_pages=3), "papers/two-column.pdf")
    text = paper.text
    order = [body_line(side, page, k) for page in (1, 2, 3) for side in ("Left", "Right") for k in range(1, 13)]
    assert positions(text, [TITLE, AUTHOR, *order]) == sorted(positions(text, [TITLE, AUTHOR, *order]))
    assert JOURNAL not in text and "Page 2 of 3" not in text
    assert not any(line.strip().isdigit() for line in text.splitlines())
    assert paper.error_reason is None and paper.ocr_pages == ()
    assert paper.metadata() == {
        "source": "pdf",
        "pdf_path": "papers/two-column.pdf",
        "page_count": 3,
        "page_start": 1,
        "page_end": 3,
        "ocr_pages": [],
        "running_lines_removed": 9,  # what was taken out, for an audit in SQL
        "running_lines_sample": f"{JOURNAL} | 1 | Page 1 of 3",
        "title": TITLE,
        "author": AUTHOR,
    }


def test_words_split_at_line_ends_are_rejoined():
    [paper] = extract_pdf(two_column_paper(n_pages=2), "two-column.pdf")
    assert "We give an example of a word split at a line end, next to a well-known compound" in paper.text
    assert "once as a well-known one, and the name Jean-Paul, whose hyphen is real." in paper.text
    assert "This last sentence continues at the top of the right column." in paper.text  # across columns


def test_hyphen_rules():
    lexicon = Lexicon(["a state-of-the-art method", "a well-known fact"])
    assert join_paragraphs([["an exam-", "ple here"]], lexicon) == "an example here"
    assert join_paragraphs([["the well-", "known case"]], lexicon) == "the well-known case"
    assert join_paragraphs([["state-of-the-", "art"]], lexicon) == "state-of-the-art"
    assert join_paragraphs([["Jean-"], ["Paul"]], lexicon) == "Jean-Paul"
    assert join_paragraphs([["post-", "1990 data"]], lexicon) == "post-1990 data"
    assert join_paragraphs([["first", "line"], ["new"]], lexicon) == "first line\n\nnew"


def test_compounds_split_at_line_ends_keep_their_hyphen_and_split_words_are_joined():
    compounds = [("three-", "dimensional"), ("in-", "memory"), ("model-", "based"), ("memory-", "efficient")]
    words = [("exam-", "ple"), ("trans-", "former"), ("data-", "base"), ("reproduci-", "bility")]
    lines = [line for head, tail in compounds + words for line in (f"A line that ends in {head}", f"{tail} and goes on here.")]
    [part] = extract_pdf(single_column([lines]), "hyphens.pdf")
    for head, tail in compounds:
        assert f"{head}{tail} and goes on" in part.text
    for head, tail in words:
        assert f"{head[:-1]}{tail} and goes on" in part.text
    assert join_paragraphs([["a model-", "based plan, modelbased"]], Lexicon(["modelbased"])) == "a modelbased plan, modelbased"


def test_running_lines_recur_with_digits_masked_and_bare_page_numbers_go():
    def page(number: int, top: str, bottom: str, body: str = "Body text") -> Page:
        blocks = [
            Block([top], 72, 30, 300, 40, 0),
            Block([body], 72, 300, 500, 312, 1),
            Block([bottom], 250, 760, 350, 770, 2),
        ]
        return Page(number, 612, 792, blocks)

    pages = [page(n, "Proceedings of Testing", f"Page {n} of 4") for n in (1, 2, 3)]
    pages.append(page(4, "A one-off top line", "iv", body="Proceedings of Testing"))
    remove_running_lines(pages)
    kept = [[line for block in p.blocks for line in block.lines] for p in pages]
    assert kept == [["Body text"]] * 3 + [["A one-off top line", "Proceedings of Testing"]]


def test_table_rows_and_labels_in_the_margins_stay_and_running_lines_go():
    [report] = extract_pdf(table_report(n_pages=3), "report.pdf")
    text = report.text
    assert text.count("Name and address of employer") == 3 and text.count("Employees") == 3  # a header row, repeated
    for number in (1, 2, 3):
        assert f"2024-03-0{number}" in text and str(13 * number) in text  # dates and counts, not page numbers
    assert text.count("Acme Ltd, Leeds") == 3
    assert "Annual Report 2024" not in text and not any(line.strip() in {"1", "2", "3"} for line in text.splitlines())
    assert report.running_lines == ("Annual Report 2024", "1", "Annual Report 2024", "2", "Annual Report 2024", "3")
    assert report.metadata()["running_lines_removed"] == 6


def test_margins_and_reading_order_follow_the_text_of_a_rotated_page():
    [part] = extract_pdf(rotated_contents(n_pages=3, n_lines=12), "contents.pdf")
    entries = [contents_line(page, k) for page in (1, 2, 3) for k in range(1, 13)]
    assert positions(part.text, entries) == sorted(positions(part.text, entries)) and min(positions(part.text, entries)) >= 0
    assert part.running_lines == ("Contents", "1", "Contents", "2", "Contents", "3")


def test_a_bare_number_in_a_margin_is_a_page_number_only_where_it_follows_the_pages():
    def pages(bottoms: list[str]) -> list[Page]:
        return [Page(n, 612, 792, [Block(["Body text"], 72, 300, 500, 312, 0), Block([bottom], 300, 760, 320, 770, 1)])
                for n, bottom in enumerate(bottoms, start=1)]

    numbered, counts = pages(["5", "6", "7"]), pages(["40", "75", "12"])  # printed numbers start at 5; counts
    for document in (numbered, counts):
        remove_running_lines(document)
    assert [page.running for page in numbered] == [["5"], ["6"], ["7"]]
    assert [page.running for page in counts] == [[], [], []]


def test_a_garbled_text_layer_without_ocr_is_kept_and_flagged():
    [part] = extract_pdf(garbled_paper(n_pages=3, garbled=(2,)), "shifted.pdf")
    assert part.garbled_pages == (2,) and part.metadata()["garbled_pages"] == [2] and part.ocr_pages == ()
    assert shifted("the river floods") in part.text
    for clean in (two_column_paper(n_pages=3), table_report(n_pages=3), single_column([["def f(x):", "    return x + 1"] * 20])):
        assert extract_pdf(clean, "clean.pdf")[0].garbled_pages == ()
    unmapped = [Block([f"Normal words \ufffd\ufffd\ufffd line {i}\x03\x03"], 72, 100 + 12 * i, 400, 110 + 12 * i, i) for i in range(5)]
    assert "unmapped glyphs" in garbled_text_layer(unmapped)


def test_three_columns_are_read_left_to_right():
    [part] = extract_pdf(three_column_page(n_lines=10), "three.pdf")
    order = [three_column_line(column, k) for column in (1, 2, 3) for k in range(1, 11)]
    assert part.text.startswith("A Title Set Across All Three Columns")
    assert positions(part.text, order) == sorted(positions(part.text, order)) and min(positions(part.text, order)) >= 0


def test_columns_drawn_row_by_row_are_read_column_by_column():
    [part] = extract_pdf(interleaved_columns(n_lines=6), "rows.pdf")
    order = [body_line(side, 1, k) for side in ("Left", "Right") for k in range(1, 7)]
    assert positions(part.text, order) == sorted(positions(part.text, order))


def test_a_running_header_in_the_body_block_is_removed_line_by_line():
    [part] = extract_pdf(header_on_the_body(n_pages=3), "tight.pdf")
    assert JOURNAL not in part.text
    body = [fruit_line(page, k) for page in (1, 2, 3) for k in range(1, 5)]
    assert positions(part.text, body) == sorted(positions(part.text, body))  # the top lines, in the zone too, stay


def test_markup_characters_and_accents_come_through():
    line = '"Fish & chips" <cheap>, a caf\u00e9 for the na\u00efve'
    [part] = extract_pdf(single_column([[line]]), "chars.pdf")
    assert part.text == line


def test_single_column_blocks_are_read_top_to_bottom():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 400), "Second paragraph, drawn first in the content stream.", fontsize=11)
    page.insert_text((72, 120), "First paragraph, at the top of the page.", fontsize=11)
    page.insert_text((250, 200), "A centred heading", fontsize=11)
    [part] = extract_pdf(doc.tobytes(), "order.pdf")
    assert part.text.split("\n\n") == [
        "First paragraph, at the top of the page.",
        "A centred heading",
        "Second paragraph, drawn first in the content stream.",
    ]


def test_per_page_documents(tmp_path):
    (tmp_path / "paper.pdf").write_bytes(two_column_paper(n_pages=3))
    docs = list(PdfSource([str(tmp_path / "paper.pdf")], per_page=True).run(None, 0, 1))
    assert [d.id for d in docs] == [f"paper.pdf#page={n}" for n in (1, 2, 3)]
    assert {d.metadata["pdf_path"] for d in docs} == {str(tmp_path / "paper.pdf")}
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    assert docs[0].text.startswith(TITLE) and docs[1].text.startswith(body_line("Left", 2, 1))
    assert all(d.metadata["domain"] == "papers" and d.metadata["source"] == "pdf" for d in docs)
    assert docs[2].metadata["page_start"] == docs[2].metadata["page_end"] == 3


BROKEN = {
    "empty.pdf": ("pdf/empty", lambda good: b"", "zero-byte file"),
    "garbage.pdf": ("pdf/corrupt", lambda good: b"\x00garbage\xff" * 300, "not a PDF"),
    "mangled.pdf": ("pdf/corrupt", lambda good: b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n", "cannot be opened"),
    "locked.pdf": ("pdf/encrypted", encrypted, "needs a password"),
    "cut.pdf": ("pdf/truncated", lambda good: truncated(good, 0.6), "cut short"),
}


def test_broken_files_become_error_documents_naming_the_file(tmp_path):
    good = two_column_paper(n_pages=2)
    paths = []
    for name, (_, make, _) in BROKEN.items():
        (tmp_path / name).write_bytes(make(good))
        paths.append(str(tmp_path / name))
    (tmp_path / "fine.pdf").write_bytes(good)
    source = PdfSource([*paths, str(tmp_path / "fine.pdf")])
    docs = list(source.run(None, 0, 1))
    assert len(docs) == len(BROKEN) + 1 and not marked(docs[-1])
    for doc, (name, (reason, _, words)) in zip(docs, BROKEN.items()):
        assert marked(doc).label == reason, name
        assert marked(doc).detail.startswith(f"{tmp_path / name}: ") and words in marked(doc).detail
        assert doc.id == name and doc.metadata["pdf_path"] == str(tmp_path / name)
    assert source.stats.stats["encrypted"].total == 1 and source.stats.stats["documents"].total == 1


def test_ranks_split_the_paths(tmp_path):
    paths = []
    for i in range(4):
        paths.append(str(tmp_path / f"{i}.pdf"))
        (tmp_path / f"{i}.pdf").write_bytes(single_column([[f"Document number {i}."]]))
    read = [[d.text for d in PdfSource(paths).run(None, rank, 2)] for rank in (0, 1)]
    assert read == [["Document number 0.", "Document number 2."], ["Document number 1.", "Document number 3."]]


A_PDF, B_PDF = "https://x.example/a.pdf", "https://x.example/b.pdf"


def test_crawled_pdf_payloads():
    good = two_column_paper(n_pages=3)
    cut = truncated(good, 0.6)
    kept = pdf_document_from_payload(cut, A_PDF, "<urn:uuid:1>", truncated=True, warc_file="cc.warc.gz", warc_offset=42)
    assert not marked(kept) and body_line("Left", 1, 1) in kept.text
    assert kept.id == "<urn:uuid:1>" and "pdf_path" not in kept.metadata
    assert {k: kept.metadata[k] for k in ("source", "url", "truncated", "warc_file", "warc_offset", "content_type")} == {
        "source": "pdf",
        "url": A_PDF,
        "truncated": True,
        "warc_file": "cc.warc.gz",
        "warc_offset": 42,
        "content_type": "application/pdf",
    }
    lost = pdf_document_from_payload(truncated(good, 0.05), B_PDF, "<urn:uuid:2>", truncated=True, warc_file="cc.warc.gz")
    assert marked(lost).label == "pdf/truncated"
    assert marked(lost).detail.startswith(f"cc.warc.gz: record <urn:uuid:2> ({B_PDF}): ")
    unflagged = pdf_document_from_payload(cut, "https://x.example/c.pdf", "<urn:uuid:3>", truncated=False)
    assert marked(unflagged).label == "pdf/truncated"
    whole = pdf_document_from_payload(good, "https://x.example/d.pdf", "<urn:uuid:4>", truncated=False)
    assert whole.metadata["truncated"] is False and whole.metadata["title"] == TITLE


def test_scanned_pages_without_ocr_have_no_text():
    [part] = extract_pdf(scanned_pdf([SCAN_LINES]), "scan.pdf")
    assert part.error_reason == "no_text"
    assert part.error_detail == "scan.pdf: no text on page 1 (no text layer, and no OCR engine: scans need ocr.engine)"


def test_the_no_text_message_says_what_ocr_did(tesseract):
    with open_ocr(OcrConfig(engine="tesseract", dpi=100)) as ocr:
        [blank_scan] = extract_pdf(scanned_pdf([[]]), "blank.pdf", ocr=ocr)
        [empty] = extract_pdf(single_column([[]]), "empty.pdf", ocr=ocr)
    assert blank_scan.error_detail == "blank.pdf: no text on page 1 (OCR read the page images and found no text)"
    assert empty.error_detail == "empty.pdf: no text on page 1 (no text layer, and no page image for OCR to read)"


def test_a_complete_file_padded_after_its_end_marker_is_read():
    good = two_column_paper(n_pages=2)
    for padding in (b"\x00" * 20_000, b"\r\n" * 3000):
        [part] = extract_pdf(good + padding, "padded.pdf")
        assert part.error_reason is None and body_line("Left", 1, 1) in part.text
    [cut] = extract_pdf(truncated(good, 0.6) + b"\x00" * 20_000, "cut.pdf")
    assert cut.error_reason == "truncated"  # padding does not hide a missing end marker


def test_tesseract_reads_only_the_scanned_pages(tesseract):
    text_page = ["This page has a real text layer that is long enough to keep.", "It is never sent to OCR."]
    data = scanned_pdf([SCAN_LINES], text_pages={1: text_page})
    with open_ocr(OcrConfig(engine="tesseract", dpi=200)) as ocr:
        [mixed] = extract_pdf(data, "mixed.pdf", ocr=ocr)
        scan_only = extract_pdf(scanned_pdf([SCAN_LINES]), "scan.pdf", ocr=ocr, per_page=True)
    assert mixed.ocr_pages == (2,) and mixed.metadata()["source"] == "pdf"
    assert mixed.text.startswith(" ".join(text_page))
    for words in ("quick brown fox", "optical character recognition", "Twelve barrels of apples"):
        assert words in mixed.text
    assert scan_only[0].metadata()["source"] == "ocr" and scan_only[0].metadata()["ocr_pages"] == [1]


def test_ocr_output_below_the_confidence_floor_is_left_out_not_kept(tesseract):
    data = scanned_pdf([SCAN_LINES], text_pages={1: ["A first page with a real text layer, long enough to keep."]})
    specks = pymupdf.open(stream=specks_scan(), filetype="pdf")
    document = pymupdf.open(stream=data, filetype="pdf")
    document.insert_pdf(specks)
    with open_ocr(OcrConfig(engine="tesseract", dpi=150)) as ocr:
        [part] = extract_pdf(document.tobytes(), "hard.pdf", ocr=ocr)
    assert part.error_reason is None and part.ocr_pages == (2,) and part.failed_pages == (3,)
    assert part.page_errors.startswith("hard.pdf: page 3: OCR mean word confidence 27.4 is below ocr.min_confidence 60")
    assert "quick brown fox" in part.text and part.ocr_confidence > 90  # the legible scan is kept


def test_a_page_whose_ocr_times_out_is_left_out_and_the_rest_kept(tesseract):
    data = scanned_pdf([SCAN_LINES], text_pages={1: ["A first page with a real text layer, long enough to keep."]})
    with open_ocr(OcrConfig(engine="tesseract", dpi=150, timeout_s=0.001)) as ocr:
        [part] = extract_pdf(data, "slow.pdf", ocr=ocr)
    assert part.error_reason is None and part.text.startswith("A first page with a real text layer")
    assert part.failed_pages == (2,) and part.page_errors == "slow.pdf: page 2: OCR failed after 1 attempt(s): tesseract: timeout after 0.001s"


def test_ocr_output_that_is_noise_is_told_from_text():
    # what an engine "read" in an image of specks (tesseract, through pymupdf, at 150 dpi)
    specks = " ".join(["eeeeeeeoeeesFree", "eyaeore", "eeaooecasmeeeeaoe", "oe", "Sfseeeoeeesaoeee"] * 8)
    assert ocr_noise(specks).startswith("looks like noise: ")
    prose = "The committee on internationalization met twice this spring and agreed on the plan. " * 4
    assert ocr_noise(prose) is None  # a long word now and then is a word


def test_a_two_column_scan_tilted_2_degrees_is_straightened_and_read_column_by_column(tesseract):
    paper = full_column_paper()  # read as tilted, columns filled to the gutter came out at CER 0.028
    truth = folded(extract_pdf(paper, "paper.pdf")[0].text)
    with open_ocr(OcrConfig(engine="tesseract", dpi=300)) as ocr:
        for degrees in (2.0, -2.0):
            [part] = extract_pdf(scan_of(paper, degrees=degrees), "tilted.pdf", ocr=ocr)
            assert part.ocr_pages == (1,) and part.ocr_deskewed.startswith("1: ")
            assert abs(float(part.ocr_deskewed.removeprefix("1: ").removesuffix("°")) - degrees) <= 0.1
            assert character_error_rate(folded(part.text), truth) <= 0.01


def test_a_degraded_but_legible_scan_passes_the_confidence_floor(tesseract):
    paper = two_column_paper(n_pages=1)
    truth = folded(extract_pdf(paper, "paper.pdf")[0].text)
    scan = scan_of(paper, degrees=1.0, noise=0.01, blur=1, jpeg_quality=40)
    with open_ocr(OcrConfig(engine="tesseract", dpi=300)) as ocr:
        [part] = extract_pdf(scan, "worn.pdf", ocr=ocr)
    assert part.failed_pages == () and DEFAULT_MIN_CONFIDENCE < part.ocr_confidence < 95
    assert character_error_rate(folded(part.text), truth) <= 0.1

def test_a_full_width_line_splits_the_columns_into_bands_and_rotated_text_is_left_out():
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    for band, top in (("upper", 120), ("lower", 420)):
        for side, x in (("left", 72), ("right", 316)):
            for k in range(4):
                page.insert_text((x, top + 12 * k), f"The {band} {side} column, line {k}.", fontsize=9)
    caption = "Figure 1: a caption set across both columns, as wide as the whole text block of the page."
    page.insert_text((72, 300), caption, fontsize=10)
    page.insert_text((30, 600), "arXiv:2401.00001v1 [cs.CL] 1 Jan 2024", fontsize=12, rotate=90)
    [part] = extract_pdf(doc.tobytes(), "bands.pdf")
    upper = [f"The upper {side} column, line {k}." for side in ("left", "right") for k in range(4)]
    lower = [f"The lower {side} column, line {k}." for side in ("left", "right") for k in range(4)]
    needles = [*upper, caption, *lower]
    assert positions(part.text, needles) == sorted(positions(part.text, needles))
    assert "arXiv" not in part.text
