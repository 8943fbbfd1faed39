"""The rephrase stage through the runner, against a local OpenAI-compatible stand-in server."""

import json
import random

import pytest

from datatrove.data import Document
from rich.console import Console

from curation.shards import ShardWriter
from curation.errors import UserError
from pipelines.config import ConfigError, parse_config
from pipelines.executor import dask_client
from pipelines.run import RunDir
from pipelines.runner import run_stage
from pipelines.sql import query
from pipelines.stages import REPHRASE_READS, STAGES
from tests.openai_stub import StubOpenAIServer
from tests.runs import record_complete
from tests.warcs import article


def upstream_documents(config, n: int, planted: dict[int, str] | None = None) -> None:
    """A finished upstream stage: shards plus the manifest entry the runner checks."""
    run = RunDir(config.run_dir)
    rng = random.Random(5)
    docs = [
        Document(text="\n\n".join(article(rng, 6) for _ in range(2)), id=f"doc-{i}", metadata={"domain": "wiki" if i % 3 else "forum", "url": f"https://x.example/{i}"})
        for i in range(n)
    ]
    docs[4].text += "\n\n[[fault:refusal]]"
    for i, text in (planted or {}).items():
        docs[i].text += "\n\n" + text
    list(ShardWriter(run.stage_dir(REPHRASE_READS)).run(iter(docs), rank=0))
    record_complete(config, REPHRASE_READS, n)


def test_rephrase_stage_adds_synthetic_documents_with_lineage_and_balances(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_LLM_KEY", "sk-test-secret")  # before the cluster starts: workers inherit it
    with StubOpenAIServer() as server, dask_client("local", workers=2) as client:
        config = parse_config({
            "run": {"name": "r", "root": str(tmp_path)},
            "rephrase": {"endpoint": server.base_url, "model": "stub-model", "api_key_env": "DEMO_LLM_KEY",
                         "styles": ["wiki"], "domains": ["wiki"], "tasks": 2, "max_retries": 1},
        })
        run = RunDir(config.run_dir)
        upstream_documents(config, 12)
        summary = run_stage(config, STAGES["rephrase"], client, Console(quiet=True))
        first_requests = len(server.requests)
        rerun = run_stage(config, STAGES["rephrase"], client, Console(quiet=True), restart=True)
        assert len(server.requests) == first_requests, "a rerun answers from the cache"
    wiki = sum(1 for i in range(12) if i % 3)
    assert summary.counts["in"] == 12 and summary.counts["created"] == wiki
    assert summary.counts["kept"] == 12 + wiki - 1 and summary.counts["removed"] == {"rephrase/refusal": 1}
    assert rerun.counts == summary.counts
    assert summary.note == f"LLM requests: {first_requests}, failed 0"
    rows = query(run.path, "select id, parent_id, synthetic_style, synthetic_model, domain, source, url from rephrase where source = 'synthetic' order by id")[1]
    assert len(rows) == wiki - 1
    for doc_id, parent, style, model, domain, source, url in rows:
        assert doc_id == f"{parent}#wiki" and style == "wiki" and model == "stub-model" and domain == "synthetic/wiki"
        assert url == "https://x.example/" + parent.split("-")[1]
    assert query(run.path, "select bool_and(balanced) from ledger where stage = 'rephrase'")[1] == [(True,)]
    manifest = run.manifest_path.read_text()
    assert "sk-test-secret" not in manifest and "sk-test-secret" not in json.dumps(query(run.path, "select * from rephrase")[1], default=str)


def test_a_missing_api_key_is_a_clear_error_before_any_work(tmp_path, client, monkeypatch):
    monkeypatch.delenv("ABSENT_KEY", raising=False)
    config = parse_config({"run": {"name": "r", "root": str(tmp_path)},
                           "rephrase": {"endpoint": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "ABSENT_KEY"}})
    upstream_documents(config, 6)
    with pytest.raises(ConfigError, match="rephrase.api_key_env: the environment variable ABSENT_KEY is not set"):
        run_stage(config, STAGES["rephrase"], client, Console(quiet=True))


def test_synthetic_documents_pass_the_contamination_check(tmp_path):
    item = "A farmer has 17 cows and buys 5 more each week for 3 weeks, then sells half of the herd at the market; how many cows remain on the farm"
    (tmp_path / "bench.jsonl").write_text(json.dumps({"question": item, "answer": "16"}) + "\n")
    with StubOpenAIServer() as server, dask_client("local", workers=1) as client:
        config = parse_config({
            "run": {"name": "r", "root": str(tmp_path)},
            "classify": {"contamination": {"benchmarks": [{"name": "farm", "path": str(tmp_path / "bench.jsonl"), "fields": ["question"]}]}},
            "rephrase": {"endpoint": server.base_url, "model": "stub-model", "styles": ["wiki"], "domains": ["wiki"], "tasks": 1},
        })
        run = RunDir(config.run_dir)
        upstream_documents(config, 6, planted={1: " ".join(reversed(item.split()))})  # the stub reverses words back
        summary = run_stage(config, STAGES["rephrase"], client, Console(quiet=True))
    assert summary.counts["removed"] == {"contamination/farm": 1, "rephrase/refusal": 1}
    assert query(run.path, "select id from removed where reason = 'contamination/farm'")[1] == [("doc-1#wiki",)]


def test_a_sql_predicate_selects_what_is_rephrased(tmp_path, client):
    with StubOpenAIServer() as server:
        config = parse_config({
            "run": {"name": "r", "root": str(tmp_path)},
            "rephrase": {"endpoint": server.base_url, "model": "m", "styles": ["qa"], "tasks": 2,
                         "where": "id in ('doc-0', 'doc-3') or url like '%/5'"},
        })
        run = RunDir(config.run_dir)
        upstream_documents(config, 6)
        summary = run_stage(config, STAGES["rephrase"], client, Console(quiet=True))
    parents = sorted(r[0] for r in query(run.path, "select parent_id from rephrase where source = 'synthetic'")[1])
    assert parents == ["doc-0", "doc-3", "doc-5"] and summary.counts["created"] == 3
    bad = config.model_copy(update={"rephrase": config.rephrase.model_copy(update={"where": "no_such_column > 1"})})
    with pytest.raises(ConfigError, match="rephrase.where: .*no_such_column"):
        run_stage(bad, STAGES["rephrase"], client, Console(quiet=True), restart=True)


def test_a_dead_endpoint_fails_the_stage_even_below_the_fail_fast_window(tmp_path, client):
    config = parse_config({
        "run": {"name": "r", "root": str(tmp_path)},
        "rephrase": {"endpoint": "http://127.0.0.1:9/v1", "model": "m", "styles": ["wiki"], "domains": ["wiki"], "tasks": 2,
                     "max_retries": 0, "fail_fast_requests": 8},
    })
    upstream_documents(config, 6)  # 4 wiki documents: 2 requests per rank, fewer than the window
    with pytest.raises(UserError, match=r"rephrase: all 4 requests to http://127.0.0.1:9/v1 failed \(connection_error\)"):
        run_stage(config, STAGES["rephrase"], client, Console(quiet=True))
    assert RunDir(config.run_dir).read_manifest()["stages"]["rephrase"]["state"] == "failed"
