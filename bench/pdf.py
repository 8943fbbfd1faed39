"""PDF extraction speed against bare pymupdf, and OCR character error rate on the demo scans.

Prints pages/s of curate's ``extract_pdf`` (reading order, de-hyphenation, running
headers removed) against a bare ``page.get_text()`` loop over the same text-layer
PDFs, and the character error rate of tesseract OCR (through curate) against the
known text of the demo corpus's image-only pages at 300 dpi, and on scans of a two-column page
tilted by 2° either way (and worn), which curate straightens before OCR.

    .venv/bin/python -m bench.pdf [--scale 1.0] [--repeat 3]
"""

import argparse
import re
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pymupdf

from curation.sources.ocr import OcrConfig, open_ocr
from curation.sources.pdf import extract_pdf
from demo import write_demo_corpus
from tests.pdfs import full_column_paper, scan_of


def bare_pages(paths: list[Path]) -> int:
    pages = 0
    for path in paths:
        with pymupdf.open(path) as doc:
            for page in doc:
                page.get_text()
                pages += 1
    return pages


def curate_pages(paths: list[Path]) -> int:
    return sum(extract_pdf(path.read_bytes(), str(path))[0].page_count for path in paths)


def best_rates(paths: list[Path], repeat: int) -> tuple[float, float]:
    """Best pages/s of bare pymupdf and of curate, the two run alternately so that a busy
    moment of the machine falls on both."""
    best = {bare_pages: 0.0, curate_pages: 0.0}
    for _ in range(repeat):
        for count_pages in best:
            start = time.perf_counter()
            pages = count_pages(paths)
            best[count_pages] = max(best[count_pages], pages / (time.perf_counter() - start))
    return best[bare_pages], best[curate_pages]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row of the table at a time in numpy: a row's insertions are
    a running minimum of (cell - column) plus the column."""
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    columns = np.arange(len(b) + 1)
    previous = columns.copy()
    for i, char in enumerate(a, 1):
        current = np.empty_like(previous)
        current[0] = i
        current[1:] = np.minimum(previous[1:] + 1, previous[:-1] + (target != ord(char)))
        previous = np.minimum.accumulate(current - columns) + columns
    return int(previous[-1])


def character_error_rate(read: str, truth: str) -> float:
    return edit_distance(read, truth) / max(1, len(truth))


def folded(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="curate-bench-pdf-"))
    write_demo_corpus(out, scale=args.scale, seed=0)
    truth = duckdb.sql(f"select doc_key, needs_ocr, text from read_parquet('{out}/ground_truth.parquet') where source = 'pdf' and not is_broken").fetchall()
    papers = [out / "pdf" / key for key, needs_ocr, _ in truth if not needs_ocr]
    bare, ours = best_rates(papers, args.repeat)
    print(f"text-layer PDFs: {len(papers)} files, {bare_pages(papers)} pages")
    print(f"bare pymupdf get_text: {bare:8.1f} pages/s")
    print(f"curate extract_pdf:    {ours:8.1f} pages/s   ratio {ours / bare:.2f}x (goal >= 0.8x)")
    errors = chars = 0
    start = time.perf_counter()
    with open_ocr(OcrConfig(engine="tesseract", dpi=300)) as ocr:
        for key, needs_ocr, text in truth:
            if not needs_ocr:
                continue
            read = extract_pdf((out / "pdf" / key).read_bytes(), key, ocr=ocr)[0].text
            errors += edit_distance(folded(read), folded(text))
            chars += len(folded(text))
    print(f"OCR (tesseract, 300 dpi): {chars} characters, CER {errors / chars:.4f} (goal <= 0.02), {time.perf_counter() - start:.1f}s")
    print(f"OCR of a two-column page scanned tilted (300 dpi): {tilted_scans()} (goal <= 0.05)")


def tilted_scans() -> str:
    """CER of tesseract, through curate, on scans of a page of two columns filled to the gutter,
    tilted as a scanner's feed leaves them, the last one worn too (noise, blur, JPEG)."""
    paper = full_column_paper()
    truth = folded(extract_pdf(paper, "paper.pdf")[0].text)
    results = []
    with open_ocr(OcrConfig(engine="tesseract", dpi=300)) as ocr:
        for label, degrade in (("2°", {"degrees": 2.0}), ("-2°", {"degrees": -2.0}),
                               ("1° worn", {"degrees": 1.0, "noise": 0.01, "blur": 1, "jpeg_quality": 40})):
            [part] = extract_pdf(scan_of(paper, **degrade), "scan.pdf", ocr=ocr)
            results.append(f"{label} CER {character_error_rate(folded(part.text), truth):.4f} (straightened: {part.ocr_deskewed})")
    return "; ".join(results)


if __name__ == "__main__":
    main()
