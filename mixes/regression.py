"""Regressions from mixture weights to the objective, chosen by cross-validated rank correlation.

The objective of a proxy is a weighted mean of its per-target bits per byte. Three regressors:

- `linear`: ridge regression on the weights (RegMix's linear model);
- `mixing_law`: loss = c + exp(b + w . t) (Data Mixing Laws), a robust (soft-L1) least-squares fit
  from several starts;
- `boosting`: gradient-boosted trees (RegMix uses LightGBM), with leaves small enough to split
  on ~30 samples (the library defaults of 20 samples per leaf predict a constant there).

What matters for choosing a mix is the ranking of mixtures, so each regressor is scored by the
Spearman correlation between its out-of-fold predictions and the measured objective.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from mixes.swarm import BPB_PREFIX, WEIGHT_PREFIX

MAX_EXPONENT = 50.0  # keeps exp() finite while least_squares explores
SMOOTH_REGRESSORS = frozenset({"linear", "mixing_law"})


def weights_matrix(proxies: pd.DataFrame, domains: list[str]) -> np.ndarray:
    """The proxies' mixture weights as an (n, k) array in `domains` order (missing columns are 0)."""
    columns = [f"{WEIGHT_PREFIX}{d}" for d in domains]
    return proxies.reindex(columns=columns).fillna(0.0).to_numpy(dtype=np.float64)


def objective_values(proxies: pd.DataFrame, target_weights: Mapping[str, float]) -> np.ndarray:
    """Per proxy: the weighted mean of its target bpb (weights scaled to sum to 1)."""
    total = sum(target_weights.values())
    if total <= 0 or any(w < 0 for w in target_weights.values()):
        raise ValueError(f"target weights must be non-negative and not all zero: {dict(target_weights)}")
    missing = [t for t in target_weights if f"{BPB_PREFIX}{t}" not in proxies]
    if missing:
        raise ValueError(f"the proxies have no bpb for targets {missing}")
    values = sum(w * proxies[f"{BPB_PREFIX}{t}"].to_numpy(dtype=np.float64) for t, w in target_weights.items())
    return values / total


