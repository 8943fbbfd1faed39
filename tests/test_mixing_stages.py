"""The proxies and mix stages on a tiny tokenized run, with a real 2-worker Dask cluster.

The run folder is made directly: three synthetic domains, each writing from its own word list,
go through the tokenize stage's steps (DomainTokenizer, ShardWriter) with a small BPE trained on
them. Every document of ``recipes`` is placed in the training split, so that domain trains the
proxies but is no target. An evaluation text set (``quiz``) is written from the ``news`` words.
"""

import io
import json

import numpy as np
import pytest
from datatrove.data import Document
from rich.console import Console

from curation.shards import ShardWriter
from curation.tokenize import TRAIN, DomainTokenizer, split_of
from curation.tokenizer import train_bpe
from mixes.report import PREDICTED_PNG, PROXIES_PNG, REPORT_MD, WEIGHTS_PNG
from mixes.sampling import MixtureSpace, sample_mixtures
from mixes.swarm import load_proxies
from pipelines.config import ConfigError, parse_config
from pipelines.export import read_mix, training_tokens
from pipelines.mixing import run_mix, run_proxies
from pipelines.run import RunDir
from pipelines.runner import run_stage
from pipelines.stages import STAGES
from tests.runs import record_complete
from pipelines.sql import query

SEED = 0
VALIDATION_FRACTION = 0.15
LETTERS = {"news": "aeioubcdfgh", "code": "xyz_0123456789", "recipes": "lmnoprstuv"}
DOCUMENTS = {"news": 80, "code": 60, "recipes": 50}
CAP_EPOCHS = 2.0
NEWS_BOUNDS = (0.1, 0.6)


def word_list(letters: str, seed: int, size: int = 40) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(letters), size=rng.integers(3, 8))) for _ in range(size)]


def texts(words: list[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=rng.integers(40, 120))) + "." for _ in range(n)]


def documents(domain: str, domain_texts: list[str], train_only: bool) -> list[Document]:
    """Ids that keep a train-only domain out of the validation slice (the split hashes the id)."""
    ids = (f"{domain}-{i}" for i in range(10_000))
    if train_only:
        ids = (i for i in ids if split_of(i, VALIDATION_FRACTION, SEED) == TRAIN)
    return [Document(text=text, id=doc_id, metadata={"domain": domain}) for text, doc_id in zip(domain_texts, ids)]


def write_tokenized_run(run: RunDir) -> None:
    """Tokenize-stage shards, token files (two ranks) and tokenizer, as `curate tokenize` leaves them."""
    words = {domain: word_list(letters, seed) for seed, (domain, letters) in enumerate(LETTERS.items())}
    corpus = {domain: texts(words[domain], n, 10 + i) for i, (domain, n) in enumerate(DOCUMENTS.items())}
    stage = run.stage_dir("tokenize")
    all_texts = [text for domain_texts in corpus.values() for text in domain_texts]
    tokenizer = train_bpe(all_texts, 512, stage / "_tokenizer" / "tokenizer.json")
    docs = [doc for domain, domain_texts in corpus.items() for doc in documents(domain, domain_texts, domain == "recipes")]
    for rank in (0, 1):
        step = DomainTokenizer(stage / "_tokens", tokenizer.path, tokenizer.eos_token, VALIDATION_FRACTION, SEED)
        list(ShardWriter(stage).run(step.run(iter(docs[rank::2]), rank=rank), rank=rank))
    quiz = [{"question": " ".join(words["news"][i : i + 6]), "answer": words["news"][i]} for i in range(20)]
    (run.path / "quiz.jsonl").write_text("".join(json.dumps(row) + "\n" for row in quiz))


def make_config(run: RunDir, target_weights: dict | None = None, **mix):
    total = sum(training_tokens(run).values())
    return parse_config({
        "run": {"name": run.path.name, "root": str(run.path.parent), "seed": SEED},
        "proxies": {
            "model": {"n_layers": 1, "d_model": 32, "n_heads": 2, "context": 32, "batch_size": 8},
            "token_budget": 20_000,
            "count": 10,
            "target_budget": int(1.5 * total),  # caps every domain at 2 / 1.5 of its natural share
            "max_epochs": CAP_EPOCHS,
            "eval_texts": [{"name": "quiz", "path": "{run_dir}/quiz.jsonl", "fields": ["question", "answer"]}],
        },
        "mix": {"bounds": {"news": list(NEWS_BOUNDS)}, "candidates": 2_000, "top_k": 20, "validation_seeds": [101, 102],
                "target_weights": target_weights or {}, **mix},
    })


def console() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunDir:
    run = RunDir(tmp_path_factory.mktemp("runs") / "mixing")
    write_tokenized_run(run)
    return run


def through_the_runner(config, name: str, client, out: Console) -> dict:
    """The stage as `curate <name>` runs it (on a config that hides what it does not declare); its result."""
    run_stage(config, STAGES[name], client, out)
    return RunDir(config.run_dir).read_manifest()["stages"][name]["result"]


@pytest.fixture(scope="module")
def proxied(run, client):
    config, out = make_config(run), console()
    record_complete(config, "tokenize", sum(DOCUMENTS.values()))
    return config, through_the_runner(config, "proxies", client, out), out.file.getvalue()


