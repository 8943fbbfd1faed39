"""The proxies and mix stages on a tiny tokenized run, with a real 2-worker Dask cluster.

The run folder is made directly: three synthetic domains, each writing from its own word list,
go through the tokenize stage's steps (DomainTokenizer, ShardWriter) with a small BPE trained on
them. Every document of ``recipes`` is placed in the training split, so that domain trains the
proxies but is no target. An evaluation text set (``quiz``) is written from the ``news`` words, and an
evaluation task (``recipe_quiz``) whose questions are ``news`` words and whose answers are
``recipes`` words: only that domain teaches the answers.
"""

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from datatrove.data import Document
from rich.console import Console

from curation.shards import ShardWriter
from curation.tokenize import TRAIN, DomainTokenizer, split_of
from curation.tokenizer import train_bpe
from mixes.report import PREDICTED_PNG, PROXIES_PNG, REPORT_MD, WEIGHTS_PNG
from mixes.sampling import MixtureSpace, sample_mixtures
from mixes.swarm import load_proxies
from curation.errors import UserError
from pipelines.config import ConfigError, parse_config
from pipelines.export import read_mix, run_export, training_tokens
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
    write_jsonl(run.path / "quiz.jsonl", quiz)
    rng = np.random.default_rng(5)
    recipe_quiz = [
        {"question": " ".join(rng.choice(words["news"], 6)), "answer": " ".join(rng.choice(words["recipes"], 10))}
        for _ in range(30)
    ]
    write_jsonl(run.path / "recipe_quiz.jsonl", recipe_quiz)
    pick = [
        {"question": " ".join(rng.choice(words["news"], 6)),
         "options": [" ".join(rng.choice(words[domain], 4)) for domain in ("code", "recipes", "news")], "gold": 1}
        for _ in range(20)
    ]
    write_jsonl(run.path / "pick.jsonl", pick)


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


RECIPE_QUIZ = {"name": "recipe_quiz", "path": "{run_dir}/recipe_quiz.jsonl", "kind": "answer", "prompt": "{question} ?", "answer": "answer"}
PICK = {"name": "pick", "path": "{run_dir}/pick.jsonl", "kind": "choice", "prompt": "{question} ?", "choices": "options", "answer": "gold"}


def make_config(run: RunDir, target_weights: dict | None = None, tasks: tuple = (RECIPE_QUIZ,), export: dict | None = None, **mix):
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
            "tasks": list(tasks),
        },
        "mix": {"bounds": {"news": list(NEWS_BOUNDS)}, "candidates": 2_000, "top_k": 20, "validation_seeds": [101, 102],
                "target_weights": target_weights or {}, **mix},
        "export": {"sequence_length": 32, "global_batch_size": 4, **(export or {})},
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
    assert {"w_recipes", "bpb_news", "bpb_code", "bpb_quiz", "bpb_recipe_quiz"} <= set(proxies.columns)
    assert "bpb_recipes" not in proxies.columns  # no validation documents: trained on, not measured
    assert proxies.filter(like="bpb_").notna().all().all() and (proxies["tokens"] == 20_000).all()
    assert result["proxies"] == result["trained"] == 10 and result["tokens_per_proxy"] == 20_000
    assert result["domains"] == tokens and set(result["targets"]) == {"news", "code", "quiz", "recipe_quiz"}
    assert result["targets"]["recipe_quiz"]["kind"] == "answer" and result["targets"]["recipe_quiz"]["items"] == 30
    quiz = [json.loads(line) for line in (run.path / "quiz.jsonl").read_text().splitlines()]
    assert result["targets"]["quiz"]["bytes"] == sum(len(f"{row['question']}\n{row['answer']}".encode()) for row in quiz)
    assert "proxies: 10/10" in printed
    json.dumps(result, allow_nan=False)  # the manifest takes it as strict JSON


def test_a_rerun_resumes_and_trains_nothing(proxied, run, client):
    config = proxied[0]
    path = run.stage_dir("proxies") / "proxies.parquet"
    before = load_proxies(path)
    again = run_proxies(config, run, client, console())
    assert (again["trained"], again["scored"], again["reused"], again["proxies"]) == (0, 0, 10, 10)
    pd.testing.assert_frame_equal(load_proxies(path), before)


def test_an_added_task_is_scored_on_the_stored_proxies_without_training(proxied, run, client):
    config = make_config(run, tasks=(RECIPE_QUIZ, PICK))
    printed = console()
    result = through_the_runner(config, "proxies", client, printed)  # stale: proxies.tasks changed
    assert (result["trained"], result["scored"], result["reused"]) == (0, 10, 0)
    assert "stale" in printed.file.getvalue() and "proxies.tasks" in printed.file.getvalue()
    proxies = load_proxies(run.stage_dir("proxies") / "proxies.parquet")
    first = proxied[1]
    assert proxies["acc_pick"].between(0, 1).all() and proxies["bpb_pick"].notna().all()
    assert result["seconds"] < first["seconds"] / 3  # evaluation only
    assert through_the_runner(make_config(run), "proxies", client, console())["trained"] == 0  # and back


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


