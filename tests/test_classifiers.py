"""Quality (fastText) and domain (scikit-learn) classifiers, trained on the seeded demo corpus.

The demo corpus's ground truth labels every page, so the training sets are built as a
pipeline would build them from SQL: quality after the DCLM / FineWeb-Edu recipe
(encyclopedic pages as positives; spam, boilerplate and a random sample of other
pages as negatives), domain from the page kinds. Duplicates are left out: a copy of a
training page in the held-out part would flatter the metrics.
"""

import json
import os
import pickle
import random

import numpy as np
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from classifiers.domain import DomainClassifier, DomainDataError, DomainParams, DomainStep, train_domain
from classifiers.quality import (
    BELOW_THRESHOLD,
    POSITIVE,
    QualityDataError,
    QualityParams,
    QualityScorer,
    QualityStep,
    top_fraction_threshold,
    train_quality,
    write_training_file,
)
from classifiers.text import NUMBER_PLACEHOLDER, normalize_text, normalize_texts
from curation.errors import UserError
from curation.shards import REMOVED_DIR, RemovedSink
from demo import write_demo_corpus

SCALE = 0.3
SEED = 0
DOMAINS = ("wiki", "code", "docs", "forum", "web")
# small and quick: a quantized model of a few hundred KB
QUALITY_PARAMS = QualityParams(epoch=20, lr=0.5, dim=16, min_count=1, bucket=20_000, quantize=True, cutoff=5_000)
DOMAIN_PARAMS = DomainParams(n_features=2**16)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> list[dict]:
    """English HTML pages of the demo corpus's ground truth, without duplicates."""
    corpus = tmp_path_factory.mktemp("demo")
    write_demo_corpus(corpus, scale=SCALE, seed=SEED)
    rows = pq.read_table(corpus / "ground_truth.parquet").to_pylist()
    return [row for row in rows if row["source"] == "web" and row["lang"] == "en" and row["dup_kind"] is None]


def quality_sets(pages: list[dict], seed: int = SEED) -> tuple[list[str], list[str]]:
    positives = [row["text"] for row in pages if row["kind"] == "wiki"]
    junk = [row["text"] for row in pages if row["is_spam"] or row["is_boilerplate"]]
    others = [row["text"] for row in pages if row["domain"] in ("code", "docs", "forum")]
    sample = random.Random(seed).sample(others, len(positives) - len(junk))
    return positives, junk + sample


def domain_set(pages: list[dict]) -> tuple[list[str], list[str]]:
    rows = [row for row in pages if row["domain"] in DOMAINS]
    return [row["text"] for row in rows], [row["domain"] for row in rows]


@pytest.fixture(scope="module")
def quality(pages, tmp_path_factory):
    positives, negatives = quality_sets(pages)
    return train_quality(positives, negatives, tmp_path_factory.mktemp("quality"), QUALITY_PARAMS, seed=SEED)


@pytest.fixture(scope="module")
def domain(pages, tmp_path_factory):
    texts, labels = domain_set(pages)
    return train_domain(texts, labels, tmp_path_factory.mktemp("domain"), DOMAIN_PARAMS, seed=SEED)


def page_documents(pages: list[dict], kind: str, count: int, domain: str | None = "web") -> list[Document]:
    metadata = {} if domain is None else {"domain": domain}
    rows = [row for row in pages if row["kind"] == kind][:count]
    return [Document(text=row["text"], id=row["doc_key"], metadata=dict(metadata)) for row in rows]


def removed_rows(stage_dir, reason: str) -> list[dict]:
    return pq.read_table(stage_dir / REMOVED_DIR / reason / "00000.parquet").to_pylist()


# --- normalization -------------------------------------------------------------------


def test_normalization_folds_case_unicode_numbers_and_whitespace():
    text = "The  ＡＰＩ returned\n\n3,141.59 items in 2024!!!\tSee  __label__hq"
    assert normalize_text(text) == f"the api returned {NUMBER_PLACEHOLDER} items in {NUMBER_PLACEHOLDER} !!! see __ label __ hq"
    assert normalize_text(text, max_words=3) == "the api returned"
    assert normalize_text("") == ""
    with pytest.raises(ValueError, match="max_words"):
        normalize_text(text, max_words=0)


