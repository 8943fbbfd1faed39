"""Document files of the demo corpus: a Wikipedia dump, a code dump and a Q&A dataset.

Their text is what the web pages and PDFs leave over in the same sources: Wikipedia
extracts no page or PDF took, code units after the crawl's, documented callables no forum
thread took. Those can still share text with the crawl (a docstring copied into another
module, a code unit whose docstring a reference page quotes), so a docstring or code unit
is only used when neither its whole text nor any paragraph of MIN_SHARED_WORDS+ words is
shown already: the document files repeat no text of the crawl, the PDFs or each other.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from demo.sources import ExtractPool, Sources, child_rng, scaled
from demo.text import CodeUnit, DocEntry
from demo.vocabulary import (
    ANSWER_INTROS,
    CODE_QUESTION_BODIES,
    CODE_QUESTION_TITLES,
    GENERAL_QUESTION_BODIES,
    GENERAL_QUESTION_TITLES,
    RELATED_INTROS,
)
from demo.web import WEB_COUNTS, UrlRegistry, docstring_blocks
from demo.words import slug

DOC_COUNTS = {"wiki_doc": 200, "code_doc": 200, "qa_doc": 150}  # documents per kind at scale 1.0
WIKI_FILES = 2
WIKI_ADDED = datetime(2024, 3, 1, tzinfo=timezone.utc)
WIKI_FIRST_EDIT = datetime(2003, 1, 1, tzinfo=timezone.utc)
CODE_REPO, CODE_LICENSE, CODE_LANGUAGE = "cpython", "PSF-2.0", "python"
CODE_SCHEMA = pa.schema([(name, pa.string()) for name in ("path", "repo", "license", "language", "content")])
QA_SCHEMA = pa.schema([(name, pa.string()) for name in ("question_id", "title", "question", "answer", "text")])
# Lines of the first wiki file that a reader must record as drops (not ground-truth documents).
WIKI_BAD_LINES = ("invalid_json", "empty_text")
MIN_SHARED_WORDS = 8


@dataclass(frozen=True)
class FileDoc:
    """A valid document of a document file, keyed as a reader sees it."""

    source: str  # wiki_dump | code_dump | qa_dump
    kind: str  # wiki_doc | code_doc | qa_doc
    domain: str
    doc_key: str  # wiki: id; code: path; qa: question_id
    title: str | None
    text: str
    license: str


@dataclass
class Leftovers:
    """What the crawl did not use, to draw the document files from."""

    extracts: ExtractPool
    entries: list[DocEntry]  # documented callables no forum thread took, drawn from the end
    units: list[CodeUnit]  # the code units after the crawl's
    shown: set[str]  # paragraphs shown so far: the crawl's and PDFs', then the document files'

    def next_entry(self) -> DocEntry:
        """The next entry none of whose docstring paragraphs is shown yet."""
        while True:
            entry = self.entries.pop()
            if self.claim(paragraphs(docstring_text(entry.docstring))):
                return entry

    def claim(self, parts: set[str]) -> bool:
        """Marks parts as shown unless one of them already is; says whether they were new."""
        if not self.shown.isdisjoint(parts):
            return False
        self.shown |= parts
        return True


def normalized(text: str) -> str:
    return " ".join(text.split())


def paragraphs(text: str) -> set[str]:
    """The whole text and its paragraphs of MIN_SHARED_WORDS+ words, normalized: what must not repeat."""
    parts = {normalized(p) for p in text.split("\n\n") if len(p.split()) >= MIN_SHARED_WORDS}
    return parts | {normalized(text)}


def docstring_text(docstring: str) -> str:
    """A docstring as docs pages and forum answers show it."""
    return "\n\n".join(b.text for b in docstring_blocks(docstring))


def docstring_paragraphs(source: str) -> set[str]:
    """Paragraphs of every docstring in a code unit: a page quoting one repeats the unit's text."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and ast.get_docstring(node):
            found |= paragraphs(docstring_text(ast.get_docstring(node)))
    return found


