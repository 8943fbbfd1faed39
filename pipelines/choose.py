"""One flow for choosing a mix, shared by the pre-training (``mix``) and anneal phases.

Regress the objective on the proxies' weights, search the bounded optimum, train validation
proxies on fresh seeds for the chosen and the natural mix, then judge the result: a mix is
**recommended** only when the chosen regressor ranks held-out proxies with a cross-validated
Spearman of at least ``mix.min_cv_spearman`` and the chosen mix measures better than natural by
more than the natural mix's spread over the seeds. A mix that is not recommended is still
written, with ``recommended: false`` and the reasons, and the export refuses it unless told.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from curation.atomic import write_text_atomic
from mixes.optimize import OptimizationResult, optimize_mixture
from mixes.regression import RegressionResult, fit_regressors, objective_values, weights_matrix
from mixes.report import write_report
from mixes.sampling import MixtureSpace
from mixes.swarm import ProxySpec
from pipelines.config import ConfigError, MixSection

VALIDATED_MIXES = ("chosen", "natural")


@dataclass(frozen=True)
class Verdict:
    recommended: bool
    reasons: list[str]  # why not, one sentence each; empty when recommended


@dataclass(frozen=True)
class MixChoice:
    mixture_ids: list[str]
    regression: RegressionResult
    optimization: OptimizationResult
    validation: dict
    verdict: Verdict

    @property
    def cv_spearman(self) -> float:
        return float(self.regression.scores[self.regression.chosen].spearman)


def finite_or_none(value: float) -> float | None:
    """NaN (a regressor that ranks nothing) as null: the manifest is JSON."""
    return float(value) if np.isfinite(value) else None


def mixture_objectives(
    proxies: pd.DataFrame, domains: Sequence[str], target_weights: Mapping[str, float]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per mixture: id, weights and objective averaged over its seeds.

    One row per mixture, not per run: the seeds of a mixture in different CV folds would let a
    regressor score by recognising the mixture.
    """
    runs = proxies.assign(objective=objective_values(proxies, target_weights)).groupby("mixture_id", sort=True)
    first = runs.first()
    return list(first.index), weights_matrix(first, list(domains)), runs["objective"].mean().to_numpy()


def summarize_validation(frame: pd.DataFrame, target_weights: Mapping[str, float], predicted: Mapping[str, float]) -> dict:
    """Measured against predicted objective of the validation mixes, and the natural mix's spread.

    The chosen mix beats the natural one beyond the spread when its mean is lower by more than
    the range of the natural mix over the seeds (with one seed there is no spread to beat).
    """
    measured = frame.assign(objective=objective_values(frame, target_weights)).sort_values("seed")
    summary: dict = {"seeds": [int(seed) for seed in measured["seed"].unique()]}
    for name in VALIDATED_MIXES:
        values = measured.loc[measured["mixture_id"] == name, ["seed", "objective"]]
        summary[name] = {
            "predicted": float(predicted[name]),
            "measured": {int(seed): float(value) for seed, value in values.itertuples(index=False)},
            "mean": float(values["objective"].mean()),
        }
    natural = measured.loc[measured["mixture_id"] == "natural", "objective"].to_numpy()
    spread = {"std": float(np.std(natural, ddof=1)) if len(natural) > 1 else None, "range": float(np.ptp(natural))}
    improvement = summary["natural"]["mean"] - summary["chosen"]["mean"]
    summary["natural"].update(spread)
    summary["improvement"] = float(improvement)
    summary["beats_natural_beyond_spread"] = bool(improvement > spread["range"])
    return summary


def judge(regression: RegressionResult, validation: Mapping, min_cv_spearman: float) -> Verdict:
    """Recommended only with a regressor that ranks and a chosen mix that measurably beats natural."""
    reasons = []
    spearman = regression.scores[regression.chosen].spearman
    if not spearman >= min_cv_spearman:
        reasons.append(
            f"the chosen regressor ({regression.chosen}) ranks held-out proxies with a CV Spearman of "
            f"{spearman:.3f}, under mix.min_cv_spearman = {min_cv_spearman:g}"
        )
    if not validation["beats_natural_beyond_spread"]:
        reasons.append(
            f"on the {len(validation['seeds'])} validation seeds the chosen mix is {validation['improvement']:+.4f} "
            f"better than natural, not more than the natural mix's range over the seeds "
            f"({validation['natural']['range']:.4f})"
        )
    return Verdict(not reasons, reasons)


