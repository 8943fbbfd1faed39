"""Does the proxies' ranking of mixtures hold for a larger model? (RegMix's central claim.)

The mix stage trains a larger model on a few mixtures (the chosen one, the natural one and a
couple of sampled ones) and compares the objective the proxies' regression predicts for each
with the one the larger models measure. Only the ranking has to transfer: the larger models
reach a lower loss, so predicted and measured are on different scales.

Pure helpers: the larger model's shape, the comparison and its plot, the sampled mixtures.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
from scipy.stats import pearsonr  # noqa: E402

from mixes.optimize import sample_candidates  # noqa: E402
from mixes.proxy_model import ProxyConfig  # noqa: E402
from mixes.regression import rank_correlation  # noqa: E402
from mixes.report import _save  # noqa: E402
from mixes.sampling import MixtureSpace  # noqa: E402

CHOSEN = "chosen"
WIDER_WITHIN = 1.25  # a wider shape is preferred while its size is within this ratio of the target
RANK_AGREEMENT = 0.8  # Spearman at or above this counts as the ranking holding (4 points: one adjacent swap)
TRANSFER_POOL = 1_000  # candidate mixtures the sampled transfer mixtures are picked from


# -- the larger model ----------------------------------------------------------------------------


def block_parameters(d_model: int) -> int:
    """One pre-norm block: qkv 3d^2 + out d^2 + MLP 8d^2 (no biases) + two LayerNorms 2d each."""
    return 12 * d_model**2 + 4 * d_model


def shape_parameters(n_layers: int, d_model: int) -> int:
    """Non-embedding parameters of `n_layers` blocks of width `d_model` and the final LayerNorm."""
    return n_layers * block_parameters(d_model) + 2 * d_model


def non_embedding_parameters(config: ProxyConfig) -> int:
    """The proxy's parameters less the token and position embeddings (the output layer is tied)."""
    return shape_parameters(config.n_layers, config.d_model)


def _closest_depth(d_model: int, min_layers: int, target: float) -> int:
    """The number of layers (at least `min_layers`) whose size is closest to `target` in ratio."""
    exact = (target - 2 * d_model) / block_parameters(d_model)
    depths = {max(min_layers, math.floor(exact)), max(min_layers, math.ceil(exact))}
    return min(sorted(depths), key=lambda layers: abs(math.log(shape_parameters(layers, d_model) / target)))


def _candidate_shapes(config: ProxyConfig, target: float) -> list[tuple[int, int]]:
    """(width multiple, layers) for the width doubled 0, 1, 2... times, up to the first whose
    original depth already exceeds the target; depth is never below the original."""
    shapes, multiple = [], 1
    while True:
        width = config.d_model * multiple
        shapes.append((multiple, _closest_depth(width, config.n_layers, target)))
        if shape_parameters(config.n_layers, width) > target:
            return shapes
        multiple *= 2


def larger_config(config: ProxyConfig, parameter_factor: float = 4.0) -> ProxyConfig:
    """`config` with about `parameter_factor` times its non-embedding parameters.

    The width is doubled as often as a shape within `WIDER_WITHIN` of the target allows, and
    the depth then chosen to get closest to it; with no shape that close, the closest one wins.
    Heads grow with the width (the head dimension is kept), so d_model stays a multiple of
    n_heads. Vocabulary, context and the optimisation settings are kept: every mixture of the
    transfer check trains the same larger model.
    """
    if not parameter_factor > 1:
        raise ValueError(f"parameter_factor must be above 1 for a larger model, got {parameter_factor}")
    target = parameter_factor * non_embedding_parameters(config)

    def ratio_error(shape: tuple[int, int]) -> float:
        multiple, layers = shape
        return abs(math.log(shape_parameters(layers, config.d_model * multiple) / target))

    shapes = _candidate_shapes(config, target)
    close = [shape for shape in shapes if ratio_error(shape) <= math.log(WIDER_WITHIN)]
    multiple, layers = max(close) if close else min(shapes, key=ratio_error)
    return dataclasses.replace(
        config, n_layers=layers, d_model=config.d_model * multiple, n_heads=config.n_heads * multiple
    )


# -- comparing predicted with measured -------------------------------------------------------------


@dataclass(frozen=True)
class TransferResult:
    """Predicted (proxies' regression) against measured (larger model) objective per mixture.

    The objective is a loss: lower is better. A correlation is None where either side is
    constant (there is no ranking to compare).
    """

    labels: list[str]
    predicted: list[float]
    measured: list[float]
    spearman: float | None
    pearson: float | None
    best_measured: str
    chosen_measures_best: bool
    verdict: str
    note: str


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _pearson(predicted: np.ndarray, measured: np.ndarray) -> float | None:
    if np.ptp(predicted) == 0 or np.ptp(measured) == 0:
        return None
    return _finite_or_none(pearsonr(predicted, measured).statistic)


