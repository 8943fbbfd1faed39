"""The space of admissible mixtures and RegMix sampling of mixtures to train proxies on.

Mixtures are rows of an (n, k) array over the domains of a `MixtureSpace`, in its domain order,
each row summing to 1. The repetition cap is evaluated at the *target* budget (the real training
run, not the proxy): a domain with `tokens_d` tokens may take at most
`max_epochs * tokens_d / target_budget` of the mixture, so it is not repeated more than
`max_epochs` times.

Mixtures outside the admissible box are capped: moved to the nearest (Euclidean) point of
{w : sum(w) = 1, lower <= w <= upper}, which leaves admissible mixtures unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

BISECTION_STEPS = 100
TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False)
class MixtureSpace:
    """Domains, their token counts and the bounds any mixture for `target_budget` must respect.

    `lower` and `upper` are the per-domain weight bounds; `upper` already includes the cap.
    """

    domains: tuple[str, ...]
    tokens: np.ndarray
    target_budget: int
    max_epochs: float
    lower: np.ndarray
    upper: np.ndarray

    @classmethod
    def from_tokens(
        cls,
        domain_tokens: Mapping[str, int],
        target_budget: int,
        max_epochs: float,
        min_weights: Mapping[str, float] | None = None,
        max_weights: Mapping[str, float] | None = None,
        repeatable_tokens: Mapping[str, int] | None = None,
    ) -> MixtureSpace:
        """`repeatable_tokens` (default: all of them) are what the cap of `max_epochs` repetitions
        counts: an export that trains whole sequences can repeat only its whole sequences."""
        domains = tuple(domain_tokens)
        unknown = sorted((set(min_weights or {}) | set(max_weights or {})) - set(domains))
        if unknown:
            raise ValueError(f"weight bounds name unknown domains: {unknown}")
        tokens = np.array([domain_tokens[d] for d in domains], dtype=np.float64)
        if not domains or np.any(tokens <= 0):
            raise ValueError(f"every domain needs a positive token count: {dict(domain_tokens)}")
        if target_budget <= 0 or max_epochs <= 0:
            raise ValueError("target_budget and max_epochs must be positive")
        supply = tokens if repeatable_tokens is None else np.array([repeatable_tokens[d] for d in domains], dtype=np.float64)
        cap = np.minimum(1.0, max_epochs * supply / target_budget)
        lower = np.array([(min_weights or {}).get(d, 0.0) for d in domains], dtype=np.float64)
        upper = np.minimum(cap, [(max_weights or {}).get(d, 1.0) for d in domains])
        space = cls(domains, tokens, int(target_budget), float(max_epochs), lower, upper)
        space._check_feasible()
        return space

    def _check_feasible(self) -> None:
        if np.any(self.lower < 0) or np.any(self.lower > self.upper + TOLERANCE):
            bad = [d for d, lo, hi in zip(self.domains, self.lower, self.upper) if lo < 0 or lo > hi]
            raise ValueError(f"min weight exceeds max weight or repetition cap for domains {bad}")
        if self.lower.sum() > 1 + TOLERANCE or self.upper.sum() < 1 - TOLERANCE:
            raise ValueError(
                f"no mixture fits: min weights sum to {self.lower.sum():.4f}, max weights "
                f"(after the {self.max_epochs}-epoch cap at {self.target_budget} tokens) "
                f"sum to {self.upper.sum():.4f}; a mixture must sum to 1"
            )

    @property
    def k(self) -> int:
        return len(self.domains)

    @property
    def natural(self) -> np.ndarray:
        """The natural mix: each domain's share of all tokens (possibly outside the bounds)."""
        return self.tokens / self.tokens.sum()

    @property
    def repetition_cap(self) -> np.ndarray:
        return np.minimum(1.0, self.max_epochs * self.tokens / self.target_budget)

    def epochs(self, weights: np.ndarray) -> np.ndarray:
        """How many times each domain is seen at the target budget."""
        return np.asarray(weights) * self.target_budget / self.tokens

    def contains(self, weights: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
        """Per row: sums to 1 and lies within the bounds (including the cap)."""
        weights = np.atleast_2d(weights)
        return (
            (np.abs(weights.sum(axis=1) - 1) <= tolerance)
            & np.all(weights >= self.lower - tolerance, axis=1)
            & np.all(weights <= self.upper + tolerance, axis=1)
        )

    def as_dict(self, weights: np.ndarray) -> dict[str, float]:
        return dict(zip(self.domains, np.asarray(weights, dtype=float).tolist()))


def project_to_bounds(weights: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto {sum(w) = 1, lower <= w <= upper}.

    The projection is clip(v - tau, lower, upper) for the shift tau that makes the row sum to 1;
    the sum is monotone in tau, so tau is found by bisection, all rows at once. Bisection only
    approaches tau, so tau is then solved exactly from which coordinates sit at a bound: a
    coordinate that belongs at a bound gets exactly the bound (a one-hot stays one-hot).
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    low_tau = (weights - upper).min(axis=1)  # every coordinate at its upper bound: sum >= 1
    high_tau = (weights - lower).max(axis=1)  # every coordinate at its lower bound: sum <= 1
    for _ in range(BISECTION_STEPS):
        tau = (low_tau + high_tau) / 2
        too_big = np.clip(weights - tau[:, None], lower, upper).sum(axis=1) > 1
        low_tau = np.where(too_big, tau, low_tau)
        high_tau = np.where(too_big, high_tau, tau)
    tau = _exact_shift(weights, (low_tau + high_tau) / 2, lower, upper)
    projected = np.clip(weights - tau[:, None], lower, upper)
    return projected / projected.sum(axis=1, keepdims=True)


def _exact_shift(weights: np.ndarray, tau: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The tau that makes the coordinates between their bounds at `tau` fill what the rest leave."""
    shifted = weights - tau[:, None]
    at_lower, at_upper = shifted <= lower, shifted >= upper
    free = ~(at_lower | at_upper)
    bound_mass = np.where(at_lower, lower, 0.0).sum(axis=1) + np.where(at_upper, upper, 0.0).sum(axis=1)
    n_free = free.sum(axis=1)
    solved = (np.where(free, weights, 0.0).sum(axis=1) - (1 - bound_mass)) / np.maximum(n_free, 1)
    return np.where(n_free > 0, solved, tau)


def dirichlet_mixtures(
    natural: np.ndarray, n: int, rng: np.random.Generator, strength_range: tuple[float, float]
) -> np.ndarray:
    """RegMix draws: Dirichlet(s * k * natural) with s log-uniform in `strength_range`.

    The mean is the natural mix; small s gives sparse mixtures far from it, large s mixtures
    near it, so the samples cover both corners and the neighbourhood of the natural mix.
    """
    low, high = strength_range
    if not 0 < low <= high:
        raise ValueError(f"strength_range must satisfy 0 < low <= high, got {strength_range}")
    strengths = np.exp(rng.uniform(np.log(low), np.log(high), size=n))
    alphas = np.maximum(strengths[:, None] * len(natural) * natural[None, :], 1e-3)
    # numpy's Dirichlet has no batched alphas; gamma draws normalised per row are the same thing.
    draws = rng.standard_gamma(alphas)
    totals = draws.sum(axis=1, keepdims=True)
    degenerate = totals[:, 0] <= 0  # every gamma underflowed: fall back to the row's largest alpha
    draws[degenerate, np.argmax(alphas[degenerate], axis=1)] = 1.0
    return draws / draws.sum(axis=1, keepdims=True)


def anchor_mixtures(space: MixtureSpace) -> np.ndarray:
    """The natural mix, then each domain's corner, all within the repetition cap.

    A corner is one-hot where the cap allows; otherwise the domain takes its cap and the rest is
    the natural mix shifted down evenly (the projection of natural + 2 * one-hot), so that capped
    corners stay distinct from each other.
    """
    anchors = np.vstack([space.natural, space.natural + 2 * np.eye(space.k)])
    return project_to_bounds(anchors, np.zeros(space.k), space.repetition_cap)


def sample_mixtures(
    space: MixtureSpace,
    n: int,
    seed: int,
    strength_range: tuple[float, float] = (0.1, 5.0),
    include_anchors: bool = True,
) -> np.ndarray:
    """n mixtures for proxies: the anchors (natural + corners) first, then Dirichlet draws.

    Only the repetition cap applies (not the per-domain bounds, which constrain the chosen mix):
    proxies that explore beyond the bounds help the regression near them.
    """
    anchors = anchor_mixtures(space) if include_anchors else np.empty((0, space.k))
    if n < len(anchors):
        raise ValueError(f"n={n} is fewer than the {len(anchors)} anchor mixtures (natural + corners)")
    rng = np.random.default_rng(seed)
    draws = dirichlet_mixtures(space.natural, n - len(anchors), rng, strength_range)
    capped = project_to_bounds(draws, np.zeros(space.k), space.repetition_cap)
    return np.vstack([anchors, capped])
