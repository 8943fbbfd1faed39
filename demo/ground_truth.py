"""The ground-truth table: one row per document of the crawl, the PDF files and the document files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from demo.documents import FileDoc
from demo.pdfs import PdfDoc
from demo.warc import WarcLocation
from demo.web import WebDoc
from demo.words import word_count

SCHEMA = pa.schema([
    ("doc_key", pa.string()), ("source", pa.string()), ("kind", pa.string()), ("domain", pa.string()),
    ("lang", pa.string()), ("title", pa.string()), ("warc_file", pa.string()),
    ("warc_record_id", pa.string()), ("charset", pa.string()), ("is_spam", pa.bool_()),
    ("is_boilerplate", pa.bool_()), ("dup_of", pa.string()), ("dup_kind", pa.string()),
    ("hard_negative_of", pa.string()), ("contaminated_with", pa.string()),
    ("contamination_kind", pa.string()), ("license", pa.string()), ("needs_ocr", pa.bool_()),
    ("is_broken", pa.bool_()), ("n_words", pa.int32()), ("text", pa.string()),
])


def web_row(doc: WebDoc, location: WarcLocation) -> dict:
    text = doc.text
    return {
        "doc_key": doc.url, "source": "web", "kind": doc.kind, "domain": doc.domain, "lang": doc.site.lang,
        "title": doc.title, "warc_file": location.warc_file, "warc_record_id": location.record_id,
        "charset": doc.charset, "is_spam": doc.kind == "spam", "is_boilerplate": doc.kind == "boilerplate",
        "dup_of": doc.dup_of, "dup_kind": doc.dup_kind, "hard_negative_of": doc.hard_negative_of,
        "contaminated_with": doc.contaminated_with, "contamination_kind": doc.contamination_kind,
        "license": doc.license, "needs_ocr": False, "is_broken": False, "n_words": word_count(text), "text": text,
    }


def pdf_row(doc: PdfDoc, location: WarcLocation | None) -> dict:
    return {
        "doc_key": doc.doc_key, "source": "web_pdf" if location else "pdf", "kind": doc.kind,
        "domain": "papers", "lang": "en", "title": doc.title,
        "warc_file": location.warc_file if location else None,
        "warc_record_id": location.record_id if location else None, "charset": None,
        "is_spam": False, "is_boilerplate": False, "dup_of": None, "dup_kind": None, "hard_negative_of": None,
        "contaminated_with": None, "contamination_kind": None, "license": "none",
        "needs_ocr": doc.needs_ocr, "is_broken": doc.is_broken, "n_words": word_count(doc.text), "text": doc.text,
    }



def file_doc_row(doc: FileDoc) -> dict:
    return {
        "doc_key": doc.doc_key, "source": doc.source, "kind": doc.kind, "domain": doc.domain, "lang": "en",
        "title": doc.title, "warc_file": None, "warc_record_id": None, "charset": None,
        "is_spam": False, "is_boilerplate": False, "dup_of": None, "dup_kind": None, "hard_negative_of": None,
        "contaminated_with": None, "contamination_kind": None, "license": doc.license,
        "needs_ocr": False, "is_broken": False, "n_words": word_count(doc.text), "text": doc.text,
    }


def write_ground_truth(out_dir: Path, rows: list[dict]) -> str:
    relative = "ground_truth.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), out_dir / relative, compression="zstd")
    return relative
