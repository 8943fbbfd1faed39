"""Held-out splits, metrics, data fingerprints and report files shared by the quality and domain classifiers.

Every number comes from scikit-learn and is rounded to ``DIGITS`` decimals, so a report
written twice from the same data and seed is byte-identical, and a diff of two reports
shows only what changed.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import (
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from curation.atomic import write_text_atomic

DIGITS = 6


def rounded(value: float) -> float:
    return round(float(value), DIGITS)


def dataset_sha256(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-256 of labelled examples in order: one JSON ``[label, text]`` line per example."""
    digest = hashlib.sha256()
    for label, text in zip(labels, texts, strict=True):
        digest.update(json.dumps([label, text], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def stratified_split(labels: Sequence[str], heldout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the held-out part, each label in the same proportion in both.

    The indices come shuffled by ``seed``: fastText learns from its file in order, and a
    file of all positives, then all negatives, would leave it with the last label's bias.
    """
    indices = np.arange(len(labels))
    train, heldout = train_test_split(indices, test_size=heldout_fraction, random_state=seed, stratify=list(labels))
    return train, heldout


def label_counts(labels: Sequence[str]) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    return {str(value): int(count) for value, count in zip(values, counts)}


def binary_metrics(is_positive: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, float | int]:
    """ROC-AUC of ``scores``, and precision/recall/F1 of the positive class when ``score >= threshold`` predicts it."""
    truth = np.asarray(is_positive, dtype=bool)
    predicted = np.asarray(scores, dtype=float) >= threshold
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average="binary", pos_label=True, zero_division=0
    )
    return {
        "roc_auc": rounded(roc_auc_score(truth, scores)),
        "threshold": rounded(threshold),
        "precision": rounded(precision),
        "recall": rounded(recall),
        "f1": rounded(f1),
        "positives": int(truth.sum()),
        "negatives": int((~truth).sum()),
        "predicted_positive": int(predicted.sum()),
    }


def multiclass_metrics(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict:
    """Per-class precision/recall/F1/support, macro-F1, accuracy and the confusion matrix (rows: true labels)."""
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, average=None, zero_division=0
    )
    per_class = {
        label: {"precision": rounded(p), "recall": rounded(r), "f1": rounded(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    matrix = confusion_matrix(truth, predicted, labels=labels)
    return {
        "labels": labels,
        "per_class": per_class,
        "macro_f1": rounded(np.mean(f1)),
        "accuracy": rounded(np.mean(np.asarray(truth, dtype=object) == np.asarray(predicted, dtype=object))),
        "confusion_matrix": matrix.astype(int).tolist(),
    }


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str) -> Path:
    """Writes the confusion matrix as a PNG heat map with the count in every cell (rows: true, columns: predicted).

    Draws on a bare Agg figure rather than through pyplot, so it holds no global state and
    needs no display, in a test, a Dask worker or a thread.
    """
    counts = np.asarray(matrix, dtype=int)
    size = 1.5 + 0.8 * len(labels)
    figure = Figure(figsize=(size + 1.0, size), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(ticks, labels=labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    darkest = counts.max() if counts.size else 0
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if darkest and count > darkest / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def write_json(path: str | Path, payload: Mapping) -> Path:
    """Writes ``payload`` as sorted, indented JSON, atomically (temp file, then rename).

    A training run writes its report last, so a model file without its report is the
    trace of a run that did not finish.
    """
    path = Path(path)
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
