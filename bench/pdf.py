"""PDF extraction speed against bare pymupdf, and OCR character error rate on the demo scans.

Prints pages/s of curate's ``extract_pdf`` (reading order, de-hyphenation, running
headers removed) against a bare ``page.get_text()`` loop over the same text-layer
PDFs, and the character error rate of tesseract OCR (through curate) against the
known text of the demo corpus's image-only pages at 300 dpi.

    .venv/bin/python -m bench.pdf [--scale 1.0] [--repeat 3]
"""

import argparse
import re
import tempfile
import time
from pathlib import Path

import duckdb
import pymupdf

from curation.sources.ocr import OcrConfig, open_ocr
from curation.sources.pdf import extract_pdf
from demo import write_demo_corpus


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


def best_rate(count_pages, paths: list[Path], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        pages = count_pages(paths)
        best = max(best, pages / (time.perf_counter() - start))
    return best


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


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
    bare = best_rate(bare_pages, papers, args.repeat)
    ours = best_rate(curate_pages, papers, args.repeat)
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


if __name__ == "__main__":
    main()
