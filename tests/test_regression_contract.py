"""`MixingLawRegressor` is a scikit-learn estimator and still fits a mixing law."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import check_estimator

from mixes.regression import MixingLawRegressor

LAW_C, LAW_B, LAW_T = 0.8, -0.4, np.array([-1.2, -0.5, 0.2, 0.6])


def law(X: np.ndarray) -> np.ndarray:
    return LAW_C + np.exp(LAW_B + X @ LAW_T)


def dirichlet_mixtures(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(len(LAW_T)), size=n)


def test_follows_the_scikit_learn_estimator_contract():
    """Every check of the installed scikit-learn passes; none is expected to fail.

    One start instead of eight: the contract does not depend on the number of starts, and
    the checks fit hundreds of times (eight starts take about 90 s, one about 11 s).
    The one check scikit-learn itself may skip is check_array_api_input: it runs only when
    SCIPY_ARRAY_API=1 was set before scipy was imported (it passes then; the estimator is
    numpy-only, so it checks that array API dispatch changes nothing).
    """
    results = check_estimator(MixingLawRegressor(n_starts=1), on_skip=None)
    skipped = {result["check_name"] for result in results if result["status"] == "skipped"}
    assert len(results) > 40 and all(result["status"] in ("passed", "skipped") for result in results)
    assert skipped <= ({"check_array_api_input"} if os.environ.get("SCIPY_ARRAY_API") != "1" else set())


def test_declares_a_single_output_regressor():
    tags = get_tags(MixingLawRegressor())
    assert tags.estimator_type == "regressor"
    assert tags.target_tags.single_output and not tags.target_tags.multi_output
    assert not tags.input_tags.sparse and not tags.input_tags.allow_nan
    with pytest.raises(ValueError, match="1d array"):
        MixingLawRegressor().fit(dirichlet_mixtures(10, 0), np.ones((10, 2)))


def test_recovers_a_known_mixing_law():
    X, X_test = dirichlet_mixtures(40, seed=0), dirichlet_mixtures(200, seed=1)
    y = law(X) + np.random.default_rng(2).normal(scale=0.005, size=len(X))
    predicted = MixingLawRegressor().fit(X, y).predict(X_test)
    assert spearmanr(predicted, law(X_test)).statistic >= 0.95
    assert np.abs(predicted - law(X_test)).max() < 0.03  # the law spans about 0.7 bpb over the simplex


def test_is_deterministic_for_a_random_state():
    X = dirichlet_mixtures(30, seed=3)
    y = law(X) + np.random.default_rng(4).normal(scale=0.01, size=len(X))
    first = MixingLawRegressor(random_state=7).fit(X, y)
    np.testing.assert_array_equal(first.params_, MixingLawRegressor(random_state=7).fit(X, y).params_)


@pytest.mark.parametrize(
    "y",
    [np.full(6, 1.3), np.array([0.0, -1.0, -2.5, 3.0, 0.5, -0.2]), np.array([1.1, 1.1, 1.1, 1.1, 1.1, 1.2])],
    ids=["constant", "non-positive", "almost-constant"],
)
def test_degenerate_targets_fit_to_finite_predictions(y):
    X = dirichlet_mixtures(len(y), seed=5)
    predicted = MixingLawRegressor().fit(X, y).predict(X)
    assert np.all(np.isfinite(predicted))
    if np.ptp(y) == 0:
        np.testing.assert_allclose(predicted, y, atol=1e-9)


def test_one_sample_predicts_its_value():
    X = dirichlet_mixtures(1, seed=6)
    model = MixingLawRegressor().fit(X, [1.7])
    np.testing.assert_allclose(model.predict(X), [1.7], atol=1e-9)


@pytest.mark.parametrize(
    ("params", "match"), [({"n_starts": 0}, "n_starts"), ({"f_scale_ratio": -1.0}, "f_scale_ratio")]
)
def test_invalid_parameters_are_rejected_at_fit(params, match):
    with pytest.raises(ValueError, match=match):
        MixingLawRegressor(**params).fit(dirichlet_mixtures(5, seed=0), np.arange(5.0))
