"""The rephrase step end to end: real client, local stub server, Parquet shards and ledger."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from datatrove.utils.logging import logger

from curation.intake import CREATED_COUNTER, INTAKE_COUNTER, StageIntake
from curation.rephrase import ClientConfig, load_styles
from curation.rephrase.step import (
    NO_ENDPOINT_MESSAGE,
    FixedStyles,
    QualityRouting,
    RephraseStep,
    Selection,
    rejection_drop,
)
from curation.shards import RemovedSink, ShardWriter, list_kept_shards, list_removed_shards
from openai_stub import REFUSAL_TEXT, StubOpenAIServer, count_tokens, prompt_tokens, stub_answer

MODEL = "stub-model"
MAX_RETRIES = 1
SECRET = "sk-step-test-7c1e-secret"
KEY_ENV = "CURATE_TEST_REPHRASE_KEY"
FAULTS = {"refusal": "refusal", "length": "truncated", "echo": "near_copy", "http_500": "llm_error:http_500"}


@pytest.fixture
def stub():
    with StubOpenAIServer() as server:
        yield server


@pytest.fixture
def log_messages():
    """Messages datatrove's loguru logger emits during the test."""
    messages: list[str] = []
    handler = logger.add(lambda message: messages.append(message.record["message"]), level="DEBUG")
    yield messages
    logger.remove(handler)


def client_config(server: StubOpenAIServer, **overrides) -> ClientConfig:
    settings = dict(base_url=server.base_url, model=MODEL, max_concurrency=4, timeout_s=2.0,
                    max_retries=MAX_RETRIES, backoff_base_s=0.01, backoff_max_s=0.02)
    settings.update(overrides)
    return ClientConfig(**settings)


def words(tag: str, count: int = 30) -> str:
    return " ".join(f"{tag}_{k}" for k in range(count))


def web_doc(index: int, quality: float | None = 0.8, domain: str = "web", marker: str = "") -> Document:
    metadata = {"source": "web", "domain": domain, "url": f"https://example.org/{index}", "lang": "en",
                "license": "cc-by"}
    if quality is not None:
        metadata["quality_score"] = quality
    return Document(text=f"{words(f'd{index}')} {marker}".strip(), id=f"doc{index}", metadata=metadata)


def corpus() -> list[Document]:
    """20 documents: 12 selected and clean, 4 selected with faults, 4 outside the selection."""
    docs = [web_doc(i) for i in range(12)]
    docs += [web_doc(12 + k, marker=f"[[fault:{fault}]]") for k, fault in enumerate(FAULTS)]
    docs += [web_doc(16, domain="code"), web_doc(17, domain="code"), web_doc(18, quality=0.1),
             web_doc(19, quality=None)]
    return docs


SELECTION = Selection(domains=("web",), min_quality=0.5, max_quality=0.9)
UNSELECTED = {"doc16", "doc17", "doc18", "doc19"}  # code, code, low quality, no quality score
STYLES = ("wiki", "qa")


def make_step(removed: RemovedSink, config: ClientConfig | None, cache_dir: Path, **overrides) -> RephraseStep:
    settings = dict(cache_dir=cache_dir, styles=FixedStyles(STYLES), selection=SELECTION, batch_size=5)
    settings.update(overrides)
    return RephraseStep(removed, config, **settings)


def run_stage(stage_dir: Path, docs: list[Document], config: ClientConfig | None, cache_dir: Path,
              **overrides) -> tuple[StageIntake, RephraseStep]:
    """Intake -> rephrase -> shard writer over one rank, as a stage pipeline chains them."""
    removed = RemovedSink(stage_dir)
    intake, writer = StageIntake(removed), ShardWriter(stage_dir)
    step = make_step(removed, config, cache_dir, **overrides)
    list(writer.run(step.run(intake.run(iter(docs), rank=0), rank=0), rank=0))
    return intake, step


def read_rows(paths: list[Path]) -> list[dict]:
    return pa.concat_tables([pq.read_table(p) for p in paths]).to_pylist() if paths else []


def kept_rows(stage_dir: Path) -> dict[str, dict]:
    return {row["id"]: row for row in read_rows(list_kept_shards(stage_dir))}


def removed_rows(stage_dir: Path) -> dict[str, list[dict]]:
    by_reason: dict[str, list[dict]] = {}
    for row in read_rows(list_removed_shards(stage_dir)):
        by_reason.setdefault(row["reason"], []).append(row)
    return by_reason