def test_normalization_is_a_fixed_point(pages):
    for row in pages:
        once = normalize_text(row["text"], max_words=200)
        assert normalize_text(once, max_words=200) == once
        assert "\n" not in once and "  " not in once


# --- quality -------------------------------------------------------------------------


def test_quality_report_measures_the_heldout_part(quality, pages):
    positives, negatives = quality_sets(pages)
    assert quality.roc_auc >= 0.9
    assert quality.model_path.name == "quality.ftz" and quality.model_path.stat().st_size < 2**20
    saved = json.loads(quality.report_path.read_text())
    assert saved == json.loads(json.dumps(quality.as_json()))
    assert saved["model_bytes"] == quality.model_path.stat().st_size
    held = saved["heldout"]
    assert held["positives"] + held["negatives"] == sum(saved["data"]["heldout"].values())
    assert held["positives"] == pytest.approx(0.2 * len(positives), abs=1)
    assert saved["data"]["positives"] == len(positives) and saved["data"]["negatives"] == len(negatives)
    assert len(saved["data"]["sha256"]) == 64
    assert saved["params"]["word_ngrams"] == QUALITY_PARAMS.word_ngrams and saved["seed"] == SEED
    assert {"precision", "recall", "f1", "threshold"} <= held.keys() and held["threshold"] == QUALITY_PARAMS.threshold


def test_quality_scorer_separates_wiki_from_spam(quality, pages):
    scorer = QualityScorer(quality.model_path)
    assert scorer.max_words == QUALITY_PARAMS.max_words  # read back from quality.json
    wiki = [row["text"] for row in pages if row["kind"] == "wiki"][:20]
    spam = [row["text"] for row in pages if row["is_spam"]][:20]
    assert scorer.scores(wiki).min() > scorer.scores(spam).max()
    assert 0.0 <= scorer.score(spam[0]) <= 1.0


def test_quality_step_drops_below_threshold_into_the_ledger(quality, pages, tmp_path):
    docs = page_documents(pages, "wiki", 10) + page_documents(pages, "spam", 10) + page_documents(pages, "boilerplate", 5)
    scorer = QualityScorer(quality.model_path)
    expected_kept = {doc.id for doc in docs if round(scorer.score(doc.text), 6) >= 0.5}
    step = QualityStep(quality.model_path, RemovedSink(tmp_path), threshold=0.5)

    kept = list(step.run(iter(docs), rank=0))

    assert {doc.id for doc in kept} == expected_kept
    assert all(doc.metadata["quality_score"] >= 0.5 for doc in kept)
    removed = removed_rows(tmp_path, BELOW_THRESHOLD.label)
    assert len(kept) + len(removed) == len(docs)
    assert {row["id"] for row in removed} == {doc.id for doc in docs[10:]}  # the spam and boilerplate pages
    assert all(row["reason"] == BELOW_THRESHOLD.label and row["detail"].startswith("quality_score ") for row in removed)
    assert all(row["quality_score"] < 0.5 for row in removed)
    assert step.stats["dropped_below_threshold"].total == len(removed)


def test_quality_step_annotates_only_without_threshold(quality, pages):
    docs = page_documents(pages, "wiki", 5) + page_documents(pages, "spam", 5)
    scorer = QualityScorer(quality.model_path)

    out = list(QualityStep(quality.model_path).run(iter(docs)))

    assert [doc.id for doc in out] == [doc.id for doc in docs]
    assert [doc.metadata["quality_score"] for doc in out] == [round(scorer.score(doc.text), 6) for doc in docs]


def test_quality_step_keeps_a_top_fraction_from_a_sample_cutoff(quality, pages, tmp_path):
    docs = page_documents(pages, "wiki", 20) + page_documents(pages, "forum", 20) + page_documents(pages, "spam", 20)
    sample = [doc.text for doc in docs[::2]]
    step = QualityStep.keeping_top_fraction(quality.model_path, 0.5, sample, RemovedSink(tmp_path))
    assert step.threshold == top_fraction_threshold(QualityScorer(quality.model_path).scores(sample), 0.5)

    kept = list(step.run(iter(docs), rank=0))

    assert 0.35 <= len(kept) / len(docs) <= 0.65
    assert len(kept) + len(removed_rows(tmp_path, BELOW_THRESHOLD.label)) == len(docs)


