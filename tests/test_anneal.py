"""The anneal stage on a tiny tokenized run whose documents carry quality scores.

Three synthetic domains go through the tokenize stage's steps (two ranks). ``news`` and ``code``
documents get a quality score (a fifth of ``news`` none), ``recipes`` none, so with one edge at
0.5 the units are news/q0, news/q1, news/unscored, code/q0, code/q1 and recipes/unscored.
"""

import io
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from datatrove.data import Document
from pydantic import ValidationError
from rich.console import Console

from curation.shards import ShardWriter
from curation.tokenize import TRAIN, DomainTokenizer, split_of
from curation.tokenizer import train_bpe
from mixes.anneal import QualityBuckets, build_unit_streams
from mixes.export import export_mixture
from mixes.export.token_files import open_token_files
from mixes.proxy_model import ProxyConfig, TargetSet, train_proxy, train_proxy_state
from mixes.report import PREDICTED_PNG, PROXIES_PNG, REPORT_MD, WEIGHTS_PNG
from mixes.swarm import load_proxies
from pipelines.anneal import AnnealSection, run_anneal
from pipelines.config import parse_config
from pipelines.export import export_name, read_mix, training_tokens
from pipelines.mixing import encode_documents, run_tokenizer
from pipelines.run import RunDir

SEED = 0
VALIDATION_FRACTION = 0.15
LETTERS = {"news": "aeioubcdfgh", "code": "xyz_0123456789", "recipes": "lmnoprstuv"}
DOCUMENTS = {"news": 80, "code": 60, "recipes": 40}
EDGES = [0.5]
UNITS = ["news/q0", "news/q1", "news/unscored", "code/q0", "code/q1", "recipes/unscored"]
ANNEAL_BUDGET = 30_000  # the real anneal's tokens, for the cap and mix.yaml
MAX_EPOCHS = 3.0


def word_list(letters: str, seed: int, size: int = 40) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(letters), size=rng.integers(3, 8))) for _ in range(size)]


def corpus() -> list[Document]:
    """Documents in domain order; quality scores drawn per document (None: unscored)."""
    docs = []
    for index, (domain, letters) in enumerate(LETTERS.items()):
        words, rng = word_list(letters, index), np.random.default_rng(10 + index)
        ids = (f"{domain}-{i}" for i in range(10_000))
        if domain == "recipes":  # train only: trained on, no target
            ids = (i for i in ids if split_of(i, VALIDATION_FRACTION, SEED) == TRAIN)
        for doc_id in ids:
            if len([d for d in docs if d.metadata["domain"] == domain]) == DOCUMENTS[domain]:
                break
            text = " ".join(rng.choice(words, size=rng.integers(40, 120))) + "."
            metadata = {"domain": domain}
            if domain != "recipes" and not (domain == "news" and rng.random() < 0.2):
                metadata["quality_score"] = float(rng.random())
            docs.append(Document(text=text, id=doc_id, metadata=metadata))
    return docs


