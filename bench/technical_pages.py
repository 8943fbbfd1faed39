"""How much real technical text the web filters keep, and how much spam the technical settings let by.

Python's HTML documentation (Debian's ``python3-doc``; see tests/python_docs.py) is served
as a crawl and run through ingest and filter under each extraction engine, with the default
filter config and with the demo's, on both halves of the pages: ``tuning`` (where the
technical settings of curation/filters.py were chosen) and ``held_out``. Every page is worth
keeping, so the kept fraction is the number to raise (goal >= 0.95).

The other side: the demo corpus' spam and boilerplate pages, judged by every heuristic once
with its web settings and once with its technical settings as if every page had code markup
(the worst case: a spam page that carries <pre> or <code> elements).

    .venv/bin/python -m bench.technical_pages [--engines resiliparse,trafilatura]
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import duckdb
import yaml
from datatrove.data import Document
from rich.console import Console

from curation.filters import HEURISTIC_FILTERS
from curation.text_kind import CODE, TextKind
from demo.corpus import write_demo_corpus
from pipelines.config import FilterSection, parse_config
from pipelines.executor import dask_client
from pipelines.runner import run_stage
from pipelines.sql import query
from pipelines.stages import STAGES
from tests.python_docs import DOCS, HALVES, documentation_half, write_documentation_warc

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "demo" / "demo.yaml"


def filter_run(work: Path, half: str, engine: str, filters: dict, client) -> tuple[int, int, list[tuple]]:
    source = {"name": "docs", "kind": "warc", "paths": [str(work / f"{half}.warc.gz")]}
    config = parse_config({
        "run": {"name": f"{half}-{engine}-{len(filters)}", "root": str(work / "runs")},
        "ingest": {"sources": [source], "tasks": 2, "extract": {"engine": engine}},
        "filter": filters | {"tasks": 2},
    })
    quiet = Console(quiet=True)
    pages = run_stage(config, STAGES["ingest"], client, quiet).counts["in"]
    kept = run_stage(config, STAGES["filter"], client, quiet).counts["kept"]
    reasons = query(config.run_dir, "select reason, count(*) from removed group by all order by 2 desc, 1 limit 5")[1]
    return pages, kept, reasons


def documentation_kept(work: Path, engines: list[str], client) -> None:
    demo_filters = yaml.safe_load(DEMO_CONFIG.read_text())["filter"]
    for half in HALVES:
        write_documentation_warc(documentation_half(half), work / f"{half}.warc.gz")
    print("documentation pages kept after filter (goal >= 0.95)")
    for engine in engines:
        for label, filters in (("default config", {}), ("demo config", demo_filters)):
            for half in HALVES:
                pages, kept, reasons = filter_run(work, half, engine, filters, client)
                top = ", ".join(f"{reason} {count}" for reason, count in reasons) or "-"
                print(f"  {engine:11s} {label:14s} {half:8s} {kept:3d} of {pages:3d} = {kept / pages:.3f}   drops: {top}")


def heuristic_verdicts(section: FilterSection, technical: bool):
    rules = []
    for name, kind in HEURISTIC_FILTERS.items():
        heuristic = getattr(section, name)
        rules.append(kind(**(heuristic.params | (heuristic.technical_params if technical else {}))))

    def dropped(text: str) -> bool:
        for rule in rules:
            verdict = rule.filter(Document(text=text, id="page"))
            if not (verdict is True or (isinstance(verdict, tuple) and verdict[0])):
                return True
        return False

    return dropped


def spam_caught(work: Path, scale: float, client) -> None:
    corpus = work / "demo"
    write_demo_corpus(corpus, scale=scale)
    source = {"name": "web", "kind": "warc", "paths": [str(corpus / "warc" / "*.warc.gz")]}
    config = parse_config({"run": {"name": "demo-web", "root": str(work / "runs")}, "ingest": {"sources": [source], "tasks": 2}})
    run_stage(config, STAGES["ingest"], client, Console(quiet=True))
    rows = duckdb.sql(
        f"""select g.kind, i.text from read_parquet('{config.run_dir}/ingest/*/*.parquet') i
            join read_parquet('{corpus / "ground_truth.parquet"}') g on g.doc_key = i.url
            where g.kind in ('spam', 'boilerplate')"""
    ).fetchall()
    section = FilterSection(**yaml.safe_load(DEMO_CONFIG.read_text())["filter"])
    kinds, code_pages = TextKind(), 0
    judged = {False: heuristic_verdicts(section, False), True: heuristic_verdicts(section, True)}
    print(f"demo spam and boilerplate pages (scale {scale}, extracted) dropped by the heuristics")
    for kind in ("spam", "boilerplate"):
        texts = [text for page_kind, text in rows if page_kind == kind]
        code_pages += sum(kinds.kind(Document(text=text, id="p")) == CODE for text in texts)
        for technical in (False, True):
            caught = sum(judged[technical](text) for text in texts)
            settings = "technical settings (worst case)" if technical else "web settings"
            print(f"  {kind:11s} {settings:32s} {caught:3d} of {len(texts):3d} = {caught / len(texts):.3f}")
    print(f"  pages read as code (they would skip the heuristics): {code_pages}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="resiliparse,trafilatura")
    parser.add_argument("--demo-scale", type=float, default=1.0)
    args = parser.parse_args()
    if not DOCS.is_dir():
        raise SystemExit(f"{DOCS} is missing: install Debian's python3-doc (apt-get install python3-doc)")
    work = Path(tempfile.mkdtemp(prefix="curate-bench-docs-"))
    try:
        with dask_client("local", 2) as client:
            documentation_kept(work, args.engines.split(","), client)
            spam_caught(work, args.demo_scale, client)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
