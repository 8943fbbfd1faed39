"""The seeded demo corpus: counts, determinism, WARC structure, document files, ground truth faithfulness."""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import datasets
import pandas as pd
import pyarrow.parquet as pq
import pymupdf
import pytest
from warcio.archiveiterator import ArchiveIterator

from demo import write_demo_corpus
from demo.text import MissingSourceError, package_file
from demo.words import first_half, shingle_jaccard

SCALE = 0.1
EXPECTED_KINDS = {
    "wiki": 72, "code": 30, "docs": 30, "forum": 38, "spam": 20, "boilerplate": 12, "wiki_fr": 10,
    "wiki_es": 10, "exact_dup": 10, "near_dup": 10, "hard_negative": 5, "contaminated": 5, "web_pdf": 1,
    "paper": 1, "scan": 1, "broken_pdf": 1, "wiki_doc": 20, "code_doc": 20, "qa_doc": 15,
}
DOCUMENT_SOURCES = ("wiki_dump", "code_dump", "qa_dump")
DOC_FILES = ["docs/wiki/wiki-00000.jsonl.gz", "docs/code/code-00000.parquet", "docs/qa"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo_a")
    return out, write_demo_corpus(out, scale=SCALE, seed=0)


@pytest.fixture(scope="module")
def truth(corpus) -> pd.DataFrame:
    return pd.read_parquet(corpus[0] / "ground_truth.parquet")


@pytest.fixture(scope="module")
def responses(corpus) -> dict[str, dict]:
    """URL -> response record facts, over all WARC files."""
    return {r["url"]: r for r in read_records(corpus[0]) if r["type"] == "response"}


def read_records(out_dir: Path) -> list[dict]:
    records = []
    for path in sorted((out_dir / "warc").glob("*.warc.gz")):
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream):
                http = record.http_headers
                records.append({
                    "file": f"warc/{path.name}", "type": record.rec_type,
                    "id": record.rec_headers.get_header("WARC-Record-ID"),
                    "url": record.rec_headers.get_header("WARC-Target-URI"),
                    "date": record.rec_headers.get_header("WARC-Date"),
                    "status": http.get_statuscode() if http and record.rec_type == "response" else None,
                    "content_type": http.get_header("Content-Type") if http else None,
                    "payload": record.content_stream().read(),
                })
    return records


def wiki_lines(out_dir: Path) -> list[str]:
    return gzip.decompress((out_dir / DOC_FILES[0]).read_bytes()).decode("utf-8").splitlines()


def wiki_records(out_dir: Path) -> list[dict]:
    """The valid Dolma records of the wiki dump, as a reader keeps them."""
    records = []
    for line in wiki_lines(out_dir):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record["text"]:
            records.append(record)
    return records


