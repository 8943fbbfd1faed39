"""The classify stage's models as the driver gets them: trained from SQL, reused, retrained when damaged.

Small synthetic examples (two vocabularies) and small models keep each training to a
second or two; fastText and scikit-learn run for real.
"""

import logging
import random
import shutil

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from classifiers.domain import DomainClassifier
from classifiers.quality import QualityScorer
from curation.shards import ShardWriter
from curation.errors import UserError
from pipelines.classify import check_classifier_params, classify_report, domain_model_path, quality_model_path
from pipelines.config import ConfigError, parse_config
from pipelines.run import RunDir

EXAMPLES = "read_parquet('{run_dir}/examples.parquet')"
QUALITY = {
    "positives": f"select text from {EXAMPLES} where label = 'wiki'",
    "negatives": f"select text from {EXAMPLES} where label = 'spam'",
    "params": {"epoch": 5, "dim": 8, "min_count": 1, "bucket": 2000},
}
DOMAIN = {"training": f"select text, label from {EXAMPLES}", "params": {"n_features": 1024}}
VOCABULARIES = {
    "wiki": "history river century located population university founded region species".split(),
    "spam": "cheap click free offer winner prize casino bonus discount".split(),
}


@pytest.fixture
def run(tmp_path) -> RunDir:
    """A run folder holding 40 labelled examples of each vocabulary."""
    run = RunDir(tmp_path / "runs" / "test")
    run.path.mkdir(parents=True)
    rng = random.Random(0)
    rows = [(" ".join(rng.choices(words, k=30)), label) for label, words in VOCABULARIES.items() for _ in range(40)]
    pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [label for _, label in rows]}), run.path / "examples.parquet")
    return run


def config_for(run: RunDir, quality: dict | None = None, domain: dict | None = None):
    classify = {"quality": QUALITY | (quality or {}), "domain": DOMAIN | (domain or {})}
    return parse_config({"run": {"root": str(run.path.parent), "name": run.path.name}, "classify": classify})


def retraining_notes(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "pipelines.classify"]


