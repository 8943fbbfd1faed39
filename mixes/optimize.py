"""The mixture that minimises a regressor's predicted objective within a `MixtureSpace`.

Minimised: predicted(w) + kl_weight * KL(w || natural), over the simplex within the per-domain
bounds and the repetition cap. Two answers are returned:

- the optimum: SLSQP from several starts for a smooth regressor; for a piecewise-constant one
  (boosted trees, whose gradient is zero almost everywhere) the best sampled candidate;
- RegMix's alternative: the average of the top-k of many sampled candidates, which is less
  sensitive to where a regressor extrapolates badly. The bounds are convex, so the average of
  admissible candidates is admissible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import xlogy

from mixes.sampling import MixtureSpace, dirichlet_mixtures, project_to_bounds

Predictor = Callable[[np.ndarray], np.ndarray]  # (n, k) weights -> (n,) predicted objective
SLSQP_OPTIONS = {"maxiter": 300, "ftol": 1e-12}
SLSQP_START_POOL = 2_000  # candidates sampled to pick the SLSQP starts from


@dataclass(frozen=True, eq=False)
class MixtureChoice:
    method: str  # "slsqp", "best_candidate" or "top_k"
    weights: np.ndarray
    predicted: float  # the regressor's prediction
    penalized: float  # predicted + kl_weight * KL(w || natural): what was minimised


@dataclass(frozen=True, eq=False)
class OptimizationResult:
    optimum: MixtureChoice
    top_k: MixtureChoice
    natural_predicted: float


def kl_divergence(weights: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """KL(w || reference) per row, with 0 log 0 = 0."""
    weights = np.clip(np.atleast_2d(weights), 0.0, None)
    return (xlogy(weights, weights) - xlogy(weights, reference)).sum(axis=1)


def penalized_objective(predict: Predictor, weights: np.ndarray, natural: np.ndarray, kl_weight: float) -> np.ndarray:
    weights = np.clip(np.atleast_2d(weights), 0.0, None)
    values = np.asarray(predict(weights), dtype=np.float64)
    return values + kl_weight * kl_divergence(weights, natural) if kl_weight else values


def _choice(method: str, weights: np.ndarray, predict: Predictor, space: MixtureSpace, kl_weight: float) -> MixtureChoice:
    return MixtureChoice(
        method=method,
        weights=weights,
        predicted=float(predict(weights[None, :])[0]),
        penalized=float(penalized_objective(predict, weights, space.natural, kl_weight)[0]),
    )


def sample_candidates(
    space: MixtureSpace, n: int, seed: int, min_kept: int, strength_range: tuple[float, float] = (0.1, 5.0)
) -> np.ndarray:
    """RegMix candidates: Dirichlet draws around the natural mix that satisfy every bound.

    When bounds are so tight that fewer than `min_kept` draws satisfy them, all draws are
    capped into the bounds instead of filtered, so the search still covers the admissible set.
    """
    draws = dirichlet_mixtures(space.natural, n, np.random.default_rng(seed), strength_range)
    inside = draws[space.contains(draws)]
    return inside if len(inside) >= min_kept else project_to_bounds(draws, space.lower, space.upper)


def top_k_average(
    predict: Predictor,
    space: MixtureSpace,
    kl_weight: float = 0.0,
    n_candidates: int = 100_000,
    top_k: int = 100,
    seed: int = 0,
) -> tuple[MixtureChoice, MixtureChoice]:
    """(best single candidate, average of the top-k candidates) by penalized prediction."""
    candidates = sample_candidates(space, n_candidates, seed, min_kept=10 * top_k)
    values = penalized_objective(predict, candidates, space.natural, kl_weight)
    order = np.argsort(values, kind="stable")
    best = _choice("best_candidate", candidates[order[0]], predict, space, kl_weight)
    average = _choice("top_k", candidates[order[:top_k]].mean(axis=0), predict, space, kl_weight)
    return best, average


def _slsqp_starts(predict: Predictor, space: MixtureSpace, kl_weight: float, n_starts: int, seed: int) -> np.ndarray:
    """The natural mix capped into the bounds, then the best of a small candidate pool."""
    natural = project_to_bounds(space.natural, space.lower, space.upper)
    pool = sample_candidates(space, SLSQP_START_POOL, seed, min_kept=n_starts)
    best = pool[np.argsort(penalized_objective(predict, pool, space.natural, kl_weight), kind="stable")]
    return np.vstack([natural, best[: n_starts - 1]])


def minimize_slsqp(
    predict: Predictor, space: MixtureSpace, kl_weight: float = 0.0, n_starts: int = 8, seed: int = 0
) -> MixtureChoice:
    """SLSQP on the bounded simplex from several starts; the best admissible end point wins."""

    def objective(w: np.ndarray) -> float:
        return float(penalized_objective(predict, w, space.natural, kl_weight)[0])

    sums_to_one = {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}
    bounds = list(zip(space.lower, space.upper))
    ends = [
        minimize(objective, start, method="SLSQP", bounds=bounds, constraints=[sums_to_one], options=SLSQP_OPTIONS).x
        for start in _slsqp_starts(predict, space, kl_weight, n_starts, seed)
    ]
    admissible = project_to_bounds(np.array(ends), space.lower, space.upper)
    values = penalized_objective(predict, admissible, space.natural, kl_weight)
    return _choice("slsqp", admissible[int(np.argmin(values))], predict, space, kl_weight)


def optimize_mixture(
    predict: Predictor,
    space: MixtureSpace,
    smooth: bool,
    kl_weight: float = 0.0,
    n_candidates: int = 100_000,
    top_k: int = 100,
    n_starts: int = 8,
    seed: int = 0,
) -> OptimizationResult:
    """The optimum (SLSQP when `smooth`, else the best candidate) and the top-k average."""
    if kl_weight < 0:
        raise ValueError(f"kl_weight must be non-negative, got {kl_weight}")
    best, average = top_k_average(predict, space, kl_weight, n_candidates, top_k, seed)
    optimum = minimize_slsqp(predict, space, kl_weight, n_starts, seed) if smooth else best
    natural = float(predict(space.natural[None, :])[0])
    return OptimizationResult(optimum=optimum, top_k=average, natural_predicted=natural)
