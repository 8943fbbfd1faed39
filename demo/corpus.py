"""Seeded demo corpus: a small, realistic crawl with a ground truth for every stage.

``write_demo_corpus(out_dir, scale=1.0, seed=0)`` writes::

    out_dir/warc/demo-00000.warc.gz ...   gzipped WARC files (8 at scale 1, at least 2)
    out_dir/pdf/paper-000.pdf ...         text-layer papers, image-only scans, one broken file
    out_dir/docs/wiki/wiki-00000.jsonl.gz ...  Wikipedia dump: Dolma JSONL, gzipped (2 files at scale 1)
    out_dir/docs/code/code-00000.parquet  code dump: zstd Parquet
    out_dir/docs/qa/                      Q&A threads: a Hugging Face ``datasets`` save_to_disk folder
    out_dir/benchmarks/demo_bench.jsonl   the demo benchmark: {"id", "question", "answer"}
    out_dir/ground_truth.parquet          one row per document (schema below)
    out_dir/README.txt                    this text and the summary counts

The same (scale, seed) gives byte-identical files. Text comes from packages installed
in the virtualenv (see ``demo.text``): Wikipedia lead paragraphs (en/fr/es), the Python
standard library (code and docstrings), MMLU and HumanEval.

Web documents (HTML ``response`` records, status 200), per kind, at scale 1:

    wiki 720         several related English Wikipedia extracts per page (200+ words)
    code 300         one stdlib function or class in <pre><code> on a code-hosting site
    docs 300         reference page: signatures and docstrings of one stdlib module
    forum 375        Q&A thread (question, answers with user, votes, time); answers are
                     Wikipedia extracts or stdlib docstrings
    spam 200         keyword stuffing, link farms, repeated lines, all-caps shouting
    boilerplate 125  cookie banner, navigation and legal links around one short sentence
    wiki_fr 100      French / Spanish Wikipedia pages (100+ words); some French and Spanish
    wiki_es 100      pages are windows-1252 or iso-8859-1, declared in the HTTP header,
                     in a <meta charset>, or both
    exact_dup 100    the main text of a wiki/code/docs/forum page again at another URL
    near_dup 100     the same with a few words inserted or replaced, a sentence
                     appended and another site template (``shingle_jaccard``: word
                     5-gram Jaccard of the two texts > 0.85)
    hard_negative 50 a wiki page sharing its lead paragraph and topic with another
                     page, otherwise different (not a duplicate)
    contaminated 50  forum thread or study page quoting a demo-benchmark item verbatim,
                     with every number changed, or its first half only
    web_pdf 6        application/pdf responses carrying a one-page report

The WARC files also hold records that are not documents and must be skipped: one
``warcinfo`` per file, a ``request`` before every response, 404 and 301 responses,
image/png and text/plain (robots.txt) responses. Files under pdf/ at scale 1: 14
two-column papers with a text layer (title/author metadata, running header, "Page i of
n" footer, words hyphenated at line ends), 5 image-only scans (no text layer: OCR) and
1 truncated file that does not open. Every count is ``max(1, round(count * scale))``;
scale is at most 1.5 (beyond, the text sources would repeat and create unlabelled
duplicates). The benchmark has 40 numeric MMLU questions and 10 HumanEval prompts at
scale 1; 60% of its items are planted in contaminated pages, the rest are clean.

Document files under docs/, per kind, at scale 1. Their text is what the web pages and
PDFs leave over in the same sources, and none of their paragraphs (of 8+ words) is in a
web page, a PDF or another document file.

    wiki_doc 200     docs/wiki/wiki-00000.jsonl.gz, wiki-00001.jsonl.gz: one Dolma record
                     per line: "id" ("enwiki-" and the title's slug), "text" (several
                     related English Wikipedia extracts joined by a blank line, 200+
                     words), "source" ("wikipedia"), "added" and "created" (ISO-8601),
                     "metadata" ("title", "url", "length" in characters). The first file
                     also holds 2 lines that a reader must record as drops, at every
                     scale: one cut in the middle (not JSON) and one record whose "text"
                     is ""; they have no ground-truth rows.
    code_doc 200     docs/code/code-00000.parquet: columns "path"
                     ("cpython/Lib/json/decoder.py#JSONDecoder"), "repo" ("cpython"),
                     "license" ("PSF-2.0"), "language" ("python") and "content" (the text:
                     the source of one stdlib function or class)
    qa_doc 150       docs/qa/ (``datasets.load_from_disk``): columns "question_id", "title",
                     "question", "answer" and "text" (title, question, "Accepted answer:"
                     and the answer, joined by blank lines); answers are stdlib docstrings
                     or Wikipedia extracts, as in forum threads

Ground-truth columns (ground_truth.parquet):

    doc_key             URL for web documents, file name (paper-000.pdf) for PDF files;
                        for document files the key a reader sees: "id" (wiki), "path"
                        (code), "question_id" (Q&A)
    source              web (HTML in a WARC) | web_pdf (PDF in a WARC) | pdf (file) |
                        wiki_dump (docs/wiki) | code_dump (docs/code) | qa_dump (docs/qa)
    kind                the generator kind listed above, or paper | scan | broken_pdf
    domain              wiki | code | docs | forum | web (spam, boilerplate) | papers
    lang                en | fr | es
    title               the page's <h1> (not part of text) / the PDF's title (first block of
                        text) / the wiki record's metadata title / the question's title
                        (null for code)
    warc_file           e.g. warc/demo-00003.warc.gz (null for PDF and document files)
    warc_record_id      <urn:uuid:...> of the response record (null for PDF and document files)
    charset             utf-8 | windows-1252 | iso-8859-1 (null for PDFs and document files)
    is_spam             spam pages
    is_boilerplate      boilerplate pages
    dup_of              doc_key of the original for exact/near duplicates, else null
    dup_kind            exact | near | null
    hard_negative_of    doc_key of a related page that is not a duplicate, else null
    contaminated_with   id of the demo-benchmark item, else null
    contamination_kind  verbatim | numbers_changed | half | null
    license             cc-by | cc-by-sa | cc0 | public-domain | noai |
                        all-rights-reserved | none (what the page declares: a
                        rel="license" link to creativecommons.org, a robots "noai"
                        meta tag, an "All rights reserved" footer, or nothing) |
                        PSF-2.0 (the code dump's license column)
    needs_ocr           image-only PDF pages
    is_broken           the file cannot be opened
    n_words             whitespace-separated words of text
    text                the main content as put into the document: blocks joined by a
                        blank line; list items and code lines by newlines; web pages
                        without <h1>, navigation, sidebars, footers, post metadata; papers
                        without running header, footer and author line, and without the
                        line-end hyphens; "" for the broken PDF; the "text" (wiki, Q&A)
                        or "content" (code) field of document files
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from demo.documents import WIKI_BAD_LINES, write_document_files
from demo.ground_truth import file_doc_row, pdf_row, web_row, write_ground_truth
from demo.pdfs import build_pdfs, write_pdf_files
from demo.sources import child_rng, load_sources
from demo.text import BenchItem
from demo.warc import Capture, html_capture, skipped_captures, write_warcs
from demo.web import Context, build_web_docs

WARC_FILES = 8
MAX_SCALE = 1.5


def summarize(rows: list[dict], out_dir: Path, files: dict, captures: list[Capture], scale: float, seed: int) -> dict:
    def count(column: str) -> dict:
        return dict(sorted(Counter(row[column] for row in rows if row[column] is not None).items()))

    return {
        "out_dir": str(out_dir), "scale": scale, "seed": seed, "documents": len(rows),
        "by_kind": count("kind"), "by_domain": count("domain"), "by_source": count("source"),
        "by_lang": count("lang"), "by_license": count("license"),
        "by_contamination_kind": count("contamination_kind"),
        "skipped_records": {"warcinfo": len(files["warc"]), "request": len(captures),
                            **{status: n for status, n in sorted(Counter(
                                f"{c.status.split()[0]} {c.content_type.split(';')[0]}"
                                for c in captures if c.doc_key is None).items())}},
        "skipped_lines": dict(Counter(WIKI_BAD_LINES)),
        **files,
    }


def write_benchmark(out_dir: Path, items: list[BenchItem]) -> str:
    relative = "benchmarks/demo_bench.jsonl"
    (out_dir / "benchmarks").mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": i.id, "question": i.question, "answer": i.answer}, ensure_ascii=False) for i in items]
    (out_dir / relative).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return relative


def write_demo_corpus(out_dir: Path, scale: float = 1.0, seed: int = 0) -> dict:
    """Writes the demo corpus under out_dir and returns a summary dict (counts per kind/domain, file lists)."""
    if not 0 < scale <= MAX_SCALE:
        raise ValueError(f"scale must be in (0, {MAX_SCALE}], got {scale}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = load_sources(seed, scale)
    web_docs = build_web_docs(Context(child_rng(seed, "web"), sources), scale)
    pdf_files, served_pdfs = build_pdfs(seed, scale, sources.pdf_en)

    rng = child_rng(seed, "warc")
    captures = [html_capture(doc) for doc in web_docs]
    captures += [Capture(p.doc_key, "200 OK", "application/pdf", p.data, doc_key=p.doc_key) for p in served_pdfs]
    captures += skipped_captures(rng, scale, [doc.url for doc in web_docs])
    rng.shuffle(captures)
    n_files = max(2, round(WARC_FILES * scale))
    locations = write_warcs(out_dir, captures, n_files, seed)
    crawl_texts = [doc.text for doc in web_docs] + [p.text for p in served_pdfs + pdf_files]
    doc_files, file_docs = write_document_files(out_dir, sources, crawl_texts, scale, seed)

    rows = [web_row(doc, locations[doc.url]) for doc in web_docs]
    rows += [pdf_row(p, locations[p.doc_key]) for p in served_pdfs]
    rows += [pdf_row(p, None) for p in pdf_files]
    rows += [file_doc_row(d) for d in file_docs]
    files = {
        "warc": [f"warc/demo-{i:05d}.warc.gz" for i in range(n_files)],
        "pdf": write_pdf_files(out_dir, pdf_files),
        "docs": doc_files,
        "benchmark": write_benchmark(out_dir, sources.bench),
        "ground_truth": write_ground_truth(out_dir, rows),
    }
    summary = summarize(rows, out_dir, files, captures, scale, seed)
    summary["benchmark_items"] = len(sources.bench)
    readme = f"{__doc__}\nSummary\n\n{json.dumps({k: v for k, v in summary.items() if k != 'out_dir'}, indent=2)}\n"
    (out_dir / "README.txt").write_text(readme, encoding="utf-8")
    return summary