def long_paragraphs(text: str) -> set[str]:
    return {" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) >= 8}


def file_digests(out_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(out_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out_dir.rglob("*")) if p.is_file()}


def page_text(response: dict, charset: str) -> str:
    return html.unescape(response["payload"].decode(charset))


def duplicate_line_fraction(text: str) -> float:
    lines = [line for line in text.split("\n") if line.strip()]
    return 1 - len(set(lines)) / len(lines)


def masked(text: str) -> str:
    return re.sub(r"\d+", "0", text)


def test_counts_per_kind_and_files(corpus, truth):
    out, summary = corpus
    assert summary["by_kind"] == EXPECTED_KINDS
    assert summary["documents"] == len(truth) == 311
    assert summary["by_source"] == {"code_dump": 20, "pdf": 3, "qa_dump": 15, "web": 252, "web_pdf": 1,
                                    "wiki_dump": 20}
    assert summary["by_lang"] == {"en": 291, "es": 10, "fr": 10}
    assert summary["warc"] == ["warc/demo-00000.warc.gz", "warc/demo-00001.warc.gz"]
    assert summary["pdf"] == ["pdf/paper-000.pdf", "pdf/scan-000.pdf", "pdf/broken-000.pdf"]
    assert summary["docs"] == DOC_FILES
    assert summary["skipped_lines"] == {"invalid_json": 1, "empty_text": 1}
    assert truth["doc_key"].is_unique
    assert (out / "README.txt").read_text().startswith("Seeded demo corpus")


def test_same_seed_gives_identical_files(corpus, tmp_path):
    write_demo_corpus(tmp_path, scale=SCALE, seed=0)
    digests = file_digests(tmp_path)
    assert {"docs/qa/state.json", "docs/qa/data-00000-of-00001.arrow", DOC_FILES[0], DOC_FILES[1]} <= set(digests)
    assert digests == file_digests(corpus[0])


def test_other_seed_gives_other_corpus(corpus, truth, tmp_path):
    write_demo_corpus(tmp_path, scale=SCALE, seed=1)
    other = pd.read_parquet(tmp_path / "ground_truth.parquet")

    def texts(frame: pd.DataFrame) -> set[str]:  # boilerplate: stock sentences; broken PDF: ""
        return set(frame.loc[~frame["is_boilerplate"] & ~frame["is_broken"], "text"])

    def html_payloads(out_dir: Path) -> set[bytes]:
        return {r["payload"] for r in read_records(out_dir) if (r["content_type"] or "").startswith("text/html")
                and r["status"] == "200"}

    def crawl(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~frame["source"].isin(DOCUMENT_SOURCES)]

    assert len(other) == len(truth)
    assert len(texts(crawl(other)) & texts(crawl(truth))) <= 3  # both seeds may draw the same page from a finite pool
    assert len(texts(other) & texts(truth)) <= 8  # ... and the same code unit for a code page or the code dump
    assert not html_payloads(tmp_path) & html_payloads(corpus[0])
    ours, theirs = file_digests(corpus[0]), file_digests(tmp_path)
    data_files = [name for name in ours if name.startswith("docs/") and name != "docs/qa/dataset_info.json"]
    assert len(data_files) == 4 and all(ours[name] != theirs[name] for name in data_files)  # the info: features only


def test_warc_records_and_ground_truth_agree(corpus, truth):
    records = read_records(corpus[0])
    types = Counter(r["type"] for r in records)
    assert types == {"warcinfo": 2, "request": 265, "response": 265}
    responses = [r for r in records if r["type"] == "response"]
    html_ok = [r for r in responses if r["status"] == "200" and r["content_type"].startswith("text/html")]
    web = truth[truth["source"] == "web"]
    assert len(html_ok) == len(web) == 252
    assert Counter(r["status"] for r in responses) == {"200": 257, "404": 4, "301": 4}
    assert Counter(r["content_type"] for r in responses if r["status"] == "200" and r not in html_ok) == {
        "image/png": 3, "text/plain": 1, "application/pdf": 1}
    by_url = {r["url"]: r for r in responses}
    for row in truth[truth["source"].isin(["web", "web_pdf"])].itertuples():
        assert by_url[row.doc_key]["id"] == row.warc_record_id
        assert by_url[row.doc_key]["file"] == row.warc_file
    assert all(re.fullmatch(r"<urn:uuid:[0-9a-f-]{36}>", r["id"]) for r in records)
    assert len({r["id"] for r in records}) == len(records)
    assert all(re.fullmatch(r"2024-03-04T\d\d:\d\d:\d\dZ", r["date"]) for r in records)


def test_every_text_line_is_in_its_page(truth, responses):
    web = truth[truth["source"] == "web"]
    for row in web.itertuples():
        page = page_text(responses[row.doc_key], row.charset)
        missing = [line for line in row.text.split("\n") if line.strip() and line not in page]
        assert not missing, (row.doc_key, missing[:2])
    assert web["n_words"].min() >= 2


def test_legacy_charsets_are_real(truth, responses):
    legacy = truth[(truth["source"] == "web") & (truth["charset"] != "utf-8")]
    assert set(legacy["lang"]) <= {"fr", "es"}
    assert set(legacy["charset"]) == {"windows-1252", "iso-8859-1"}
    undecodable = 0
    for row in legacy.itertuples():
        try:
            responses[row.doc_key]["payload"].decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable == len(legacy) == 14


def test_foreign_pages_are_long_enough(truth):
    foreign = truth[truth["lang"] != "en"]
    assert Counter(foreign["lang"]) == {"fr": 10, "es": 10}
    assert foreign["n_words"].min() >= 100


def test_duplicates_and_hard_negatives(truth):
    text_of = dict(zip(truth["doc_key"], truth["text"]))
    exact = truth[truth["dup_kind"] == "exact"]
    near = truth[truth["dup_kind"] == "near"]
    assert len(exact) == len(near) == 10
    assert all(text_of[row.dup_of] == row.text for row in exact.itertuples())
    near_scores = [shingle_jaccard(text_of[row.dup_of], row.text) for row in near.itertuples()]
    assert min(near_scores) > 0.85
    assert all(text_of[row.dup_of] != row.text for row in near.itertuples())
    negatives = truth[truth["hard_negative_of"].notna()]
    assert len(negatives) == 5
    for row in negatives.itertuples():
        related = text_of[row.hard_negative_of]
        assert row.text.split("\n\n")[0] == related.split("\n\n")[0]  # same lead paragraph
        assert shingle_jaccard(related, row.text) < 0.5
    assert set(truth.loc[truth["dup_of"].notna(), "dup_of"]).isdisjoint(truth.loc[truth["dup_of"].notna(), "doc_key"])


def test_spam_differs_from_good_pages(truth):
    spam = truth[truth["is_spam"]]
    good = truth[truth["kind"].isin(["wiki", "docs", "forum"])]
    spam_dup = spam["text"].map(duplicate_line_fraction)
    good_dup = good["text"].map(duplicate_line_fraction)
    assert spam_dup.mean() > 0.15 and good_dup.mean() < 0.02

    def terminal_punctuation(text: str) -> float:
        lines = [line for line in text.split("\n") if line.strip()]
        return sum(line.rstrip().endswith((".", "!", "?", '"')) for line in lines) / len(lines)

    assert spam["text"].map(terminal_punctuation).mean() < 0.6
    assert truth.loc[truth["kind"] == "wiki", "text"].map(terminal_punctuation).mean() > 0.45
    assert truth.loc[truth["is_boilerplate"], "n_words"].max() < 25


def test_license_signals_match_pages(truth, responses):
    web = truth[truth["source"] == "web"]
    assert set(web["license"]) == {"none", "cc-by", "cc-by-sa", "cc0", "public-domain", "noai",
                                   "all-rights-reserved"}
    markers = {
        "cc-by": 'rel="license" href="https://creativecommons.org/licenses/by/4.0/"',
        "cc-by-sa": 'rel="license" href="https://creativecommons.org/licenses/by-sa/4.0/"',
        "cc0": 'rel="license" href="https://creativecommons.org/publicdomain/zero/1.0/"',
        "public-domain": 'rel="license" href="https://creativecommons.org/publicdomain/mark/1.0/"',
        "noai": '<meta name="robots" content="noai, noimageai">',
        "all-rights-reserved": "All rights reserved.",
    }
    for row in web.itertuples():
        page = page_text(responses[row.doc_key], row.charset)
        found = {label for label, marker in markers.items() if marker in page}
        assert found == ({row.license} if row.license != "none" else set()), row.doc_key


def test_contaminated_pages_quote_benchmark_items(corpus, truth):
    bench_lines = (corpus[0] / "benchmarks" / "demo_bench.jsonl").read_text().splitlines()
    bench = {item["id"]: item for item in map(json.loads, bench_lines)}
    assert len(bench) == 5 and all(set(item) == {"id", "question", "answer"} for item in bench.values())
    assert sum(key.startswith("mmlu/") for key in bench) == 4
    contaminated = truth[truth["contaminated_with"].notna()]
    assert Counter(contaminated["contamination_kind"]) == {"verbatim": 1, "numbers_changed": 2, "half": 2}
    for row in contaminated.itertuples():
        question = bench[row.contaminated_with]["question"]
        if row.contamination_kind == "verbatim":
            assert question in row.text
        elif row.contamination_kind == "numbers_changed":
            assert question not in row.text and masked(question) in masked(row.text)
        else:
            assert question not in row.text and first_half(question) in row.text
            assert len(first_half(question)) > 0.4 * len(question)
    clean_items = set(bench) - set(contaminated["contaminated_with"])
    assert len(clean_items) == 2
    others = truth[truth["contaminated_with"].isna()]["text"]
    for item_id in set(bench):
        assert not others.str.contains(bench[item_id]["question"][:60], regex=False).any()


def test_pdfs_text_layer_scan_and_broken(corpus, truth, responses):
    out = corpus[0]
    paper = pymupdf.open(out / "pdf" / "paper-000.pdf")
    assert paper.page_count >= 2
    assert paper.metadata["creationDate"] == "D:20240115093000Z" and paper.metadata["author"]
    page_texts = [page.get_text() for page in paper]
    assert all(f"Page {i} of {paper.page_count}" in text for i, text in enumerate(page_texts, start=1))
    assert len(re.findall(r"[a-z]-\n[a-z]", "".join(page_texts))) >= 10
    row = truth.set_index("doc_key").loc["paper-000.pdf"]
    assert row["text"].split("\n\n")[0] == paper.metadata["title"]
    scan = pymupdf.open(out / "pdf" / "scan-000.pdf")
    assert all(page.get_text().strip() == "" and len(page.get_images()) == 1 for page in scan)
    assert truth.set_index("doc_key").loc["scan-000.pdf", "needs_ocr"]
    with pytest.raises(pymupdf.FileDataError):
        pymupdf.open(out / "pdf" / "broken-000.pdf")
    assert truth.set_index("doc_key").loc["broken-000.pdf", "is_broken"]
    served = truth[truth["source"] == "web_pdf"].iloc[0]
    served_pdf = pymupdf.open(stream=responses[served["doc_key"]]["payload"], filetype="pdf")
    assert served_pdf.metadata["title"] == served["title"]
    assert len(served_pdf[0].get_text().split()) > 100


def test_rejects_out_of_range_scale(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        write_demo_corpus(tmp_path, scale=2.0)


def test_missing_package_says_make_setup():
    with pytest.raises(MissingSourceError, match="make setup"):
        package_file("no_such_package_for_demo", "data/x.json")


def test_wiki_dump_is_dolma_with_two_bad_lines(corpus, truth):
    out = corpus[0]
    lines = wiki_lines(out)
    assert len(lines) == 22
    invalid = []
    for line in lines:
        try:
            json.loads(line)
        except json.JSONDecodeError:
            invalid.append(line)
    assert len(invalid) == 1 and invalid[0].startswith('{"id": "enwiki-')
    records = [json.loads(line) for line in lines if line not in invalid]
    empty = [r for r in records if r["text"] == ""]
    assert len(empty) == 1
    valid = wiki_records(out)
    assert len(valid) == 20
    for record in records:
        assert set(record) == {"id", "text", "source", "added", "created", "metadata"}
        assert re.fullmatch(r"enwiki-[a-z0-9_-]+", record["id"]) and record["source"] == "wikipedia"
        added, created = (datetime.fromisoformat(record[key]) for key in ("added", "created"))
        assert created <= added and added.tzinfo is not None
        metadata = record["metadata"]
        assert set(metadata) == {"title", "url", "length"} and metadata["length"] == len(record["text"])
        assert metadata["url"].startswith("https://en.wikipedia.org/wiki/")
    assert min(len(r["text"].split()) for r in valid) >= 200
    assert all(r["text"].count("\n\n") >= 1 for r in valid)  # several extracts
    assert len({r["id"] for r in records}) == len(records)
    wiki_truth = truth[truth["source"] == "wiki_dump"]
    assert empty[0]["id"] not in set(truth["doc_key"])
    assert dict(zip(wiki_truth["doc_key"], wiki_truth["text"])) == {r["id"]: r["text"] for r in valid}
    assert dict(zip(wiki_truth["doc_key"], wiki_truth["title"])) == {r["id"]: r["metadata"]["title"] for r in valid}


def test_code_dump_is_parquet_with_content(corpus, truth):
    path = corpus[0] / DOC_FILES[1]
    table = pq.read_table(path)
    assert table.column_names == ["path", "repo", "license", "language", "content"]
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    rows = table.to_pylist()
    assert len(rows) == 20
    assert {(r["repo"], r["license"], r["language"]) for r in rows} == {("cpython", "PSF-2.0", "python")}
    assert all(re.fullmatch(r"cpython/Lib/[\w/.-]+\.py#\w+", r["path"]) for r in rows)
    assert all(re.match(r"(@|def |async def |class )", r["content"]) for r in rows)
    code_truth = truth[truth["source"] == "code_dump"]
    assert dict(zip(code_truth["doc_key"], code_truth["text"])) == {r["path"]: r["content"] for r in rows}


def test_qa_dataset_loads_with_datasets(corpus, truth):
    qa = datasets.load_from_disk(str(corpus[0] / DOC_FILES[2]))
    assert qa.column_names == ["question_id", "title", "question", "answer", "text"]
    assert qa.num_rows == 15
    rows = qa.to_list()
    assert all(r["question_id"].isdigit() for r in rows)
    assert all(r["text"] == f"{r['title']}\n\n{r['question']}\n\nAccepted answer:\n\n{r['answer']}" for r in rows)
    qa_truth = truth[truth["source"] == "qa_dump"]
    assert dict(zip(qa_truth["doc_key"], qa_truth["text"])) == {r["question_id"]: r["text"] for r in rows}
    assert dict(zip(qa_truth["doc_key"], qa_truth["title"])) == {r["question_id"]: r["title"] for r in rows}


def test_document_file_rows_in_ground_truth(truth):
    files = truth[truth["source"].isin(DOCUMENT_SOURCES)]
    assert Counter(zip(files["source"], files["kind"], files["domain"])) == {
        ("wiki_dump", "wiki_doc", "wiki"): 20, ("code_dump", "code_doc", "code"): 20, ("qa_dump", "qa_doc", "forum"): 15}
    assert set(files["lang"]) == {"en"}
    assert files["warc_file"].isna().all() and files["warc_record_id"].isna().all() and files["charset"].isna().all()
    assert not (files["is_spam"] | files["is_boilerplate"] | files["needs_ocr"] | files["is_broken"]).any()
    assert files["dup_of"].isna().all() and files["contaminated_with"].isna().all()
    assert (files["n_words"] == files["text"].str.split().str.len()).all()


def test_document_files_repeat_no_crawl_text(truth):
    files = truth[truth["source"].isin(DOCUMENT_SOURCES)]
    crawl = truth[~truth["source"].isin(DOCUMENT_SOURCES)]
    crawl_paragraphs = set().union(*crawl["text"].map(long_paragraphs))
    seen: set[str] = set()
    for row in files.itertuples():
        paragraphs = long_paragraphs(row.text)
        assert not paragraphs & crawl_paragraphs, row.doc_key
        assert not paragraphs & seen, row.doc_key
        seen |= paragraphs
    assert not set(files["text"]) & set(crawl["text"])
    assert files["text"].is_unique