def write_tokenized_run(run: RunDir, docs: list[Document]) -> None:
    stage = run.stage_dir("tokenize")
    tokenizer = train_bpe([d.text for d in docs], 512, stage / "_tokenizer" / "tokenizer.json")
    for rank in (0, 1):
        step = DomainTokenizer(stage / "_tokens", tokenizer.path, tokenizer.eos_token, VALIDATION_FRACTION, SEED)
        copies = [Document(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs[rank::2]]
        list(ShardWriter(stage).run(step.run(iter(copies), rank=rank), rank=rank))


def make_config(run: RunDir):
    return parse_config({
        "run": {"name": run.path.name, "root": str(run.path.parent), "seed": SEED},
        "proxies": {
            "model": {"n_layers": 1, "d_model": 32, "n_heads": 2, "context": 32, "batch_size": 8},
            "token_budget": 20_000,  # the base proxy
        },
        "mix": {"candidates": 2_000, "top_k": 20, "folds": 4},
        "export": {"sequence_length": 8},  # the cap counts whole exportable sequences
    })


def section(**changes) -> AnnealSection:
    settings = {
        "quality_edges": EDGES, "token_budget": 4_000, "count": 8, "target_budget": ANNEAL_BUDGET,
        "max_epochs": MAX_EPOCHS, "validation_seeds": [101, 102],
    }
    return AnnealSection(**(settings | changes))


def console() -> Console:
    return Console(file=io.StringIO(), width=200)


def bucket_of(doc: Document) -> str:
    score = doc.metadata.get("quality_score")
    return "unscored" if score is None else ("q1" if score >= EDGES[0] else "q0")


@pytest.fixture(scope="module")
def docs() -> list[Document]:
    return corpus()


@pytest.fixture(scope="module")
def run(tmp_path_factory, docs) -> RunDir:
    run = RunDir(tmp_path_factory.mktemp("runs") / "anneal")
    write_tokenized_run(run, docs)
    return run


@pytest.fixture(scope="module")
def annealed(run, client):
    config = make_config(run)
    return config, run_anneal(config, run, client, console(), section())


def test_units_are_the_documents_of_each_domain_and_bucket(run, docs):
    config = make_config(run)
    info = run_tokenizer(config, run)
    units = build_unit_streams(run.stage_dir("tokenize"), run.token_root, list(training_tokens(run)), QualityBuckets(tuple(EDGES)), info.vocab_size)
    assert sorted(units.units) == sorted(UNITS)
    for name, unit in units.units.items():
        # the token files hold rank 0's documents, then rank 1's, each rank in reading order
        members = [
            d for rank in (0, 1) for d in docs[rank::2]
            if d.metadata["domain"] == unit.domain and bucket_of(d) == unit.bucket
            and split_of(d.id, VALIDATION_FRACTION, SEED) == TRAIN
        ]
        expected = encode_documents(info, [d.text for d in members])
        np.testing.assert_array_equal(units.streams[name], expected, err_msg=name)
        assert unit.tokens == len(expected) and unit.documents == len(members)
    per_domain = {}
    for unit in units.units.values():
        per_domain[unit.domain] = per_domain.get(unit.domain, 0) + unit.tokens
    assert per_domain == training_tokens(run)


@pytest.mark.parametrize("damage, message", [("swap", "not in the same order"), ("drop", "training rows")])
def test_shards_out_of_step_with_the_token_files_fail(run, tmp_path, damage, message):
    copy = RunDir(tmp_path / "run")
    shutil.copytree(run.path / "tokenize", copy.path / "tokenize")
    shard = copy.stage_dir("tokenize") / "news" / "00000.parquet"
    table = pq.read_table(shard)
    train = [i for i, split in enumerate(table["split"].to_pylist()) if split == TRAIN]
    n_tokens = table["n_tokens"].to_pylist()
    first, other = train[0], next(i for i in train if n_tokens[i] != n_tokens[train[0]])
    order = list(range(table.num_rows))
    if damage == "swap":
        order[first], order[other] = order[other], order[first]
    else:
        order.remove(first)
    pq.write_table(table.take(order), shard)
    info = run_tokenizer(make_config(run), run)
    with pytest.raises(ValueError, match=message):
        build_unit_streams(copy.stage_dir("tokenize"), copy.token_root, ["news"], QualityBuckets(tuple(EDGES)), info.vocab_size)


def test_anneal_proxies_continue_the_base_and_mix_yaml_is_an_export_mix(annealed, run):
    config, result = annealed
    units = build_unit_streams(run.stage_dir("tokenize"), run.token_root, list(training_tokens(run)), QualityBuckets(tuple(EDGES)), 512).tokens
    proxies = load_proxies(run.stage_dir("anneal") / "proxies.parquet")
    assert len(proxies) == 8 and (proxies["tokens"] == 4_000).all() and result["trained"] == 8
    assert {f"w_{unit}" for unit in UNITS} <= set(proxies.columns) and {"bpb_news", "bpb_code"} <= set(proxies.columns)
    assert result["units"] == units and result["base"]["trained_now"] and result["base"]["source"] == "natural"
    assert run.anneal_base_state.exists()

    mix = read_mix(str(run.stage_dir("anneal") / "mix.yaml"))
    assert mix["phase"] == "anneal" and mix["token_budget"] == ANNEAL_BUDGET
    weights = mix["weights"]
    assert set(weights) == set(UNITS) and sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    for unit, weight in weights.items():
        assert 0 <= weight * ANNEAL_BUDGET / units[unit] <= MAX_EPOCHS + 1e-6, unit
    assert mix["units"]["news/q1"]["quality_range"] == [0.5, None] and mix["units"]["news/unscored"]["quality_range"] is None
    assert mix["regressor"] in {"linear", "mixing_law", "boosting"} and set(mix["validation"]["seeds"]) == {101, 102}
    assert mix["base"]["tokens"] == 20_000 and np.isfinite(mix["base"]["objective"])
    out = run.stage_dir("anneal")
    for name in (PREDICTED_PNG, WEIGHTS_PNG, PROXIES_PNG):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / REPORT_MD).read_text()
    assert report.startswith("# Anneal mixture report") and "## Validation proxies" in report and "## Base proxy" in report