@pytest.fixture(scope="module")
def mixed(proxied, run, client):
    config = proxied[0]
    return config, through_the_runner(config, "mix", client, console())


def test_proxies_train_every_sampled_mixture_on_every_target(proxied, run):
    config, result, printed = proxied
    proxies = load_proxies(run.stage_dir("proxies") / "proxies.parquet")
    assert list(proxies["mixture_id"]) == [f"mix-{i:04d}" for i in range(10)] and (proxies["seed"] == 0).all()
    tokens = training_tokens(run)
    space = MixtureSpace.from_tokens(tokens, int(1.5 * sum(tokens.values())), CAP_EPOCHS)
    np.testing.assert_allclose(proxies[[f"w_{d}" for d in space.domains]], sample_mixtures(space, 10, seed=SEED))
    assert {"w_recipes", "bpb_news", "bpb_code", "bpb_quiz"} <= set(proxies.columns)
    assert "bpb_recipes" not in proxies.columns  # no validation documents: trained on, not measured
    assert proxies.filter(like="bpb_").notna().all().all() and (proxies["tokens"] == 20_000).all()
    assert result["proxies"] == result["trained"] == 10 and result["tokens_per_proxy"] == 20_000
    assert result["domains"] == tokens and set(result["targets"]) == {"news", "code", "quiz"}
    quiz = [json.loads(line) for line in (run.path / "quiz.jsonl").read_text().splitlines()]
    assert result["targets"]["quiz"]["bytes"] == sum(len(f"{row['question']}\n{row['answer']}".encode()) for row in quiz)
    assert "proxies: 10/10" in printed
    json.dumps(result, allow_nan=False)  # the manifest takes it as strict JSON


def test_a_rerun_resumes_and_trains_nothing(proxied, run, client):
    config = proxied[0]
    path = run.stage_dir("proxies") / "proxies.parquet"
    before = path.stat().st_mtime_ns
    again = run_proxies(config, run, client, console())
    assert again["trained"] == 0 and again["proxies"] == 10
    assert path.stat().st_mtime_ns == before


def test_mix_yaml_is_an_export_mix_within_the_bounds_and_the_cap(mixed, run):
    config, result = mixed
    mix = read_mix(str(run.mix_file()))
    weights = mix["weights"]
    tokens = training_tokens(run)
    assert set(weights) == set(tokens) and sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert NEWS_BOUNDS[0] - 1e-9 <= weights["news"] <= NEWS_BOUNDS[1] + 1e-9
    budget = int(1.5 * sum(tokens.values()))
    assert mix["token_budget"] == budget
    for domain, weight in weights.items():
        assert 0 <= weight * budget / tokens[domain] <= CAP_EPOCHS + 1e-6, domain
    assert mix["regressor"] in {"linear", "mixing_law", "boosting"} and mix["regressor"] == result["regressor"]
    assert mix["cv_spearman"] == result["regressor_scores"][mix["regressor"]]
    assert sum(mix["natural_weights"].values()) == pytest.approx(1.0)
    validation = mix["validation"]
    assert validation["seeds"] == [101, 102] and set(validation["chosen"]["measured"]) == {101, 102}
    assert np.isfinite([result["measured_objective"], result["natural_measured_objective"], result["predicted_objective"]]).all()
    assert result["natural_spread"]["range"] >= 0 and result["natural_spread"]["std"] >= 0
    assert isinstance(result["beats_natural_beyond_spread"], bool)
    json.dumps(result, allow_nan=False)  # the manifest takes it as strict JSON


def test_report_plots_and_views(mixed, run):
    out = run.stage_dir("mix")
    for name in (PREDICTED_PNG, WEIGHTS_PNG, PROXIES_PNG):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / REPORT_MD).read_text()
    assert "## Validation proxies" in report and "| 101 |" in report
    assert query(run.path, "SELECT count(*) FROM proxies")[1] == [(10,)]
    columns, rows = query(run.path, "SELECT domain, natural_weight, chosen_weight, top_k_weight FROM mix ORDER BY domain")
    assert [row[0] for row in rows] == ["code", "news", "recipes"]
    assert sum(row[2] for row in rows) == pytest.approx(1.0) and run.mix_weights.exists()


@pytest.mark.parametrize(
    "bounds, message",
    [
        ({"nope": [0.0, 0.5]}, r"mix\.bounds\.nope: no such domain"),
        ({"code": [0.6, 0.2]}, r"mix\.bounds\.code: expected 0 <= min"),
    ],
)
def test_bad_bounds_name_the_domain(run, client, bounds, message):
    config = make_config(run, bounds=bounds)
    with pytest.raises(ConfigError, match=message):
        run_mix(config, run, client, console())


def test_unknown_target_weights_fail_before_any_training(run, client):
    config = make_config(run, target_weights={"news": 1.0, "recipes": 1.0})
    with pytest.raises(ConfigError, match=r"mix\.target_weights: unknown target\(s\) \['recipes'\]"):
        run_proxies(config, run, client, console())
