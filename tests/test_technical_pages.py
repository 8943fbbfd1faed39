"""Technical text survives the web filters: real documentation pages through ingest and filter.

The fixture is the held-out half of Python's HTML documentation (tests/python_docs.py), the
half the technical settings were not chosen on, served as a crawl and run with the default
filter config.
"""

import duckdb
import pytest
from datatrove.data import Document
from rich.console import Console

from curation.filters import HEURISTIC_FILTERS
from curation.text_kind import CODE, CODE_MARKUP, PROSE, TECHNICAL, TEXT_KIND, ByTextKind, TextKind, code_markup_count
from pipelines.config import FilterSection, parse_config
from pipelines.runner import run_stage
from pipelines.stages import STAGES
from tests.python_docs import documentation_half, require_python_docs, write_documentation_warc

PAGES = 120


@pytest.fixture(scope="module")
def documentation_run(tmp_path_factory, client):
    require_python_docs()
    work = tmp_path_factory.mktemp("python-docs")
    write_documentation_warc(documentation_half("held_out", PAGES), work / "docs.warc.gz")
    config = parse_config({
        "run": {"name": "docs", "root": str(work / "runs")},
        "ingest": {"sources": [{"name": "docs", "kind": "warc", "paths": [str(work / "*.warc.gz")]}], "tasks": 2},
        "filter": {"tasks": 2},
    })
    counts = {name: run_stage(config, STAGES[name], client, Console(quiet=True)).counts for name in ("ingest", "filter")}
    return config, counts


def test_default_filters_keep_real_documentation_pages(documentation_run):
    config, counts = documentation_run
    assert counts["ingest"]["in"] == PAGES and counts["ingest"]["kept"] == PAGES
    kept = counts["filter"]["kept"]
    assert kept / PAGES >= 0.95, f"kept {kept} of {PAGES} documentation pages"
    kinds = dict(duckdb.sql(f"select text_kind, count(*) from read_parquet('{config.run_dir}/filter/*/*.parquet') group by 1").fetchall())
    assert kinds.get(PROSE, 0) <= 0.05 * kept, kinds  # read as code or technical text, by their markup and lines


def test_documentation_pages_fail_the_web_settings_they_are_no_longer_judged_by(documentation_run):
    """The technical settings carry the result: judged as prose, a quarter of the pages or more would go."""
    config, _ = documentation_run
    section = FilterSection()
    web = [kind(**getattr(section, name).params) for name, kind in HEURISTIC_FILTERS.items()]
    pages = [text for (text,) in duckdb.sql(f"select text from read_parquet('{config.run_dir}/ingest/*/*.parquet')").fetchall()]
    dropped = sum(any(rejects(rule, text) for rule in web) for text in pages)
    assert dropped / len(pages) >= 0.25, f"{dropped} of {len(pages)}"


def rejects(rule, text: str) -> bool:
    verdict = rule.filter(Document(text=text, id="page"))
    return not (verdict is True or (isinstance(verdict, tuple) and verdict[0]))


def test_text_kind_reads_markup_and_lines():
    kinds = TextKind()
    prose = "The river floods every spring, and the farmers move their herds uphill.\n" * 6
    code = "def f(x):\n    return x + 1\n\nprint(f(2))\n"
    assert kinds.kind(Document(text=prose, id="p")) == PROSE
    assert kinds.kind(Document(text=prose, id="m", metadata={CODE_MARKUP: 3})) == TECHNICAL
    assert kinds.kind(Document(text=prose + "os.path.join(path, *paths)\n", id="s")) == TECHNICAL  # 1 of 7 lines
    assert kinds.kind(Document(text=code, id="c")) == CODE
    assert kinds.kind(Document(text="Symphony No. 9 (Beethoven)\n" + prose, id="t")) == PROSE  # a title, not a call
    assert code_markup_count('<p>Run <code>ls</code>:</p><pre class="x">ls -l</pre><PRE>') == 3


def test_each_kind_meets_its_own_settings():
    class Verdict:
        name, type = "rule", "filter"

        def __init__(self, answer):
            self.answer = answer

        def filter(self, doc):
            return self.answer

    rule = ByTextKind(Verdict((False, "web")), Verdict(True))
    kinds = {kind: rule.filter(Document(text="x", id=kind, metadata={TEXT_KIND: kind})) for kind in (PROSE, TECHNICAL, CODE)}
    assert kinds == {PROSE: (False, "web"), TECHNICAL: True, CODE: True}
    strict = ByTextKind(Verdict(True), Verdict((False, "technical")), prose_only=False)
    assert strict.filter(Document(text="x", id="c", metadata={TEXT_KIND: CODE})) == (False, "technical")