def test_a_task_only_one_domain_teaches_up_weights_that_domain(mixed, run, client):
    config = make_config(run, target_weights={"recipe_quiz": 1.0})
    result = run_mix(config, run, client, console())
    natural, chosen = result["natural_weights"]["recipes"], result["weights"]["recipes"]
    cap = pd.read_parquet(run.mix_weights).set_index("domain").loc["recipes", "max_weight"]  # the repetition cap
    assert cap == pytest.approx(natural * CAP_EPOCHS / 1.5, rel=0.02)  # counted in whole exportable sequences
    assert chosen == pytest.approx(cap, abs=1e-3) and chosen > natural + 0.1  # as much recipes as the cap allows
    proxies = load_proxies(run.stage_dir("proxies") / "proxies.parquet")
    spearman = proxies["w_recipes"].corr(proxies["bpb_recipe_quiz"], method="spearman")
    assert spearman < -0.6  # more recipes, fewer bits for the answers
    assert result["measured_objective"] < result["natural_measured_objective"]


@pytest.fixture(scope="module")
def shuffled_run(mixed, run, client, tmp_path_factory):
    """A copy of the run whose proxies' targets are shuffled across mixtures: nothing left to rank."""
    copy = RunDir(tmp_path_factory.mktemp("shuffled") / "mixing")
    shutil.copytree(run.path, copy.path)
    path = copy.proxies_table()
    proxies = load_proxies(path)
    measured = [c for c in proxies.columns if c.startswith(("bpb_", "acc_"))]
    order = np.random.default_rng(3).permutation(len(proxies))
    proxies[measured] = proxies[measured].to_numpy()[order]
    proxies.to_parquet(path, index=False)
    config = make_config(copy, export={"mix": "{run_dir}/mix/mix.yaml"})
    printed = console()
    return copy, config, run_mix(config, copy, client, printed), printed.file.getvalue()


def test_the_guard_fires_on_shuffled_targets(shuffled_run):
    copy, _, result, printed = shuffled_run
    mix = read_mix(str(copy.mix_file()))
    assert result["recommended"] is False and mix["recommended"] is False
    assert any("CV Spearman" in reason for reason in mix["not_recommended_because"]), mix["not_recommended_because"]
    assert mix["cv_spearman"] < 0.5 and "NOT RECOMMENDED" in printed
    assert "## Verdict: NOT recommended" in (copy.stage_dir("mix") / REPORT_MD).read_text()


def test_export_refuses_a_mix_that_is_not_recommended_unless_told(shuffled_run, client):
    copy, config, _, _ = shuffled_run
    with pytest.raises(UserError, match=r"is not recommended: the chosen regressor .* --force"):
        run_export(config, copy, client, console())
    forced = config.model_copy(update={"export": config.export.model_copy(update={"not_recommended": "export"})})
    exported = run_export(forced, copy, client, console())
    assert exported["weights"] == pytest.approx(read_mix(str(copy.mix_file()))["weights"])
    natural = config.model_copy(update={"export": config.export.model_copy(update={"not_recommended": "natural"})})
    printed = console()
    fallback = run_export(natural, copy, client, printed)
    assert fallback["mix"].startswith("natural") and "exporting the natural mix instead" in printed.file.getvalue()
    tokens = training_tokens(copy)
    assert fallback["weights"] == {domain: count for domain, count in tokens.items()}


def test_transfer_trains_larger_models_and_reports_the_rank_correlation(mixed, run, client):
    transfer = {"enabled": True, "parameter_factor": 4.0, "token_factor": 2.0, "sampled": 2}
    config = make_config(run, transfer=transfer)
    result = run_mix(config, run, client, console())
    summary = read_mix(str(run.mix_file()))["transfer"]
    assert summary == result["transfer"]
    assert summary["labels"] == ["chosen", "natural", "sampled-0", "sampled-1"] and summary["models"]["trained"] == 4
    assert summary["model"]["d_model"] == 64 and summary["tokens"] == 40_000  # 4x the 1 x 32 proxy's parameters
    assert summary["spearman"] is None or -1 <= summary["spearman"] <= 1
    frame = load_proxies(run.stage_dir("mix") / "_transfer" / "proxies.parquet")
    assert sorted(frame["mixture_id"]) == sorted(summary["labels"]) and (frame["tokens"] == 40_000).all()
    objective = frame.set_index("mixture_id").filter(like="bpb_").mean(axis=1)  # equal target weights
    assert summary["measured"] == pytest.approx([objective[label] for label in summary["labels"]])
    report = (run.stage_dir("mix") / REPORT_MD).read_text()
    assert "## Transfer to a larger model" in report and (run.stage_dir("mix") / "transfer.png").exists()
    again = run_mix(config, run, client, console())
    assert again["transfer"]["models"] == {"trained": 0, "scored": 0, "reused": 4}  # stored like proxies