def column(row: dict, key: str):
    """A metadata value from its column, or from ``extra`` while the key is not in the schema."""
    if key in row:
        return row[key]
    return json.loads(row["extra"] or "{}").get(key)


def expected_usage(style: str, text: str) -> tuple[int, int]:
    return prompt_tokens(load_styles()[style].messages(text)), count_tokens(stub_answer(text))


def stat(step, key: str) -> int:
    return step.stats[key].total


# --- selection and routing --------------------------------------------------------------


def test_selection_by_domain_and_inclusive_quality_band():
    assert SELECTION.selects({"domain": "web", "quality_score": 0.5})
    assert SELECTION.selects({"domain": "web", "quality_score": 0.9})
    assert not SELECTION.selects({"domain": "web", "quality_score": 0.91})
    assert not SELECTION.selects({"domain": "code", "quality_score": 0.7})
    assert not SELECTION.selects({"domain": "web"})
    assert not SELECTION.selects({"domain": "web", "quality_score": 0.7, "source": "synthetic"})
    assert Selection().selects({})
    with pytest.raises(ValueError):
        Selection(min_quality=0.8, max_quality=0.2)


def test_step_validates_styles_and_batch_size_and_pickles(stub, tmp_path):
    removed = RemovedSink(tmp_path)
    step = make_step(removed, client_config(stub), tmp_path / "cache")
    assert pickle.loads(pickle.dumps(step)).styles == FixedStyles(STYLES)  # executors ship steps to workers
    with pytest.raises(ValueError, match="poem"):
        make_step(removed, None, tmp_path, styles=FixedStyles(("wiki", "poem")))
    with pytest.raises(ValueError, match="batch_size"):
        make_step(removed, None, tmp_path, batch_size=0)
    assert set(QualityRouting(0.3, 0.7).style_names()) == {"wiki", "qa", "knowledge_list"}


def test_removed_reasons_are_safe_path_segments():
    assert rejection_drop("refusal", "d").label == "rephrase/refusal"
    assert rejection_drop("llm_error:http_500", "d").label == "rephrase/llm_error_http_500"
    assert rejection_drop("llm_error:../x", "d").label == "rephrase/llm_error____x"


# --- the step over a stage --------------------------------------------------------------


def test_step_adds_synthetic_documents_and_files_rejections(stub, tmp_path):
    docs = corpus()
    stage_dir = tmp_path / "rephrase"

    intake, step = run_stage(stage_dir, docs, client_config(stub), tmp_path / "cache")

    kept, removed = kept_rows(stage_dir), removed_rows(stage_dir)
    originals = {row["id"]: row for row in kept.values() if row["source"] != "synthetic"}
    assert {i: r["text"] for i, r in originals.items()} == {d.id: d.text for d in docs}

    clean = docs[:12]
    synthetic = {i: r for i, r in kept.items() if r["source"] == "synthetic"}
    assert set(synthetic) == {f"{d.id}#{style}" for d in clean for style in STYLES}
    for parent in clean:
        for style in STYLES:
            row = synthetic[f"{parent.id}#{style}"]
            assert row["text"] == stub_answer(parent.text)
            assert (row["domain"], row["parent_id"], row["synthetic_style"], row["synthetic_model"]) == (
                f"synthetic/{style}", parent.id, style, MODEL)
            assert (row["url"], row["lang"], row["license"]) == (
                parent.metadata["url"], "en", "cc-by")
            assert row["quality_score"] is None
            usage = (column(row, "llm_prompt_tokens"), column(row, "llm_completion_tokens"))
            assert usage == expected_usage(style, parent.text)
    assert {p.parent.relative_to(stage_dir).as_posix() for p in list_kept_shards(stage_dir)} == {
        "web", "code", "synthetic/wiki", "synthetic/qa"}

    assert set(removed) == {rejection_drop(reason, '').label for reason in FAULTS.values()}
    for parent, reason in zip(docs[12:16], FAULTS.values()):
        rows = removed[rejection_drop(reason, '').label]
        assert sorted(r["id"] for r in rows) == sorted(f"{parent.id}#{style}" for style in STYLES)
        for row in rows:
            assert row["detail"] == f"parent {parent.id}, style {row['synthetic_style']}: {reason}"
            assert (row["parent_id"], row["source"], row["url"]) == (parent.id, "synthetic", parent.metadata["url"])
    assert {r["text"] for r in removed["rephrase/refusal"]} == {REFUSAL_TEXT}
    assert {r["text"] for r in removed["rephrase/truncated"]} == {stub_answer(docs[13].text)}
    assert {r["text"] for r in removed["rephrase/near_copy"]} == {docs[14].text}
    assert {r["text"] for r in removed["rephrase/llm_error_http_500"]} == {""}

    requested = stub.documents()
    assert not any(d.text in requested for d in docs if d.id in UNSELECTED)
    assert requested.count(docs[15].text) == len(STYLES) * (MAX_RETRIES + 1)

    docs_in, created = stat(intake, INTAKE_COUNTER), stat(step, CREATED_COUNTER)
    removed_total = sum(len(rows) for rows in removed.values())
    assert (docs_in, created, len(kept), removed_total) == (20, 32, 44, 8)
    assert docs_in + created == len(kept) + removed_total
    assert (stat(step, "passed_through"), stat(step, "selected"), stat(step, "synthetic")) == (4, 16, 24)
    assert stat(step, "llm_requests") == 32 and stat(step, "llm_retries") == len(STYLES) * MAX_RETRIES