def collect_leftovers(sources: Sources, crawl_texts: list[str], scale: float, seed: int) -> Leftovers:
    """Called after the web pages and PDFs are built (crawl_texts): their pools are drawn down by then."""
    n_code = scaled(WEB_COUNTS["code"], scale)
    shown = {part for text in crawl_texts for part in paragraphs(text)}
    shown |= {part for unit in sources.code_units[:n_code] for part in docstring_paragraphs(unit.source)}
    return Leftovers(
        extracts=ExtractPool(sources.web_en.remaining(), child_rng(seed, "docs/extracts")),
        entries=list(sources.forum_entries),
        units=sources.code_units[n_code:],
        shown=shown,
    )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- Wikipedia dump (Dolma)


def dolma_record(rng: random.Random, pool: ExtractPool, ids: UrlRegistry) -> dict:
    """Several related extracts (200+ words) in Dolma's fields."""
    extracts = pool.take(max_count=12, min_words=rng.randint(220, 420))
    title = extracts[0].title
    text = "\n\n".join(e.text for e in extracts)
    created = WIKI_FIRST_EDIT + timedelta(seconds=rng.randint(0, int((WIKI_ADDED - WIKI_FIRST_EDIT).total_seconds())))
    return {
        "id": ids.claim(f"enwiki-{slug(title)}"), "text": text, "source": "wikipedia",
        "added": iso(WIKI_ADDED), "created": iso(created),
        "metadata": {"title": title, "url": f"https://en.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}",
                     "length": len(text)},
    }