def fit_and_optimize(
    proxies: pd.DataFrame, space: MixtureSpace, target_weights: Mapping[str, float], section: MixSection, seed: int
) -> tuple[list[str], RegressionResult, OptimizationResult]:
    """The mixtures' ids, the regressors scored and chosen, and the bounded optimum of the chosen one."""
    mixture_ids, weights, objective = mixture_objectives(proxies, space.domains, target_weights)
    try:
        regression = fit_regressors(weights, objective, list(space.domains), n_folds=section.folds, seed=seed)
    except ValueError as err:
        raise ConfigError(f"mix.folds: {err}") from None
    optimization = optimize_mixture(
        regression.chosen_model.predict, space, regression.chosen_is_smooth, kl_weight=section.kl_weight,
        n_candidates=section.candidates, top_k=section.top_k, seed=seed,
    )
    return mixture_ids, regression, optimization


def choose_mixture(
    proxies: pd.DataFrame,
    space: MixtureSpace,
    target_weights: Mapping[str, float],
    section: MixSection,
    seed: int,
    validate: Callable[[np.ndarray], pd.DataFrame],
) -> MixChoice:
    """Regression, bounded optimum, validation (``validate(chosen weights)`` returns its proxies), verdict."""
    mixture_ids, regression, optimization = fit_and_optimize(proxies, space, target_weights, section, seed)
    predicted = {"chosen": optimization.optimum.predicted, "natural": optimization.natural_predicted}
    validation = summarize_validation(validate(optimization.optimum.weights), target_weights, predicted)
    return MixChoice(mixture_ids, regression, optimization, validation, judge(regression, validation, section.min_cv_spearman))


def validation_specs(space: MixtureSpace, chosen: np.ndarray, seeds: Sequence[int]) -> list[ProxySpec]:
    """The validation proxies: the chosen and the natural mix on each seed."""
    mixes = {"chosen": space.as_dict(chosen), "natural": space.as_dict(space.natural)}
    return [ProxySpec(name, mixes[name], seed) for name in VALIDATED_MIXES for seed in seeds]


def natural_mixture_id(ids: Sequence[str], weights: np.ndarray, natural: np.ndarray) -> str | None:
    """The proxy trained on the natural mix (the swarm's first anchor, unless the cap moved it)."""
    return next((i for i, row in zip(ids, weights) if np.allclose(row, natural, atol=1e-9)), None)


def regressor_scores(regression: RegressionResult) -> dict[str, float | None]:
    return {name: finite_or_none(score.spearman) for name, score in regression.scores.items()}


def mix_document(space: MixtureSpace, choice: MixChoice, target_weights: Mapping[str, float]) -> dict:
    """mix.yaml: ``weights`` and ``token_budget`` are what the export reads, ``recommended`` what it checks; the rest says why.

    ``token_budget`` is the target budget the repetition cap was computed for, so an export
    without its own budget repeats no domain more than the mixer allowed.
    """
    optimization, regression = choice.optimization, choice.regression
    return {
        "weights": space.as_dict(optimization.optimum.weights),
        "token_budget": space.target_budget,
        "recommended": choice.verdict.recommended,
        "not_recommended_because": choice.verdict.reasons,
        "natural_weights": space.as_dict(space.natural),
        "top_k_weights": space.as_dict(optimization.top_k.weights),
        "method": optimization.optimum.method,
        "regressor": regression.chosen,
        "cv_spearman": finite_or_none(choice.cv_spearman),
        "regressor_scores": regressor_scores(regression),
        "target_weights": dict(target_weights),
        "predicted_objective": optimization.optimum.predicted,
        "natural_predicted_objective": optimization.natural_predicted,
        "validation": choice.validation,
    }


