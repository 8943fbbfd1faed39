"""Trained proxies kept by what made them, so that a proxy is trained once whatever it is scored on.

A proxy's key is a hash of everything its weights are a function of: the token streams, the
model shape and optimiser settings, the token budget, the mixture, the seed, the device (and
for an anneal proxy, the base it continues). Its scores are kept by target id, a hash of the
target's own tokens, so an evaluation that is added or changed is scored on the saved weights
(no training), and one that is renamed or unchanged is not scored again.

::

    <store>/<key>.pt     the final model weights (a state dict)
    <store>/<key>.json   how it was trained (weights, seed, tokens, seconds, final train loss)
                         and its metrics per target id

Proxies are small (a 2-layer, 64-wide model with a 4k vocabulary is ~1.5 MB), so a swarm's
store is tens of megabytes. Deleting the folder makes the next run train every proxy again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from curation.atomic import atomic_path, write_text_atomic


class ProxyStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.pt", self.root / f"{key}.json"

    def facts(self, key: str) -> dict | None:
        """How the proxy was trained and its scores, or None when it was never trained (or lost its weights)."""
        weights, facts = self._paths(key)
        if not (weights.exists() and facts.exists()):
            return None
        return json.loads(facts.read_text())

    def model_state(self, key: str) -> dict[str, torch.Tensor]:
        return torch.load(self._paths(key)[0], map_location="cpu", weights_only=True)

    def save(self, key: str, model_state: Mapping[str, torch.Tensor], facts: Mapping) -> None:
        """The weights first, then the facts: a proxy counts as stored only once both are there."""
        self.root.mkdir(parents=True, exist_ok=True)
        weights, facts_path = self._paths(key)
        with atomic_path(weights) as temporary:
            torch.save(dict(model_state), temporary)
        write_text_atomic(facts_path, json.dumps(dict(facts), sort_keys=True))

    def add_scores(self, key: str, scores: Mapping[str, Mapping[str, float]]) -> dict:
        """Record metrics by target id; returns the updated facts."""
        facts = self.facts(key)
        if facts is None:
            raise FileNotFoundError(f"{self.root}: no stored proxy {key}")
        facts["scores"] = {**facts.get("scores", {}), **{tid: dict(m) for tid, m in scores.items()}}
        write_text_atomic(self._paths(key)[1], json.dumps(facts, sort_keys=True))
        return facts