def test_rerun_over_the_cache_requests_only_what_failed(stub, tmp_path):
    docs, cache_dir = corpus(), tmp_path / "cache"
    run_stage(tmp_path / "first", docs, client_config(stub), cache_dir)
    first_kept, first_removed = kept_rows(tmp_path / "first"), removed_rows(tmp_path / "first")
    requests_before = len(stub.requests)

    _, step = run_stage(tmp_path / "second", docs, client_config(stub), cache_dir)

    new_requests = stub.documents()[requests_before:]
    assert new_requests == [docs[15].text] * (len(STYLES) * (MAX_RETRIES + 1))  # errors are not cached
    assert stat(step, "llm_cache_hits") == 30
    assert kept_rows(tmp_path / "second") == first_kept
    assert removed_rows(tmp_path / "second") == first_removed


def test_quality_routing_chooses_styles_per_document(stub, tmp_path):
    scores = {"low": 0.1, "mid": 0.5, "high": 0.9}
    docs = [Document(text=words(name), id=name, metadata={"domain": "web", "quality_score": score})
            for name, score in scores.items()]
    docs.append(Document(text=words("unscored"), id="unscored", metadata={"domain": "web"}))
    stage_dir = tmp_path / "rephrase"

    run_stage(stage_dir, docs, client_config(stub), tmp_path / "cache",
              styles=QualityRouting(0.3, 0.7), selection=Selection())

    synthetic = {i for i, r in kept_rows(stage_dir).items() if r["source"] == "synthetic"}
    assert synthetic == {"low#wiki", "high#qa", "high#knowledge_list"}
    assert sorted(stub.documents()) == sorted([words("low"), words("high"), words("high")])


def test_batches_keep_the_endpoint_busy_and_parents_first(stub, tmp_path):
    stub.latency_s = 0.02
    docs = [web_doc(i) for i in range(8)]
    removed = RemovedSink(tmp_path)
    step = make_step(removed, client_config(stub, max_concurrency=4), tmp_path / "cache", batch_size=4)

    out = [d.id for d in step.run(iter(docs), rank=0)]

    assert out == [i for d in docs for i in (d.id, f"{d.id}#wiki", f"{d.id}#qa")]
    assert stub.max_in_flight == 4


def test_no_endpoint_passes_everything_through(tmp_path, log_messages):
    docs = corpus()
    stage_dir = tmp_path / "rephrase"

    intake, step = run_stage(stage_dir, docs, None, tmp_path / "cache")

    assert {i: r["text"] for i, r in kept_rows(stage_dir).items()} == {d.id: d.text for d in docs}
    assert list_removed_shards(stage_dir) == []
    assert stat(step, CREATED_COUNTER) == 0 and stat(intake, INTAKE_COUNTER) == len(docs)
    assert log_messages.count(NO_ENDPOINT_MESSAGE) == 1


def test_api_key_never_lands_in_outputs_stats_or_logs(stub, tmp_path, monkeypatch, caplog, log_messages):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    stage_dir = tmp_path / "rephrase"

    _, step = run_stage(stage_dir, corpus(), client_config(stub, api_key_env=KEY_ENV), tmp_path / "cache")

    assert {r.authorization for r in stub.requests} == {f"Bearer {SECRET}"}
    shard_files = list_kept_shards(stage_dir) + list_removed_shards(stage_dir)
    shards = [json.dumps(read_rows([p]), default=str) for p in shard_files]
    cached = [p.read_text() for p in (tmp_path / "cache").rglob("*.json")]
    exposed = [*shards, *cached, step.stats.to_json(), repr(step.__dict__), caplog.text, *log_messages]
    assert not any(SECRET in text for text in exposed)