def choice_summary(space: MixtureSpace, choice: MixChoice) -> dict:
    """The stage result's facts about the choice (the manifest's ``result``)."""
    optimization, validation = choice.optimization, choice.validation
    return {
        "recommended": choice.verdict.recommended,
        "not_recommended_because": choice.verdict.reasons,
        "regressor": choice.regression.chosen,
        "cv_spearman": finite_or_none(choice.cv_spearman),
        "regressor_scores": regressor_scores(choice.regression),
        "method": optimization.optimum.method,
        "weights": space.as_dict(optimization.optimum.weights),
        "top_k_weights": space.as_dict(optimization.top_k.weights),
        "natural_weights": space.as_dict(space.natural),
        "predicted_objective": optimization.optimum.predicted,
        "measured_objective": validation["chosen"]["mean"],
        "natural_predicted_objective": optimization.natural_predicted,
        "natural_measured_objective": validation["natural"]["mean"],
        "natural_spread": {"std": validation["natural"]["std"], "range": validation["natural"]["range"]},
        "beats_natural_beyond_spread": validation["beats_natural_beyond_spread"],
    }


def validation_markdown(validation: dict) -> list[str]:
    chosen, natural = validation["chosen"], validation["natural"]
    lines = ["## Validation proxies (fresh seeds)", "", "| seed | chosen objective | natural objective |", "|---|---|---|"]
    lines += [f"| {seed} | {chosen['measured'][seed]:.4f} | {natural['measured'][seed]:.4f} |" for seed in validation["seeds"]]
    std = "n/a (one seed)" if natural["std"] is None else f"{natural['std']:.4f}"
    verdict = "more" if validation["beats_natural_beyond_spread"] else "not more"
    lines += [
        f"| mean (predicted) | {chosen['mean']:.4f} ({chosen['predicted']:.4f}) "
        f"| {natural['mean']:.4f} ({natural['predicted']:.4f}) |",
        "",
        f"The natural mix varies by std {std}, range {natural['range']:.4f} over the seeds. The chosen "
        f"mix is {validation['improvement']:+.4f} better on average: {verdict} than that range.",
        "",
    ]
    return lines


def verdict_markdown(choice: MixChoice) -> list[str]:
    scores = ", ".join(
        f"{name} {'n/a' if value is None else f'{value:.3f}'}" for name, value in regressor_scores(choice.regression).items()
    )
    if choice.verdict.recommended:
        lines = ["## Verdict: recommended", "", f"CV Spearman by regressor: {scores}; the chosen mix beats natural beyond its seed spread.", ""]
    else:
        lines = ["## Verdict: NOT recommended", "", f"CV Spearman by regressor: {scores}.", ""]
        lines += [f"- {reason}" for reason in choice.verdict.reasons]
        lines += [
            "",
            "The export refuses this mix unless `--force` is given (or `export.not_recommended: natural` "
            "exports the natural mix instead). To get a mix the proxies can rank: train more proxies "
            "(`proxies.count`), a larger proxy token budget (`proxies.token_budget`), more seeds, or fewer "
            "domains (merge the small ones).",
            "",
        ]
    return lines


def write_choice(
    out_dir: Path, title: str, space: MixtureSpace, choice: MixChoice, document: Mapping, mix_path: Path,
    sections: Sequence[str] = (),
) -> Path:
    """The report (plots, verdict, validation, the caller's sections) and mix.yaml; returns the mix.yaml path."""
    natural_id = natural_mixture_id(choice.mixture_ids, choice.regression.weights, space.natural)
    measured = {"optimum": choice.validation["chosen"]["mean"], "natural": choice.validation["natural"]["mean"]}
    report = write_report(out_dir, choice.regression, choice.optimization, space, choice.mixture_ids, measured, natural_id, title)
    extra = verdict_markdown(choice) + validation_markdown(choice.validation) + list(sections)
    with report.open("a") as handle:
        handle.write("\n".join(extra))
    write_text_atomic(mix_path, yaml.safe_dump(dict(document), sort_keys=False))
    return mix_path


def print_verdict(console, label: str, choice: MixChoice) -> None:
    if choice.verdict.recommended:
        console.print(f"{label}: recommended (CV Spearman {choice.cv_spearman:.3f}, beats natural beyond the spread)")
        return
    console.print(f"[bold red]{label}: NOT RECOMMENDED[/bold red]")
    for reason in choice.verdict.reasons:
        console.print(f"[red]  - {reason}[/red]")
    console.print("[red]  the export refuses it unless --force; see the report for what to change[/red]")