def test_quality_step_checks_its_arguments(quality):
    with pytest.raises(ValueError, match="RemovedSink"):
        QualityStep(quality.model_path, threshold=0.5)
    with pytest.raises(ValueError, match="top fraction"):
        top_fraction_threshold([0.1, 0.9], 0.0)


def test_quality_step_travels_without_its_model_and_shares_the_loaded_one(quality, pages):
    step = QualityStep(quality.model_path)
    list(step.run(iter(page_documents(pages, "wiki", 1))))
    shipped = pickle.dumps(step)  # as Dask ships it to a worker, once per rank
    assert len(shipped) < 10_000 < quality.model_bytes
    copy = pickle.loads(shipped)
    assert copy.scorer.model is step.scorer.model  # loaded once in this process, not once per copy
    assert next(copy.run(iter(page_documents(pages, "wiki", 1)))).metadata["quality_score"] > 0.5


# --- domain --------------------------------------------------------------------------


def test_domain_report_measures_the_heldout_part(domain, pages):
    texts, labels = domain_set(pages)
    assert domain.macro_f1 >= 0.9
    assert sorted(domain.labels) == sorted(DOMAINS)
    assert domain.confusion_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(domain.report_path.read_text())
    assert saved["heldout"]["macro_f1"] == domain.macro_f1
    assert set(saved["heldout"]["per_class"]) == set(DOMAINS)
    matrix = np.array(saved["heldout"]["confusion_matrix"])
    assert matrix.shape == (5, 5) and matrix.sum() == sum(saved["data"]["heldout"].values())
    assert saved["data"]["labels"] == {label: labels.count(label) for label in DOMAINS}
    assert saved["data"]["examples"] == len(texts) and saved["seed"] == SEED
    assert saved["model_bytes"] == domain.model_path.stat().st_size


def test_domain_step_fills_only_unassigned_domains(domain, pages):
    unassigned = (
        page_documents(pages, "code", 10, domain="web")
        + page_documents(pages, "docs", 10, domain=None)
        + page_documents(pages, "forum", 10, domain="unknown")
    )
    truth = {row["doc_key"]: row["domain"] for row in pages}
    specific = page_documents(pages, "wiki", 1, domain="papers") + page_documents(pages, "wiki", 1, domain="synthetic/qa")
    docs = unassigned[:15] + specific + unassigned[15:]
    step = DomainStep(domain.model_path, batch_size=4)
    predicted = dict(zip([doc.id for doc in unassigned], step.classifier.predict([doc.text for doc in unassigned])))

    out = list(step.run(iter(docs)))

    assert [doc.id for doc in out] == [doc.id for doc in docs]
    filled = [doc for doc in out if doc.id in predicted]
    for doc in filled:
        label, probability = predicted[doc.id]
        assert (doc.metadata["domain"], doc.metadata["domain_score"]) == (label, round(probability, 6))
    assert sum(doc.metadata["domain"] == truth[doc.id] for doc in filled) >= 0.9 * len(filled)
    assert [doc.metadata["domain"] for doc in out[15:17]] == ["papers", "synthetic/qa"]
    assert all("domain_score" not in doc.metadata for doc in out[15:17])
    assert step.stats["source_domain"].total == 2


def test_domain_step_falls_back_below_min_probability(domain, pages):
    docs = page_documents(pages, "forum", 10) + page_documents(pages, "contaminated", 5) + page_documents(pages, "code", 5)
    predictions = DomainStep(domain.model_path).classifier.predict([doc.text for doc in docs])
    cut = float(np.median([probability for _, probability in predictions]))  # half of the pages fall below it

    out = list(DomainStep(domain.model_path, min_probability=cut, fallback="unclassified").run(iter(docs)))

    expected = [label if probability >= cut else "unclassified" for label, probability in predictions]
    assert [doc.metadata["domain"] for doc in out] == expected
    assert [doc.metadata["domain_score"] for doc in out] == [round(probability, 6) for _, probability in predictions]
    assert 0 < expected.count("unclassified") < len(docs)


def test_domain_step_travels_without_its_model_and_shares_the_loaded_one(domain, pages):
    step = DomainStep(domain.model_path)
    list(step.run(iter(page_documents(pages, "code", 1))))
    shipped = pickle.dumps(step)
    assert len(shipped) < 10_000 < domain.model_bytes
    copy = pickle.loads(shipped)
    assert copy.classifier.model is step.classifier.model
    assert next(copy.run(iter(page_documents(pages, "code", 1)))).metadata["domain"] == "code"