def _verdict(spearman: float | None, chosen_best: bool, best: str) -> str:
    if spearman is None:
        return "inconclusive: the predicted or the measured objective is the same for every mixture."
    ranking_holds = spearman >= RANK_AGREEMENT - 1e-9  # rank correlations are fractions, computed in floats
    if chosen_best and ranking_holds:
        return "transfers: the chosen mix measures best for the larger model and the proxies' ranking holds."
    if chosen_best:
        return (
            "partly transfers: the chosen mix measures best for the larger model, "
            "but the proxies rank the others differently."
        )
    if ranking_holds:
        return f"partly transfers: the proxies' ranking mostly holds, but {best!r} measures better than the chosen mix."
    return f"does not transfer: {best!r} measures best for the larger model and the proxies' ranking does not hold."


def _small_sample_note(n: int) -> str:
    """How coarse a Spearman over n points is: its values are few and a perfect one is cheap."""
    one_swap = 1 - 12 / (n * (n**2 - 1))
    return (
        f"{n} mixtures: Spearman is coarse here; +1 or -1 needs every rank right, one swap of "
        f"neighbours already gives {one_swap:.2f}, and a random order is ranked perfectly with "
        f"probability 1/{math.factorial(n)} ({1 / math.factorial(n):.1%})."
    )


def _check_inputs(labels: list[str], predicted: np.ndarray, measured: np.ndarray) -> None:
    if not len(labels) == len(predicted) == len(measured) or len(labels) < 2:
        raise ValueError(
            f"need at least 2 mixtures with one label, prediction and measurement each, got "
            f"{len(labels)} labels, {len(predicted)} predictions and {len(measured)} measurements"
        )
    if len(set(labels)) != len(labels) or CHOSEN not in labels:
        raise ValueError(f"labels must be distinct and include {CHOSEN!r}, got {labels}")
    if not (np.all(np.isfinite(predicted)) and np.all(np.isfinite(measured))):
        raise ValueError("predicted and measured objectives must be finite")


def transfer_result(labels: list[str], predicted: np.ndarray, measured: np.ndarray) -> TransferResult:
    """Compare the proxies' predicted objective with the larger models' measured one per mixture."""
    predicted, measured = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    labels = list(labels)
    _check_inputs(labels, predicted, measured)
    spearman = _finite_or_none(rank_correlation(measured, predicted))
    chosen_best = bool(measured[labels.index(CHOSEN)] <= measured.min())  # a tie counts as best
    best = CHOSEN if chosen_best else labels[int(np.argmin(measured))]
    return TransferResult(
        labels=labels,
        predicted=predicted.tolist(),
        measured=measured.tolist(),
        spearman=spearman,
        pearson=_pearson(predicted, measured),
        best_measured=best,
        chosen_measures_best=chosen_best,
        verdict=_verdict(spearman, chosen_best, best),
        note=_small_sample_note(len(labels)),
    )


def transfer_summary(labels: list[str], predicted: np.ndarray, measured: np.ndarray) -> dict:
    """`transfer_result` as plain JSON-ready values."""
    return dataclasses.asdict(transfer_result(labels, predicted, measured))


def transfer_plot(path: Path, labels: list[str], predicted: np.ndarray, measured: np.ndarray) -> Path:
    """Measured (larger model) against predicted (proxies) objective, one labelled point per mixture.

    No identity line: the larger model measures lower losses, only the ranking is compared.
    """
    result = transfer_result(labels, predicted, measured)
    colours = ["tab:orange" if label == CHOSEN else "tab:blue" for label in result.labels]
    figure, axis = plt.subplots(figsize=(5, 4))
    axis.scatter(result.predicted, result.measured, s=30, c=colours)
    for label, x, y in zip(result.labels, result.predicted, result.measured):
        axis.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    axis.margins(0.15)  # room for the labels
    spearman = "n/a" if result.spearman is None else f"{result.spearman:.2f}"
    axis.set_title(f"transfer: Spearman {spearman} over {len(result.labels)} mixtures")
    axis.set_xlabel("predicted by the proxies (bpb)")
    axis.set_ylabel("measured, larger model (bpb)")
    return _save(figure, Path(path))


# -- the sampled mixtures --------------------------------------------------------------------------


def sampled_transfer_mixtures(space: MixtureSpace, n: int, seed: int) -> np.ndarray:
    """n admissible mixtures, far from the natural mix and from each other (L1 distance).

    Picked greedily (farthest first) from RegMix candidates within every bound, so the few
    larger models see objectives that differ, which gives a rank check of a handful of points
    its best chance to say something. Deterministic for a seed.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    pool = sample_candidates(space, TRANSFER_POOL, seed, min_kept=n)
    nearest = np.abs(pool - space.natural).sum(axis=1)
    picked = []
    for _ in range(n):
        index = int(np.argmax(nearest))
        if nearest[index] <= 1e-6:
            raise ValueError(f"the bounds leave no room for {n} mixtures distinct from the natural mix")
        picked.append(pool[index])
        nearest = np.minimum(nearest, np.abs(pool - pool[index]).sum(axis=1))
    return np.array(picked)