def bad_lines(rng: random.Random, pool: ExtractPool, ids: UrlRegistry) -> list[str]:
    """A line cut in the middle (not JSON) and a record with empty text, in WIKI_BAD_LINES order."""
    cut = json.dumps(dolma_record(rng, pool, ids), ensure_ascii=False)
    empty = dolma_record(rng, pool, ids)
    empty = {**empty, "text": "", "metadata": {**empty["metadata"], "length": 0}}
    return [cut[: len(cut) // 2], json.dumps(empty, ensure_ascii=False)]


def write_wiki_dump(out_dir: Path, leftovers: Leftovers, scale: float, seed: int) -> tuple[list[str], list[FileDoc]]:
    rng, ids = child_rng(seed, "docs/wiki"), UrlRegistry()
    records = [dolma_record(rng, leftovers.extracts, ids) for _ in range(scaled(DOC_COUNTS["wiki_doc"], scale))]
    n_files = max(1, round(WIKI_FILES * scale))
    size = -(-len(records) // n_files)
    chunks = [[json.dumps(r, ensure_ascii=False) for r in records[i * size : (i + 1) * size]] for i in range(n_files)]
    for line in bad_lines(rng, leftovers.extracts, ids):
        chunks[0].insert(rng.randint(1, len(chunks[0])), line)
    (out_dir / "docs" / "wiki").mkdir(parents=True, exist_ok=True)
    files = []
    for index, lines in enumerate(chunks):
        relative = f"docs/wiki/wiki-{index:05d}.jsonl.gz"
        (out_dir / relative).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
        files.append(relative)
    docs = [FileDoc("wiki_dump", "wiki_doc", "wiki", r["id"], r["metadata"]["title"], r["text"], "none")
            for r in records]
    return files, docs


# ---------------------------------------------------------------------------- Q&A dataset (Hugging Face)


def code_thread(rng: random.Random, entry: DocEntry) -> tuple[str, str, str]:
    name = entry.qualname.rpartition(".")[2]
    fields = {"name": name, "module": entry.module, "sig": entry.signature}
    title = rng.choice(CODE_QUESTION_TITLES).format(**fields)
    question = rng.choice(CODE_QUESTION_BODIES).format(**fields)
    answer = f"{rng.choice(ANSWER_INTROS)}\n\n{docstring_text(entry.docstring)}"
    return title, question, answer


def general_thread(rng: random.Random, pool: ExtractPool) -> tuple[str, str, str]:
    first, second = pool.take(max_count=2)
    fields = {"title": first.title, "description": first.description.lower() or "a related subject"}
    title = rng.choice(GENERAL_QUESTION_TITLES).format(**fields)
    question = rng.choice(GENERAL_QUESTION_BODIES).format(**fields)
    answer = "\n\n".join([first.text, rng.choice(RELATED_INTROS).format(title=second.title), second.text])
    return title, question, answer


def thread_text(title: str, question: str, answer: str) -> str:
    return "\n\n".join([title, question, "Accepted answer:", answer])


def qa_rows(leftovers: Leftovers, scale: float, seed: int) -> list[dict]:
    """Half programming questions answered with a docstring, half general ones answered with extracts."""
    rng = child_rng(seed, "docs/qa")
    count = scaled(DOC_COUNTS["qa_doc"], scale)
    rows = []
    for question_id in rng.sample(range(10**6, 10**7), count):
        if rng.random() < 0.5:
            title, question, answer = code_thread(rng, leftovers.next_entry())
        else:
            title, question, answer = general_thread(rng, leftovers.extracts)
        rows.append({"question_id": str(question_id), "title": title, "question": question, "answer": answer,
                     "text": thread_text(title, question, answer)})
    return rows


def write_qa_dataset(out_dir: Path, leftovers: Leftovers, scale: float, seed: int) -> tuple[str, list[FileDoc]]:
    """A ``save_to_disk`` folder; its fingerprint is a hash of the rows (the default one is random)."""
    import datasets  # takes over a second to import; only this writer needs it

    rows = qa_rows(leftovers, scale, seed)
    fingerprint = hashlib.sha256(json.dumps(rows, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    table = datasets.table.InMemoryTable(pa.Table.from_pylist(rows, schema=QA_SCHEMA))
    relative = "docs/qa"
    datasets.Dataset(table, fingerprint=fingerprint).save_to_disk(str(out_dir / relative), num_shards=1)
    docs = [FileDoc("qa_dump", "qa_doc", "forum", r["question_id"], r["title"], r["text"], "none") for r in rows]
    return relative, docs


# ---------------------------------------------------------------------------- code dump (Parquet)


def code_units(leftovers: Leftovers, count: int) -> list[CodeUnit]:
    """Units none of whose paragraphs, docstring paragraphs included, is shown (drawn after the Q&A)."""
    chosen = []
    units = iter(leftovers.units)
    while len(chosen) < count:
        unit = next(units)
        if leftovers.claim(paragraphs(unit.source) | docstring_paragraphs(unit.source)):
            chosen.append(unit)
    return chosen


def write_code_dump(out_dir: Path, units: list[CodeUnit]) -> tuple[str, list[FileDoc]]:
    rows = [{"path": f"{CODE_REPO}/Lib/{u.path}#{u.name}", "repo": CODE_REPO, "license": CODE_LICENSE,
             "language": CODE_LANGUAGE, "content": u.source} for u in units]
    relative = "docs/code/code-00000.parquet"
    (out_dir / "docs" / "code").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=CODE_SCHEMA), out_dir / relative, compression="zstd")
    docs = [FileDoc("code_dump", "code_doc", "code", r["path"], None, r["content"], CODE_LICENSE) for r in rows]
    return relative, docs


def write_document_files(
    out_dir: Path, sources: Sources, crawl_texts: list[str], scale: float, seed: int
) -> tuple[list[str], list[FileDoc]]:
    """Writes docs/ under out_dir; returns the written paths and the valid documents."""
    leftovers = collect_leftovers(sources, crawl_texts, scale, seed)
    wiki_files, wiki_docs = write_wiki_dump(out_dir, leftovers, scale, seed)
    qa_folder, qa_docs = write_qa_dataset(out_dir, leftovers, scale, seed)
    units = code_units(leftovers, scaled(DOC_COUNTS["code_doc"], scale))
    code_file, code_docs = write_code_dump(out_dir, units)
    return [*wiki_files, code_file, qa_folder], wiki_docs + code_docs + qa_docs