class MixingLawRegressor(RegressorMixin, BaseEstimator):
    """loss = c + exp(b + w . t), fitted by robust least squares from several starts.

    Each start fixes a guess of the irreducible loss c below the smallest observed loss and
    initialises (b, t) by linear regression of log(loss - c) on the weights; the fit with the
    lowest robust cost wins. `f_scale_ratio` sets the soft-L1 threshold as a fraction of the
    standard deviation of the losses: residuals beyond it count linearly, not quadratically.

    A scikit-learn estimator: dense, finite, single-output input only. `random_state` (an int,
    None or a `numpy.random.Generator`) seeds the jitter of the starts.
    """

    def __init__(self, n_starts: int = 8, f_scale_ratio: float = 0.1, random_state: int | None = 0):
        self.n_starts = n_starts
        self.f_scale_ratio = f_scale_ratio
        self.random_state = random_state

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False  # one objective per mixture: y must be 1-d
        return tags

    @staticmethod
    def _predict_with(params: np.ndarray, X: np.ndarray) -> np.ndarray:
        return params[0] + np.exp(np.clip(params[1] + X @ params[2:], -MAX_EXPONENT, MAX_EXPONENT))

    def _starts(self, X: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        rng = np.random.default_rng(self.random_state)
        spread = np.ptp(y) + 1e-6
        design = np.hstack([np.ones((len(X), 1)), X])
        starts = []
        for gap in np.geomspace(0.05, 20.0, self.n_starts):
            c = y.min() - gap * spread
            coefficients, *_ = np.linalg.lstsq(design, np.log(y - c), rcond=None)
            jitter = rng.normal(scale=0.1 * (np.abs(coefficients[1:]).mean() + 1e-3), size=X.shape[1])
            starts.append(np.concatenate([[c, coefficients[0]], coefficients[1:] + jitter]))
        return starts

    def _check_params(self) -> None:
        if not isinstance(self.n_starts, Integral) or self.n_starts < 1:
            raise ValueError(f"n_starts must be a positive integer, got {self.n_starts!r}")
        if not isinstance(self.f_scale_ratio, Real) or not self.f_scale_ratio > 0:
            raise ValueError(f"f_scale_ratio must be a positive number, got {self.f_scale_ratio!r}")

    @staticmethod
    def _jacobian(params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """d prediction / d (c, b, t): 1, e and e * X with e = exp(b + X t); 0 where the exponent is clipped."""
        exponent = params[1] + X @ params[2:]
        e = np.where(np.abs(exponent) < MAX_EXPONENT, np.exp(np.clip(exponent, -MAX_EXPONENT, MAX_EXPONENT)), 0.0)
        return np.hstack([np.ones((len(X), 1)), e[:, None], e[:, None] * X])

    def fit(self, X, y):
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        y = y.astype(np.float64, copy=False)
        f_scale = max(self.f_scale_ratio * float(np.std(y)), 1e-9)
        fits = [
            least_squares(
                lambda params: self._predict_with(params, X) - y, start, jac=lambda params: self._jacobian(params, X),
                loss="soft_l1", f_scale=f_scale,
            )
            for start in self._starts(X, y)
        ]
        self.params_ = min(fits, key=lambda fit: fit.cost).x
        return self

    def predict(self, X):
        check_is_fitted(self)
        return self._predict_with(self.params_, validate_data(self, X, dtype=np.float64, reset=False))


def default_regressors(seed: int = 0) -> dict[str, BaseEstimator]:
    return {
        "linear": RidgeCV(alphas=np.logspace(-6, 1, 15)),
        "mixing_law": MixingLawRegressor(random_state=seed),
        "boosting": GradientBoostingRegressor(
            n_estimators=150,
            learning_rate=0.1,
            max_depth=3,
            min_samples_leaf=2,
            subsample=0.8,
            random_state=seed,
        ),
    }


def rank_correlation(measured: np.ndarray, predicted: np.ndarray) -> float:
    """Spearman correlation; NaN when either side is constant (no ranking at all)."""
    if np.ptp(predicted) == 0 or np.ptp(measured) == 0:
        return float("nan")
    return float(spearmanr(measured, predicted).statistic)


def out_of_fold_predictions(
    estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, folds: KFold
) -> tuple[np.ndarray, bool]:
    """Each proxy predicted by a model fitted without its fold, and whether any fold model is constant.

    A fold model that predicts one value for every mixture ranks nothing, but the out-of-fold
    predictions of several such models still differ between folds (each predicts its fold's
    training mean) and can correlate by chance; the flag catches that.
    """
    predictions = np.empty(len(y))
    constant = False
    for train, test in folds.split(X):
        model = clone(estimator).fit(X[train], y[train])
        predictions[test] = model.predict(X[test])
        constant |= bool(np.ptp(model.predict(X)) == 0)
    return predictions, constant


@dataclass
class RegressorScore:
    name: str
    spearman: float
    out_of_fold: np.ndarray
    model: BaseEstimator  # fitted on all proxies


@dataclass
class RegressionResult:
    domains: list[str]
    weights: np.ndarray
    measured: np.ndarray
    scores: dict[str, RegressorScore]
    chosen: str

    @property
    def chosen_model(self) -> BaseEstimator:
        return self.scores[self.chosen].model

    @property
    def chosen_is_smooth(self) -> bool:
        """Whether gradient-based search suits the chosen model (trees are piecewise constant)."""
        return self.chosen in SMOOTH_REGRESSORS


def score_regressor(name: str, estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, folds: KFold) -> RegressorScore:
    """CV Spearman of the out-of-fold predictions (NaN if a fold model is constant); refit on all."""
    out_of_fold, constant = out_of_fold_predictions(estimator, X, y, folds)
    spearman = float("nan") if constant else rank_correlation(y, out_of_fold)
    return RegressorScore(name, spearman, out_of_fold, clone(estimator).fit(X, y))


def fit_regressors(
    weights: np.ndarray,
    measured: np.ndarray,
    domains: list[str],
    n_folds: int = 5,
    seed: int = 0,
    regressors: Mapping[str, BaseEstimator] | None = None,
) -> RegressionResult:
    """Score every regressor by k-fold CV Spearman, refit each on all proxies, choose the best.

    A regressor that predicts a constant in any fold scores NaN and is never chosen.
    """
    weights, measured = np.asarray(weights, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if len(weights) < n_folds or len(weights) != len(measured):
        raise ValueError(f"need at least {n_folds} proxies with one objective each, got {len(weights)}")
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    candidates = regressors if regressors is not None else default_regressors(seed)
    scores = {name: score_regressor(name, est, weights, measured, folds) for name, est in candidates.items()}
    ranked = [name for name in scores if np.isfinite(scores[name].spearman)]
    if not ranked:
        raise ValueError("every regressor predicts a constant: the proxies carry no signal to rank")
    chosen = max(ranked, key=lambda name: scores[name].spearman)
    return RegressionResult(list(domains), weights, measured, scores, chosen)
