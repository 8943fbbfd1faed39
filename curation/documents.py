"""Document metadata keys: the one place that says which columns a shard has.

A document is datatrove's ``Document(text, id, metadata)``. Every key below becomes a
Parquet column of the same name in every stage's shards, so ``SELECT domain,
avg(quality_score) ...`` works on any stage. Metadata keys not listed here are kept
in the ``extra`` column as JSON, so nothing a step adds is lost.
"""

import pyarrow as pa

# key -> Arrow type; the order is the column order after ``id`` and ``text``.
METADATA_SCHEMA: dict[str, pa.DataType] = {
    # where the document came from
    "source": pa.string(),  # the name of the source it was read from (ingest.sources), or synthetic
    "domain": pa.string(),  # mixing domain: web, wiki, code, docs, forum, papers, ...
    "url": pa.string(),
    "warc_record_id": pa.string(),
    "warc_file": pa.string(),
    "warc_offset": pa.int64(),
    "warc_date": pa.string(),
    "content_type": pa.string(),
    "charset": pa.string(),
    "truncated": pa.bool_(),
    "pdf_path": pa.string(),
    "page": pa.int64(),  # per-page PDF documents
    "page_count": pa.int64(),
    "page_start": pa.int64(),
    "page_end": pa.int64(),
    "ocr_pages": pa.list_(pa.int64()),  # pages read by OCR, numbered from 1
    "failed_pages": pa.list_(pa.int64()),  # pages left out of the document (unreadable, OCR failed); why: page_errors
    "page_errors": pa.string(),
    "running_lines_removed": pa.int64(),  # running headers, footers and page numbers taken out of a PDF's text
    "running_lines_sample": pa.string(),  # the first few of them, distinct, joined by " | "
    "garbled_pages": pa.list_(pa.int64()),  # pages whose text layer was garbled: OCR'd where ocr_pages has them
    "ocr_downscaled_pages": pa.list_(pa.int64()),  # pages OCR'd below ocr.dpi to stay within ocr.max_pixels
    "ocr_confidence": pa.float64(),  # the lowest mean word confidence (0-100) of its tesseract pages
    "ocr_deskewed": pa.string(),  # pages straightened before OCR, with their skew: "3: 2°, 4: -1.5°"
    "source_file": pa.string(),  # a document file (JSONL, Parquet, HF dataset folder) it was read from
    "source_row": pa.int64(),  # its line or row in that file, from 0
    "title": pa.string(),
    "author": pa.string(),
    # what later stages learn about it
    "lang": pa.string(),
    "lang_score": pa.float64(),
    "license": pa.string(),  # cc-by, cc-by-sa, cc0, public-domain, all-rights-reserved, cc-by-nc, ...
    "opt_out": pa.string(),  # robots-style opt-outs the page states: noai, noimageai, ...
    "code_markup": pa.int64(),  # <pre>, <code>, <kbd>, <samp> elements in the page's HTML
    "text_kind": pa.string(),  # code | technical | prose: which settings the heuristics judged it by
    "domain_score": pa.float64(),  # the domain classifier's probability for `domain`
    "quality_score": pa.float64(),
    "contamination": pa.string(),
    "dup_cluster": pa.int64(),
    "dup_of": pa.string(),
    "synthetic_style": pa.string(),
    "synthetic_model": pa.string(),
    "parent_id": pa.string(),
    "n_tokens": pa.int64(),  # tokens of the document with its EOS
    "split": pa.string(),  # train | valid: the tokenize stage's held-out slice
}

# Columns of ``_removed`` shards besides the document columns.
REASON = "reason"
DETAIL = "detail"

EXTRA = "extra"  # JSON of metadata keys outside METADATA_SCHEMA