def test_a_model_replaced_on_disk_is_loaded_again(domain, tmp_path):
    """The per-process cache is keyed by the file's size and time, so a retrained model is not stale."""
    copied = tmp_path / "domain.joblib"
    copied.write_bytes(domain.model_path.read_bytes())
    first = DomainClassifier(copied).model
    assert DomainClassifier(copied).model is first
    os.utime(copied, ns=(copied.stat().st_atime_ns, copied.stat().st_mtime_ns + 1_000_000))
    assert DomainClassifier(copied).model is not first


# --- shared ---------------------------------------------------------------------------


def test_training_and_application_share_the_normalization(quality, domain, pages, tmp_path):
    text = next(row["text"] for row in pages if row["kind"] == "wiki")
    variant = "  " + text.upper().replace(" ", "\n \t") + "  "
    normalized = normalize_text(text, QUALITY_PARAMS.max_words)

    lines = write_training_file(tmp_path / "train.txt", [text], [POSITIVE], QUALITY_PARAMS.max_words).read_text()
    assert lines == f"{POSITIVE} {normalized}\n"
    scorer = QualityScorer(quality.model_path)
    assert scorer.score(text) == scorer.score(variant) == scorer.score(normalized)

    model = DomainStep(domain.model_path).classifier.model
    normalize = model.named_steps["normalize"]
    assert normalize.func is normalize_texts and normalize.kw_args == {"max_words": DOMAIN_PARAMS.max_words}
    probabilities = model.predict_proba([text, variant])
    assert np.array_equal(probabilities[0], probabilities[1])


def test_training_is_deterministic(quality, domain, pages, tmp_path):
    positives, negatives = quality_sets(pages)
    again = train_quality(positives, negatives, tmp_path / "quality", QUALITY_PARAMS, seed=SEED)
    assert again.report_path.read_bytes() == quality.report_path.read_bytes()
    assert again.model_path.read_bytes() == quality.model_path.read_bytes()

    texts, labels = domain_set(pages)
    again = train_domain(texts, labels, tmp_path / "domain", DOMAIN_PARAMS, seed=SEED)
    assert again.report_path.read_bytes() == domain.report_path.read_bytes()
    assert again.confusion_path.read_bytes() == domain.confusion_path.read_bytes()
    sample = texts[:50]
    first, second = DomainStep(domain.model_path).classifier, DomainStep(again.model_path).classifier
    assert first.predict(sample) == second.predict(sample)


def test_training_rejects_unusable_data(tmp_path):
    with pytest.raises(QualityDataError, match=r"^0 negatives, too few: quality training needs at least 5 positives") as caught:
        train_quality(["a good page"] * 5, [], tmp_path, QUALITY_PARAMS)
    assert caught.value.examples == "negatives"
    with pytest.raises(QualityDataError, match=r"^4 positives, too few") as caught:
        train_quality(["a good page"] * 4, ["spam"] * 50, tmp_path, QUALITY_PARAMS)
    assert caught.value.examples == "positives"
    with pytest.raises(DomainDataError, match=r"^only label 'wiki': domain training needs at least two labels$"):
        train_domain(["x"] * 10, ["wiki"] * 10, tmp_path, DOMAIN_PARAMS)
    with pytest.raises(DomainDataError, match=r"^too few examples of 'code' \(2\): domain training needs at least 5 of each"):
        train_domain(["x"] * 12, ["wiki"] * 10 + ["code"] * 2, tmp_path, DOMAIN_PARAMS)
    assert issubclass(QualityDataError, UserError) and issubclass(DomainDataError, UserError)
    assert list(tmp_path.iterdir()) == []  # rejected before anything is written


def test_params_reject_values_the_trainers_cannot_use():
    with pytest.raises(ValueError, match="cutoff"):
        QualityParams(cutoff=10)
    with pytest.raises(ValueError, match="dim must be positive"):
        QualityParams(dim=0)
    with pytest.raises(ValueError, match="word_ngrams must be a range"):
        DomainParams(word_ngrams=(2, 1))
    with pytest.raises(ValueError, match="calibration_folds must be at least 2"):
        DomainParams(calibration_folds=1)
