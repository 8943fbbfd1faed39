"""The transfer check's helpers: the larger model's shape, the comparison, its plot, the mixtures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mixes.proxy_model import ProxyConfig, ProxyTransformer
from mixes.sampling import MixtureSpace
from mixes.transfer import (
    larger_config,
    non_embedding_parameters,
    sampled_transfer_mixtures,
    transfer_plot,
    transfer_result,
    transfer_summary,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASES = [
    ProxyConfig(vocab_size=256),
    ProxyConfig(vocab_size=512, n_layers=4, d_model=96, n_heads=6, context=32),
    ProxyConfig(vocab_size=100, n_layers=1, d_model=32, n_heads=2),
]
LABELS = ["chosen", "natural", "sampled-0", "sampled-1"]


def module_non_embedding_parameters(config: ProxyConfig) -> int:
    model = ProxyTransformer(config)
    embeddings = model.embed.weight.numel() + model.positions.weight.numel()
    return sum(p.numel() for p in model.parameters()) - embeddings


# -- the larger model ----------------------------------------------------------------------------


@pytest.mark.parametrize("config", [*BASES, larger_config(BASES[0]), larger_config(BASES[1], 8.0)])
def test_non_embedding_parameters_match_the_real_module(config):
    assert non_embedding_parameters(config) == module_non_embedding_parameters(config)


def test_the_default_proxy_grows_by_doubling_its_width():
    base = ProxyConfig(vocab_size=256)  # 2 layers of 64: 2 * (12 * 64^2 + 4 * 64) + 2 * 64 = 98,944
    larger = larger_config(base)
    assert non_embedding_parameters(base) == 98_944
    assert (larger.n_layers, larger.d_model, larger.n_heads) == (2, 128, 8)
    assert non_embedding_parameters(larger) == 2 * (12 * 128**2 + 4 * 128) + 2 * 128 == 394_496


@pytest.mark.parametrize("config", BASES)
@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0, 8.0, 16.0])
def test_larger_config_has_about_the_factor_and_keeps_the_rest(config, factor):
    larger = larger_config(config, factor)
    ratio = module_non_embedding_parameters(larger) / module_non_embedding_parameters(config)
    assert factor / 1.25 <= ratio <= factor * 1.25, (larger, ratio)
    assert larger.d_model % larger.n_heads == 0 and larger.d_model // larger.n_heads == config.d_model // config.n_heads
    assert larger.d_model >= config.d_model and larger.n_layers >= config.n_layers
    unchanged = {"n_layers", "d_model", "n_heads"}
    for field in dataclasses.fields(ProxyConfig):
        if field.name not in unchanged:
            assert getattr(larger, field.name) == getattr(config, field.name), field.name


def test_a_factor_that_doubling_overshoots_grows_depth():
    larger = larger_config(ProxyConfig(vocab_size=256), 2.0)  # doubling the width would be 4x
    assert (larger.n_layers, larger.d_model) == (4, 64)


def test_larger_config_needs_a_factor_above_one():
    with pytest.raises(ValueError, match="above 1"):
        larger_config(ProxyConfig(vocab_size=256), 1.0)


# -- comparing predicted with measured -------------------------------------------------------------


def test_a_ranking_that_holds_transfers():
    summary = transfer_summary(LABELS, np.array([1.00, 1.10, 1.20, 1.30]), np.array([0.80, 0.85, 0.90, 0.99]))
    assert summary["spearman"] == pytest.approx(1.0)
    assert summary["pearson"] == pytest.approx(np.corrcoef([1.00, 1.10, 1.20, 1.30], [0.80, 0.85, 0.90, 0.99])[0, 1])
    assert summary["chosen_measures_best"] and summary["best_measured"] == "chosen"
    assert summary["verdict"].startswith("transfers")
    assert summary["note"].startswith("4 mixtures") and "0.80" in summary["note"] and "1/24" in summary["note"]
    assert summary["measured"] == [0.80, 0.85, 0.90, 0.99] and summary["labels"] == LABELS


def test_one_swap_keeps_the_ranking_but_not_the_best():
    """Chosen and natural swap: Spearman 1 - 6 * 2 / (4 * 15) = 0.8, natural measures best."""
    result = transfer_result(LABELS, np.array([1.00, 1.10, 1.20, 1.30]), np.array([0.86, 0.85, 0.90, 0.95]))
    assert result.spearman == pytest.approx(0.8)
    assert not result.chosen_measures_best and result.best_measured == "natural"
    assert result.verdict.startswith("partly transfers") and "'natural'" in result.verdict


def test_a_reversed_ranking_does_not_transfer():
    result = transfer_result(LABELS, np.array([1.0, 1.1, 1.2, 1.3]), np.array([0.9, 0.8, 0.7, 0.6]))
    assert result.spearman == pytest.approx(-1.0) and result.pearson == pytest.approx(-1.0)
    assert result.best_measured == "sampled-1" and result.verdict.startswith("does not transfer")


def test_the_chosen_best_with_the_others_shuffled_partly_transfers():
    """Measured ranks 1, 4, 3, 2 against 1, 2, 3, 4: Spearman 1 - 6 * 8 / (4 * 15) = 0.2."""
    result = transfer_result(LABELS, np.array([1.0, 1.1, 1.2, 1.3]), np.array([0.7, 0.9, 0.8, 0.75]))
    assert result.chosen_measures_best and result.spearman == pytest.approx(0.2)
    assert result.verdict.startswith("partly transfers: the chosen mix measures best")


def test_a_constant_side_has_no_correlation():
    summary = transfer_summary(LABELS, np.full(4, 1.2), np.array([0.8, 0.85, 0.9, 0.95]))
    assert summary["spearman"] is None and summary["pearson"] is None
    assert summary["chosen_measures_best"] and summary["verdict"].startswith("inconclusive")


@pytest.mark.parametrize(
    ("labels", "predicted", "measured", "match"),
    [
        (["natural", "a"], [1.0, 1.1], [0.8, 0.9], "include 'chosen'"),
        (["chosen", "chosen"], [1.0, 1.1], [0.8, 0.9], "distinct"),
        (["chosen", "a"], [1.0, 1.1], [0.8], "need at least 2"),
        (["chosen", "a"], [1.0, np.nan], [0.8, 0.9], "finite"),
    ],
)
def test_malformed_comparisons_are_rejected(labels, predicted, measured, match):
    with pytest.raises(ValueError, match=match):
        transfer_summary(labels, np.array(predicted), np.array(measured))


def test_transfer_plot_writes_a_png(tmp_path):
    predicted, measured = np.array([1.0, 1.1, 1.2, 1.3]), np.array([0.8, 0.9, 0.85, 0.95])
    path = transfer_plot(tmp_path / "transfer.png", LABELS, predicted, measured)
    assert path == tmp_path / "transfer.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE) and path.stat().st_size > 5_000


# -- the sampled mixtures --------------------------------------------------------------------------


def bounded_space() -> MixtureSpace:
    return MixtureSpace.from_tokens(
        {"web": 400_000, "code": 100_000, "math": 50_000, "books": 30_000}, 1_000_000, max_epochs=4,
        min_weights={"math": 0.05}, max_weights={"web": 0.7},
    )


def test_sampled_transfer_mixtures_are_admissible_distinct_and_deterministic():
    space = bounded_space()
    mixtures = sampled_transfer_mixtures(space, 2, seed=3)
    assert mixtures.shape == (2, space.k)
    assert space.contains(mixtures).all()
    assert np.allclose(mixtures.sum(axis=1), 1.0)
    assert np.all(mixtures >= space.lower - 1e-9) and np.all(mixtures <= space.upper + 1e-9)
    distances = np.abs(np.vstack([space.natural, mixtures[0]]) - mixtures[1]).sum(axis=1)
    assert np.abs(mixtures[0] - space.natural).sum() > 0.3 and np.all(distances > 0.3)
    np.testing.assert_array_equal(mixtures, sampled_transfer_mixtures(space, 2, seed=3))
    assert not np.allclose(mixtures, sampled_transfer_mixtures(space, 2, seed=4))


def test_sampled_transfer_mixtures_respect_bounds_that_exclude_the_natural_mix():
    """A max weight below the natural share: the natural mix is outside, the samples are not."""
    space = MixtureSpace.from_tokens(
        {"big": 900_000, "small": 300_000, "tiny": 200_000}, 1_000_000, max_epochs=4, max_weights={"big": 0.5}
    )
    assert not space.contains(space.natural).all()
    mixtures = sampled_transfer_mixtures(space, 3, seed=0)
    assert space.contains(mixtures).all() and len(np.unique(mixtures.round(6), axis=0)) == 3


def test_no_room_for_distinct_mixtures_is_an_error():
    space = MixtureSpace.from_tokens({"a": 1_000, "b": 1_000}, 1_000, max_epochs=1, min_weights={"a": 0.5, "b": 0.5})
    with pytest.raises(ValueError, match="no room"):
        sampled_transfer_mixtures(space, 1, seed=0)