def test_the_chosen_units_token_files_export(annealed, run, tmp_path):
    """What `curate export --mix <run>/anneal/mix.yaml` would do with the mix's token_dirs."""
    config, result = annealed
    mix = read_mix(str(run.stage_dir("anneal") / "mix.yaml"))
    info = run_tokenizer(config, run)
    units = build_unit_streams(run.stage_dir("tokenize"), run.token_root, list(training_tokens(run)), QualityBuckets(tuple(EDGES)), info.vocab_size)
    assert set(mix["token_dirs"]) == {unit for unit, weight in mix["weights"].items() if weight > 0}
    for unit, folder in mix["token_dirs"].items():
        files = open_token_files(run.path / folder, info.vocab_size)
        assert len(files) == 1 and files[0].documents_missing_eos(info.eos_id) == 0
        np.testing.assert_array_equal(files[0].tokens, units.streams[unit])
        assert len(files[0]) == units.units[unit].documents
    token_dirs = {export_name(unit): run.path / folder for unit, folder in mix["token_dirs"].items()}
    weights = {export_name(unit): mix["weights"][unit] for unit in mix["token_dirs"]}
    manifest = export_mixture(
        token_dirs, weights, mix["token_budget"], info, tmp_path / "export", {"mix": "anneal"}, ["olmo_core"],
        sequence_length=8, global_batch_size=8, max_repetition_ratio=MAX_EPOCHS + 1,
    )
    assert json.dumps(manifest)


def test_a_rerun_resumes_and_trains_nothing(annealed, run, client):
    config, first = annealed
    before = [load_proxies(path) for path in (run.proxies_table("anneal"), run.validation_proxies("anneal"))]
    base_written = run.anneal_base_state.stat().st_mtime_ns
    again = run_anneal(config, run, client, console(), section())
    assert (again["trained"], again["scored"], again["reused"]) == (0, 0, 8) and not again["base"]["trained_now"]
    assert again["validation_proxies"] == {"trained": 0, "scored": 0, "reused": 4}
    assert run.anneal_base_state.stat().st_mtime_ns == base_written and again["weights"] == first["weights"]
    for path, frame in zip((run.proxies_table("anneal"), run.validation_proxies("anneal")), before):
        pd.testing.assert_frame_equal(load_proxies(path), frame)


def test_another_pre_training_mix_trains_another_base_and_other_anneal_proxies(annealed, run, client, tmp_path):
    copy = RunDir(tmp_path / "anneal")
    shutil.copytree(run.path, copy.path)
    (copy.stage_dir("mix")).mkdir()
    (copy.stage_dir("mix") / "mix.yaml").write_text(yaml.safe_dump({"weights": {"news": 0.8, "code": 0.1, "recipes": 0.1}}))
    other = run_anneal(make_config(copy), copy, client, console(), section())
    assert other["base"]["trained_now"] and other["base"]["base_id"] != annealed[1]["base"]["base_id"]
    assert other["trained"] == 8 and other["reused"] == 0  # never the proxies of the old base


def test_disabled_is_skipped(run, client):
    assert "skipped" in run_anneal(make_config(run), run, client, console(), section(enabled=False))


def test_quality_edges_must_increase():
    with pytest.raises(ValidationError, match="strictly increasing"):
        AnnealSection(quality_edges=[0.5, 0.2])


def test_starting_from_a_state_uses_it():
    rng = np.random.default_rng(0)
    streams = {"a": rng.integers(0, 50, 6_000), "b": rng.integers(50, 100, 6_000)}
    targets = {"a": TargetSet(rng.integers(0, 50, 600), 600)}
    config = ProxyConfig(vocab_size=100, n_layers=1, d_model=32, n_heads=2, context=32, batch_size=8)
    plain = train_proxy(streams, {"a": 1, "b": 1}, targets, 8_000, config, seed=1)
    result, base = train_proxy_state(streams, {"a": 1, "b": 1}, targets, 8_000, config, seed=1)
    assert result.bpb == plain.bpb  # the same run as train_proxy, with its state kept
    assert base.tokens_trained == 8_000 and base.learning_rate == pytest.approx(config.learning_rate * config.min_lr_ratio)
    anneal = {"a": 1.0}
    continued, state = train_proxy_state(streams, anneal, targets, 2_000, config, seed=2, initial_state=base, schedule="linear_decay")
    scratch, _ = train_proxy_state(streams, anneal, targets, 2_000, config, seed=2, schedule="linear_decay",
                                   learning_rate=base.learning_rate)
    assert continued.bpb["a"] < scratch.bpb["a"] - 0.1  # 8,000 more tokens of training show
    assert state.tokens_trained == 10_000
    again, _ = train_proxy_state(streams, anneal, targets, 2_000, config, seed=2, initial_state=base, schedule="linear_decay")
    assert again.bpb == continued.bpb  # deterministic, and the base state was not changed in place