def test_a_truncated_quality_model_is_retrained_with_a_note(run, caplog):
    config = config_for(run)
    model = quality_model_path(config, run)
    trained = model.read_bytes()
    assert quality_model_path(config, run) == model and retraining_notes(caplog) == []  # an intact model is reused

    model.write_bytes(trained[: len(trained) // 2])  # what a kill or a full disk left before models were written atomically
    with caplog.at_level(logging.WARNING, logger="pipelines.classify"):
        assert quality_model_path(config, run) == model

    [note] = retraining_notes(caplog)
    assert note == f"{model}: it holds {len(trained) // 2} bytes where its report records {len(trained)}; retraining it"
    assert model.read_bytes() == trained  # the same seed trains the same model
    assert 0.0 <= QualityScorer(model).score("cheap click free offer") < 0.5


def test_a_domain_model_that_does_not_load_is_retrained_with_a_note(run, caplog):
    config = config_for(run)
    model = domain_model_path(config, run)
    size = model.stat().st_size

    model.write_bytes(b"\0" * size)  # the size its report records, but not a model
    with caplog.at_level(logging.WARNING, logger="pipelines.classify"):
        domain_model_path(config, run)
    model.write_bytes(model.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="pipelines.classify"):
        domain_model_path(config, run)

    does_not_load, cut_short = retraining_notes(caplog)
    assert does_not_load.startswith(f"{model}: it does not load (") and does_not_load.endswith("); retraining it")
    assert cut_short == f"{model}: it holds 100 bytes where its report records {size}; retraining it"
    assert "\n" not in does_not_load
    assert DomainClassifier(model).predict(["history river century"])[0][0] == "wiki"


def test_a_model_without_its_report_is_retrained(run, caplog):
    config = config_for(run)
    model = domain_model_path(config, run)
    model.with_name("domain.json").unlink()  # training stopped between the model and its report

    with caplog.at_level(logging.WARNING, logger="pipelines.classify"):
        domain_model_path(config, run)

    assert retraining_notes(caplog) == [f"{model}: it has no report domain.json: its training did not finish; retraining it"]
    assert model.with_name("domain.json").exists()


def test_a_one_label_domain_query_names_the_key(run):
    config = config_for(run, domain={"training": f"select text, label from {EXAMPLES} where label = 'spam'"})
    with pytest.raises(ConfigError) as caught:
        domain_model_path(config, run)
    assert str(caught.value) == (
        "classify.domain.training: the query returned only label 'spam': domain training needs at least two labels"
    )
    assert isinstance(caught.value, UserError)


def test_too_few_quality_examples_name_the_query(run):
    config = config_for(run, quality={"negatives": f"select text from {EXAMPLES} where label = 'spam' limit 12"})
    with pytest.raises(ConfigError, match=r"^classify\.quality\.negatives: the query returned 12 examples, fewer than min_examples \(30\)"):
        quality_model_path(config, run)
    assert not (run.stage_dir("classify") / "_models" / "quality" / "quality.ftz").exists()
    held_out = {"negatives": f"select text from {EXAMPLES} where label = 'spam' limit 6", "min_examples": 5,
                "params": QUALITY["params"] | {"heldout_fraction": 0.1}}  # 6 is enough for the floor, not to hold 1 in 10 out
    with pytest.raises(ConfigError, match=r"^classify\.quality\.negatives: the query returned 6 negatives, too few: "):
        quality_model_path(config_for(run, quality=held_out), run)


def test_a_weak_quality_model_is_refused_unless_allowed_and_then_flagged(run, caplog):
    # half the negatives are positives too: no model ranks every held-out positive first
    same = {"negatives": f"(select text from {EXAMPLES} where label = 'wiki' limit 20) union all "
                         f"(select text from {EXAMPLES} where label = 'spam' limit 20)", "min_roc_auc": 0.99}
    with pytest.raises(ConfigError) as caught:
        quality_model_path(config_for(run, quality=same), run)
    assert str(caught.value).startswith("classify.quality: the model is weak: held-out ROC-AUC 0.")
    assert "< min_roc_auc 0.99 on 16 held-out examples" in str(caught.value) and "allow_weak: true" in str(caught.value)
    allowed = config_for(run, quality=same | {"allow_weak": True})
    with caplog.at_level(logging.WARNING, logger="pipelines.classify"):
        assert quality_model_path(allowed, run).exists()  # the model trained above, reused
    assert any("used because allow_weak is set" in note for note in retraining_notes(caplog))
    report = classify_report(allowed, run)
    assert report["note"].startswith("WARNING: quality the model is weak") and report["warnings"]
    shutil.rmtree(run.models_dir("quality"))
    quality_model_path(config_for(run), run)  # what the stage's plan trains before its ranks run
    assert classify_report(config_for(run), run) == {}  # a sound model (trained anew): nothing to say


@pytest.mark.parametrize(
    ("quality", "domain", "message"),
    [
        (
            {"epochz": 3},
            {},
            "classify.quality.params: unknown key 'epochz' (did you mean 'epoch'?); QualityParams takes [epoch, lr, ",
        ),
        ({}, {"n_feature": 8}, "classify.domain.params: unknown key 'n_feature' (did you mean 'n_features'?); DomainParams takes ["),
        ({"epoch": "three"}, {}, "classify.quality.params.epoch: Input should be a valid integer"),
        ({"heldout_fraction": 2}, {}, "classify.quality.params: heldout_fraction must be between 0 and 1, got 2"),
        ({}, {"word_ngrams": [1, 2, 3]}, "classify.domain.params.word_ngrams: Tuple should have at most 2 items"),
        ({}, {"word_ngrams": [2, 1]}, "classify.domain.params: word_ngrams must be a range [low, high]"),
    ],
)
def test_classifier_params_problems_name_the_key(run, quality, domain, message):
    config = config_for(run, quality={"params": QUALITY["params"] | quality}, domain={"params": DOMAIN["params"] | domain})
    with pytest.raises(ConfigError) as checked:
        check_classifier_params(config)
    assert str(checked.value).startswith(message) and "\n" not in str(checked.value)
    with pytest.raises(ConfigError) as staged:  # the classify stage says the same, before any training
        (quality_model_path if quality else domain_model_path)(config, run)
    assert str(staged.value) == str(checked.value)


def test_valid_classifier_params_pass(run):
    check_classifier_params(config_for(run, quality={"params": {"quantize": False, "word_ngrams": 1}}))


def test_domain_labels_without_ground_truth_come_from_declared_sources_and_url_rules(run):
    rng = random.Random(1)
    declared = [Document(text=" ".join(rng.choices(VOCABULARIES["wiki"], k=30)), id=f"dump/{i}",
                         metadata={"source": "dump", "domain": "wiki"}) for i in range(40)]
    hosts = ["https://forum.example.stackexchange.com/q/", "https://www.github.com/org/repo/", "https://blog.example.net/", "https://other.org/"]
    crawled = [Document(text=" ".join(rng.choices(VOCABULARIES["spam"], k=30)), id=f"web/{i}",
                        metadata={"source": "crawl", "domain": "web", "url": f"{hosts[i % 4]}{i}"}) for i in range(120)]
    list(ShardWriter(run.stage_dir("dedup")).run(iter(declared + crawled)))
    rules = {"*.stackexchange.com": "forum", "github.com": "code", "blog.*": "blog"}

    def weakly_labelled(**settings):
        domain = {"params": {"n_features": 1024}, "url_rules": rules} | settings
        return parse_config({"run": {"root": str(run.path.parent), "name": run.path.name}, "classify": {"domain": domain}})

    report = json.loads(domain_model_path(weakly_labelled(max_per_label=25, min_per_label=20), run).with_name("domain.json").read_text())
    # wiki from the source that declares it (40), forum / code / blog by host rule (30 each, www. ignored),
    # other.org matches no rule; each sampled down to 25
    assert report["data"]["labels"] == {"blog": 25, "code": 25, "forum": 25, "wiki": 25}
    shutil.rmtree(run.models_dir("domain"))
    with pytest.raises(ConfigError, match=r"^classify\.domain\.url_rules: the query returned only label 'wiki'"):
        domain_model_path(weakly_labelled(min_per_label=35), run)  # only the declared domain has 35 examples
