"""Quality classifier: a fastText model of "reads like the reference set" (DCLM, FineWeb-Edu style).

Training takes two lists of texts: positives (the kind of page the mixture wants more
of: encyclopedic articles, textbooks, curated answers) and negatives (spam,
boilerplate, a random sample of the crawl). A seeded, stratified part is held out and
scored through ``QualityScorer``, the same path a pipeline applies the model by, so the
report describes the file that ships (quantized or not).

``out_dir`` after training::

    quality.bin | quality.ftz   the fastText model (.ftz when quantized)
    quality.json                the report: the model file's size, data sizes and SHA-256,
                                held-out metrics, hyper-parameters, seed, and the
                                normalization settings the scorer reads back, written last

Both files appear complete or not at all (a temp file, then a rename), and a retraining
removes the old report first: a model without its report is what an unfinished training
left.

Training is deterministic for a given seed: fastText runs on one thread with that seed,
in a fresh child process with zero-filled allocations (see ``fit_fasttext``), on a
training file shuffled by the seed.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from classifiers.reports import (
    binary_metrics,
    dataset_sha256,
    label_counts,
    read_json,
    stratified_split,
    write_json,
)
from classifiers.text import DEFAULT_MAX_WORDS, normalize_text
from curation.atomic import atomic_path
from curation.drops import Drop
from curation.errors import UserError
from curation.filters import fasttext_model
from curation.shards import RemovedSink

POSITIVE = "__label__hq"
NEGATIVE = "__label__lq"
REPORT_FILE = "quality.json"
QUALITY_SCORE = "quality_score"
BELOW_THRESHOLD = Drop("quality", "below_threshold")  # filed as quality/below_threshold, with the score as detail


@dataclass(frozen=True)
class QualityParams:
    """fastText hyper-parameters and the evaluation settings.

    ``bucket`` is the number of hashed word n-gram rows (fastText's default, 2M, makes a
    model of 2M x dim floats); ``quantize`` writes a compressed ``.ftz``, with ``cutoff``
    > 0 keeping only that many words and n-grams (and retraining on them).
    ``threshold`` is where the report's precision/recall/F1 are measured.
    """

    epoch: int = 5
    lr: float = 0.1
    word_ngrams: int = 2
    dim: int = 64
    min_count: int = 2
    bucket: int = 200_000
    quantize: bool = False
    cutoff: int = 0
    max_words: int = DEFAULT_MAX_WORDS
    heldout_fraction: float = 0.2
    threshold: float = 0.5

    def __post_init__(self):
        # fastText trains a useless model from a zero epoch, lr or dim without a word
        for name in ("epoch", "lr", "word_ngrams", "dim", "min_count", "max_words"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("bucket", "cutoff"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be between 0 and 1, got {self.heldout_fraction}")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.cutoff and not self.quantize:
            raise ValueError("cutoff applies to quantized models only: set quantize: true")


class QualityDataError(UserError, ValueError):
    """Training examples the model cannot be trained on; ``examples`` says which: ``positives`` or ``negatives``."""

    def __init__(self, examples: str, message: str):
        super().__init__(message)
        self.examples = examples


@dataclass(frozen=True)
class QualityReport:
    """What ``train_quality`` wrote; ``as_json()`` is the content of ``quality.json``."""

    model_path: Path
    model_bytes: int  # the pipeline reuses a model only when its size matches
    report_path: Path
    heldout: dict  # binary_metrics of the held-out part
    data: dict
    params: QualityParams
    seed: int

    @property
    def roc_auc(self) -> float:
        return self.heldout["roc_auc"]

    @property
    def threshold(self) -> float:
        return self.heldout["threshold"]

    @property
    def precision(self) -> float:
        return self.heldout["precision"]

    @property
    def recall(self) -> float:
        return self.heldout["recall"]

    @property
    def f1(self) -> float:
        return self.heldout["f1"]

    def as_json(self) -> dict:
        return {
            "model_file": self.model_path.name,
            "model_bytes": self.model_bytes,
            "labels": {"positive": POSITIVE, "negative": NEGATIVE},
            "normalization": {"max_words": self.params.max_words},
            "data": self.data,
            "heldout": self.heldout,
            "params": asdict(self.params),
            "seed": self.seed,
        }


def train_quality(
    positives: Sequence[str],
    negatives: Sequence[str],
    out_dir: str | Path,
    params: QualityParams = QualityParams(),
    seed: int = 0,
) -> QualityReport:
    """Trains the fastText quality model on a seeded stratified split and reports on the held-out part."""
    _check_training_sets(positives, negatives, params.heldout_fraction)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_FILE).unlink(missing_ok=True)  # the report marks a finished training
    texts = [*positives, *negatives]
    labels = [POSITIVE] * len(positives) + [NEGATIVE] * len(negatives)
    train, heldout = stratified_split(labels, params.heldout_fraction, seed)
    train_labels, heldout_labels = [labels[i] for i in train], [labels[i] for i in heldout]

    model_path = out_dir / ("quality.ftz" if params.quantize else "quality.bin")
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".quality-train-") as work:
        train_file = write_training_file(Path(work) / "train.txt", [texts[i] for i in train], train_labels, params.max_words)
        with atomic_path(model_path) as saving:
            fit_fasttext(train_file, saving, params, seed)

    scores = QualityScorer(model_path, max_words=params.max_words).scores([texts[i] for i in heldout])
    report = QualityReport(
        model_path=model_path,
        model_bytes=model_path.stat().st_size,
        report_path=out_dir / REPORT_FILE,
        heldout=binary_metrics([label == POSITIVE for label in heldout_labels], scores, params.threshold),
        data={
            "positives": len(positives),
            "negatives": len(negatives),
            "sha256": dataset_sha256(texts, labels),
            "train": label_counts(train_labels),
            "heldout": label_counts(heldout_labels),
        },
        params=params,
        seed=seed,
    )
    write_json(report.report_path, report.as_json())
    return report


def _check_training_sets(positives: Sequence[str], negatives: Sequence[str], heldout_fraction: float) -> None:
    """Both labels must reach the training and the held-out part (ROC-AUC needs both there)."""
    minimum = math.ceil(1 / min(heldout_fraction, 1 - heldout_fraction))
    for examples, count in (("positives", len(positives)), ("negatives", len(negatives))):
        if count < minimum:
            raise QualityDataError(
                examples,
                f"{count} {examples}, too few: quality training needs at least {minimum} positives and {minimum} "
                f"negatives (heldout_fraction {heldout_fraction} holds some of each out)",
            )


def write_training_file(path: Path, texts: Sequence[str], labels: Sequence[str], max_words: int) -> Path:
    """fastText's supervised format: ``__label__x normalized text``, one example a line."""
    with path.open("w", encoding="utf-8") as out:
        for text, label in zip(texts, labels, strict=True):
            out.write(f"{label} {normalize_text(text, max_words)}\n")
    return path


