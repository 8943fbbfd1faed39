"""The two HTML extraction engines: main text kept, page furniture dropped, drops recorded, config checked."""

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from curation.extract import HtmlExtractor
from curation.shards import RemovedSink
from pipelines.config import ConfigError, parse_config

ARTICLE = [
    "The river delta formed over several thousand years as sediment settled where the current slowed.",
    "Farmers in the region still rely on the seasonal floods that spread fresh silt across the fields.",
    "Engineers now monitor the delta closely, because upstream dams have reduced the sediment it receives.",
]
NAV = ["Home", "World news", "Sport results", "Weather forecast", "Subscribe today"]
FOOTER = ["Privacy policy", "Terms of service", "Advertise with us", "Careers at Daily Planet"]

PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>River deltas - Daily Planet</title></head>
<body>
<div class="cookie-banner" id="cookie-consent">We use cookies to improve your experience. <button>Accept all cookies</button></div>
<header><a class="logo" href="/">Daily Planet</a>
<nav class="main-nav"><ul>{"".join(f'<li><a href="/{i}">{n}</a></li>' for i, n in enumerate(NAV))}</ul></nav></header>
<main><article>
<h1>How river deltas grow</h1>
{"".join(f"<p>{s}</p>" for s in ARTICLE)}
</article></main>
<footer><ul>{"".join(f'<li><a href="/f{i}">{n}</a></li>' for i, n in enumerate(FOOTER))}</ul>
<p>© 2024 Daily Planet</p></footer>
</body></html>
"""


def html_doc(doc_id: str, html: str) -> Document:
    return Document(text=html, id=doc_id, metadata={"url": f"https://example.org/{doc_id}", "content_type": "text/html"})


@pytest.mark.parametrize("engine", ["trafilatura", "resiliparse"])
def test_both_engines_keep_the_article_and_drop_the_page_furniture(engine):
    text = HtmlExtractor(removed=None, engine=engine).extract(PAGE)
    for sentence in ARTICLE:
        assert sentence in text
    for link in NAV + FOOTER:
        assert link not in text
    assert "cookies" not in text


def test_the_step_is_named_after_its_engine_and_refuses_unknown_ones():
    assert HtmlExtractor(removed=None).name == "⛏ trafilatura"
    step = HtmlExtractor(removed=None, engine="resiliparse")
    assert step.name == "⛏ resiliparse" and step.stats.name.endswith("⛏ resiliparse")  # stats.json names it too
    with pytest.raises(ValueError, match="unknown extraction engine 'nope'"):
        HtmlExtractor(removed=None, engine="nope")


def test_resiliparse_step_extracts_in_the_sandbox_and_records_empty_pages(tmp_path):
    empty = "<html><head><title>Nothing here</title><script>var x = 1;</script></head><body></body></html>"
    pdf = Document(text="already plain text", id="pdf", metadata={"content_type": "application/pdf"})
    step = HtmlExtractor(RemovedSink(tmp_path), engine="resiliparse")
    kept = list(step.run(iter([html_doc("article", PAGE), html_doc("empty", empty), pdf])))
    assert [doc.id for doc in kept] == ["article", "pdf"]
    assert ARTICLE[0] in kept[0].text and "Sport results" not in kept[0].text
    assert kept[1].text == "already plain text"
    shards = list((tmp_path / "_removed" / "extract" / "empty").glob("*.parquet"))
    assert len(shards) == 1
    rows = pq.read_table(shards[0]).to_pylist()
    assert [(row["id"], row["reason"]) for row in rows] == [("empty", "extract/empty")]
    assert "no main text found" in rows[0]["detail"] and rows[0]["text"] == empty  # the HTML, for inspection
    assert step.stats["dropped_empty"].total == 1


def test_config_chooses_the_engine(tmp_path):
    def parsed(extract: dict):
        return parse_config({"run": {"name": "t", "root": str(tmp_path)}, "ingest": {"extract": extract}}, "x.yaml")

    for engine in ("trafilatura", "resiliparse"):
        assert parsed({"engine": engine}).ingest.extract.engine == engine
    with pytest.raises(ConfigError, match=r"x.yaml: ingest.extract.engine: .*'trafilatura' or 'resiliparse'"):
        parsed({"engine": "nope"})
