"""The mixing report: PNG plots and a `report.md` that embeds them.

Plots: predicted (out-of-fold) against measured objective per regressor, the chosen weights
against the natural mix, and the measured objective of every proxy. The markdown adds the CV
Spearman of each regressor, the weights, and the predicted (and, when validation proxies were
trained, measured) objective of the chosen, top-k and natural mixes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

from mixes.optimize import OptimizationResult  # noqa: E402
from mixes.regression import RegressionResult  # noqa: E402
from mixes.sampling import MixtureSpace  # noqa: E402

PREDICTED_PNG = "predicted_vs_measured.png"
WEIGHTS_PNG = "weights.png"
PROXIES_PNG = "loss_by_proxy.png"
REPORT_MD = "report.md"


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_predicted_vs_measured(regression: RegressionResult, path: Path) -> Path:
    names = list(regression.scores)
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    low, high = regression.measured.min(), regression.measured.max()
    for axis, name in zip(axes[0], names):
        score = regression.scores[name]
        axis.scatter(regression.measured, score.out_of_fold, s=14)
        axis.plot([low, high], [low, high], color="grey", linewidth=1)
        chosen = " (chosen)" if name == regression.chosen else ""
        axis.set_title(f"{name}{chosen}: Spearman {score.spearman:.3f}")
        axis.set_xlabel("measured objective (bpb)")
        axis.set_ylabel("predicted, out of fold (bpb)")
    return _save(figure, path)


def plot_weights(domains: Sequence[str], mixes: Mapping[str, np.ndarray], path: Path) -> Path:
    """Grouped bars: one group per domain, one bar per named mix."""
    figure, axis = plt.subplots(figsize=(max(5, 1.2 * len(domains) * len(mixes)), 4))
    width = 0.8 / len(mixes)
    positions = np.arange(len(domains))
    for index, (label, weights) in enumerate(mixes.items()):
        axis.bar(positions + index * width, weights, width, label=label)
    axis.set_xticks(positions + width * (len(mixes) - 1) / 2, list(domains), rotation=30, ha="right")
    axis.set_ylabel("weight")
    axis.legend()
    return _save(figure, path)


def plot_loss_by_proxy(mixture_ids: Sequence[str], measured: np.ndarray, path: Path, highlight: str | None = None) -> Path:
    """Every proxy's measured objective, best first; `highlight` (e.g. the natural mix) in another colour."""
    order = np.argsort(measured, kind="stable")
    labels = [mixture_ids[i] for i in order]
    colours = ["tab:orange" if label == highlight else "tab:blue" for label in labels]
    figure, axis = plt.subplots(figsize=(max(6, 0.3 * len(labels)), 4))
    axis.bar(range(len(labels)), measured[order], color=colours)
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axis.set_ylim(measured.min() - 0.05 * np.ptp(measured) - 1e-6, measured.max() + 0.05 * np.ptp(measured) + 1e-6)
    axis.set_ylabel("objective (bpb)")
    return _save(figure, path)


def _regressor_table(regression: RegressionResult) -> list[str]:
    lines = ["| regressor | CV Spearman | chosen |", "|---|---|---|"]
    for name, score in regression.scores.items():
        lines.append(f"| {name} | {score.spearman:.3f} | {'yes' if name == regression.chosen else ''} |")
    return lines


def _weights_table(space: MixtureSpace, mixes: Mapping[str, np.ndarray], epochs_of: str) -> list[str]:
    header = ["domain", "tokens", "min", "max (incl. cap)", *mixes, f"epochs ({epochs_of})"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    epochs = space.epochs(mixes[epochs_of])
    for i, domain in enumerate(space.domains):
        weights = [f"{mix[i]:.4f}" for mix in mixes.values()]
        row = [domain, f"{int(space.tokens[i]):,}", f"{space.lower[i]:.4f}", f"{space.upper[i]:.4f}", *weights, f"{epochs[i]:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _objective_table(optimization: OptimizationResult, validation: Mapping[str, float]) -> list[str]:
    predicted = {
        f"optimum ({optimization.optimum.method})": ("optimum", optimization.optimum.predicted),
        "top-k average": ("top_k", optimization.top_k.predicted),
        "natural": ("natural", optimization.natural_predicted),
    }
    lines = ["| mix | predicted bpb | measured bpb (validation proxy) |", "|---|---|---|"]
    for label, (key, value) in predicted.items():
        measured = f"{validation[key]:.4f}" if key in validation else "not trained"
        lines.append(f"| {label} | {value:.4f} | {measured} |")
    return lines


def write_report(
    out_dir: Path,
    regression: RegressionResult,
    optimization: OptimizationResult,
    space: MixtureSpace,
    mixture_ids: Sequence[str],
    validation: Mapping[str, float] | None = None,
    natural_id: str | None = None,
    title: str = "Mixture report",
) -> Path:
    """Write the plots and `report.md` into `out_dir`; return the markdown path.

    `mixture_ids` name the regression's proxies in order; `validation` holds the measured
    objective of validation proxies keyed "optimum", "top_k" and/or "natural".
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mixes = {"natural": space.natural, "optimum": optimization.optimum.weights, "top-k": optimization.top_k.weights}
    plot_predicted_vs_measured(regression, out_dir / PREDICTED_PNG)
    plot_weights(space.domains, mixes, out_dir / WEIGHTS_PNG)
    plot_loss_by_proxy(mixture_ids, regression.measured, out_dir / PROXIES_PNG, highlight=natural_id)
    lines = [
        f"# {title}",
        "",
        f"{len(regression.measured)} proxies; target budget {space.target_budget:,} tokens; "
        f"at most {space.max_epochs:g} epochs per domain.",
        "",
        "## Regressors (k-fold cross-validated Spearman, out-of-fold predictions)",
        "",
        *_regressor_table(regression),
        "",
        f"![predicted vs measured]({PREDICTED_PNG})",
        "",
        "## Weights",
        "",
        *_weights_table(space, mixes, epochs_of="optimum"),
        "",
        f"![weights]({WEIGHTS_PNG})",
        "",
        f"## Objective (predicted by {regression.chosen})",
        "",
        *_objective_table(optimization, validation or {}),
        "",
        "## Measured objective per proxy",
        "",
        f"![loss by proxy]({PROXIES_PNG})",
        "",
    ]
    path = out_dir / REPORT_MD
    path.write_text("\n".join(lines))
    return path