_FASTTEXT_TRAINING = """
import json, sys
import numpy as np
import fasttext
from fasttext.FastText import _FastText
job = json.loads(sys.argv[1])
model = fasttext.train_supervised(input=job["input"], **job["train"])
if job["quantize"] is not None:
    model.quantize(input=job["input"], **job["quantize"])
model.save_model(job["output"])
with open(job["input"], encoding="utf-8") as lines:
    sample = [line.rstrip("\\n").split(" ", 1)[1] for line, _ in zip(lines, range(1000))]
expected, saved = model.predict(sample, k=-1), _FastText(model_path=job["output"]).predict(sample, k=-1)
if expected[0] != saved[0] or not all(np.array_equal(a, b) for a, b in zip(expected[1], saved[1])):
    sys.exit(f"{job['output']} does not read back as the trained model: is the disk full?")
"""


def fit_fasttext(train_file: Path, model_path: Path, params: QualityParams, seed: int) -> Path:
    """Trains (and quantizes) the model on ``train_file`` and saves it to ``model_path``, in a child process.

    fastText ignores write errors: on a full disk ``save_model`` leaves a short file, which
    fastText then loads without complaint (with whatever memory holds for the missing
    weights). So the child reads the file back and checks that it predicts what the
    trained model does.

    fasttext-numpy2-wheel allocates its weight matrices without clearing them
    (``posix_memalign``), and with ``thread=1`` fastText's random initialisation fills
    only the first tenth of the input matrix; the other rows hold whatever the allocator
    hands back. In a fresh process that is zero pages; after earlier allocations it is
    old data, and the same training gives other weights or stops with "Encountered NaN"
    (seen on the second training in one process). So training runs in a fresh
    interpreter with ``MALLOC_PERTURB_=255``, under which glibc zero-fills every heap
    allocation: upstream fastText's behaviour (zeros beyond the first tenth), identical
    in every run.
    """
    job = {
        "input": str(train_file),
        "output": str(model_path),
        "train": {
            "epoch": params.epoch,
            "lr": params.lr,
            "wordNgrams": params.word_ngrams,
            "dim": params.dim,
            "minCount": params.min_count,
            "bucket": params.bucket,
            "thread": 1,  # more threads race on the shared weights (Hogwild): one is reproducible
            "seed": seed,
            "verbose": 0,
        },
        "quantize": (
            {"cutoff": params.cutoff, "retrain": params.cutoff > 0, "qnorm": True, "verbose": 0} if params.quantize else None
        ),
    }
    done = subprocess.run(
        [sys.executable, "-c", _FASTTEXT_TRAINING, json.dumps(job)],
        env={**os.environ, "MALLOC_PERTURB_": "255"},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fastText training failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return model_path


def report_path_for(model_path: str | Path) -> Path:
    """The report written next to a model: ``quality.json`` for ``quality.bin`` and ``quality.ftz``."""
    return Path(model_path).with_suffix(".json")


class QualityScorer:
    """P(hq) of a text under a trained model, normalized as it was for training.

    ``max_words`` defaults to the value in the report next to the model. The model is
    loaded on first use, once per process that scores (a Dask worker), and is not pickled.
    """

    def __init__(self, model_path: str | Path, max_words: int | None = None):
        self.model_path = Path(model_path)
        if max_words is None:
            max_words = read_json(report_path_for(self.model_path))["normalization"]["max_words"]
        self.max_words = max_words

    @property
    def model(self):
        return fasttext_model(self.model_path)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty(0)
        labels, probabilities = self.model.predict([normalize_text(text, self.max_words) for text in texts], k=-1)
        hq = [dict(zip(row_labels, row_probabilities))[POSITIVE] for row_labels, row_probabilities in zip(labels, probabilities)]
        return np.clip(np.asarray(hq, dtype=float), 0.0, 1.0)  # fastText adds 1e-5 to every probability

    def score(self, text: str) -> float:
        return float(self.scores([text])[0])


def top_fraction_threshold(scores: Sequence[float], fraction: float) -> float:
    """The score above which ``fraction`` of ``scores`` lie: the cut-off that keeps that top fraction.

    Keeping the top fraction of a corpus needs a global cut-off, which no single worker
    sees: the caller scores a uniform sample of the stage's input (for instance
    ``SELECT text FROM dedup USING SAMPLE 5000``) and takes this quantile of it. Documents
    tied at the cut-off are kept, and the kept share of the whole corpus matches
    ``fraction`` up to the sample's error (about 1/sqrt(sample size)).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"top fraction must be in (0, 1], got {fraction}")
    if len(scores) == 0:
        raise ValueError("top fraction needs a non-empty sample of scores")
    return float(np.quantile(np.asarray(scores, dtype=float), 1.0 - fraction))


class QualityStep(PipelineStep):
    """Writes ``quality_score`` (P(hq)) to every document; with a threshold, drops those below it.

    Without a threshold the step only annotates. Dropped documents go to the stage's
    ``RemovedSink`` (not a ``LabelledSink``: the reason already names the step) under
    ``quality/below_threshold``, with the score and threshold as the detail. To keep a
    top fraction instead of everything above a fixed score, build the step with
    ``QualityStep.keeping_top_fraction``.
    """

    name = "⭐ quality"
    type = "🏷 - CLASSIFIER"

    def __init__(self, model_path: str | Path, removed: RemovedSink | None = None, threshold: float | None = None):
        super().__init__()
        if threshold is not None and removed is None:
            raise ValueError("a quality threshold drops documents: pass the stage's RemovedSink")
        self.scorer = QualityScorer(model_path)
        self.removed = removed
        self.threshold = threshold

    @classmethod
    def keeping_top_fraction(
        cls, model_path: str | Path, fraction: float, sample_texts: Sequence[str], removed: RemovedSink
    ) -> "QualityStep":
        """A step keeping about ``fraction`` of the corpus: the cut-off is that quantile of a sample's scores."""
        step = cls(model_path, removed)
        step.threshold = top_fraction_threshold(step.scorer.scores(sample_texts), fraction)
        return step

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        with nullcontext() if self.removed is None else self.removed:
            for doc in data:
                with self.track_time():
                    score = round(self.scorer.score(doc.text), 6)
                doc.metadata[QUALITY_SCORE] = score
                if self.threshold is None or score >= self.threshold:
                    self.stat_update("kept")
                    yield doc
                    continue
                self.stat_update("dropped_below_threshold")
                detail = f"quality_score {score:.4f} < threshold {self.threshold:.4f}"
                self.removed.write(doc, rank, replace(BELOW_THRESHOLD, detail=detail))
