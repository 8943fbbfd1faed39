"""Proxies as Dask tasks: what they train on, the swarm that trains, scores or reuses them, progress lines."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from distributed import Client
from rich.console import Console

from mixes.proxy_model import ProxyConfig, resolve_device
from curation.digests import array_hash
from mixes.proxy_store import ProxyStore
from mixes.swarm import ProxySpec, Swarm, SwarmCounts, run_swarm, train_spec
from pipelines.config import ProxiesSection
from pipelines.run import RunDir


@dataclass(frozen=True)
class ProxyInputs:
    tokens: dict[str, int]  # training tokens per domain, as the tokenize shards count them
    streams: dict[str, np.ndarray]  # each domain's training documents back to back
    targets: dict  # name -> TargetSet (a text slice) or TaskTarget (an evaluation task)
    model: ProxyConfig

    @property
    def target_ids(self) -> dict[str, str]:
        """Each target's content id: a proxy is scored again on a target only when this changes."""
        return {name: target.identity() for name, target in self.targets.items()}

    @property
    def stream_ids(self) -> dict[str, str]:
        return {domain: array_hash(stream) for domain, stream in self.streams.items()}


def dask_submit(client: Client) -> Callable:
    """`submit` for run_swarm: one task per proxy, keyed by its name, never merged with another."""

    def submit(fn: Callable, spec_or_root, *args):
        label = f"{spec_or_root.mixture_id}-{spec_or_root.seed}" if isinstance(spec_or_root, ProxySpec) else "score"
        return client.submit(fn, spec_or_root, *args, key=f"proxy-{label}-{os.urandom(4).hex()}", pure=False)

    return submit


class ProgressLines:
    """run_swarm's `on_result`: a console line per trained or scored proxy, with the wall time per task."""

    def __init__(self, console: Console, label: str):
        self.console, self.label = console, label
        self.started = time.perf_counter()
        self.tasks = 0

    def __call__(self, row: dict, done: int, total: int, action: str) -> None:
        if action == "reused":
            return
        self.tasks += 1
        wall = (time.perf_counter() - self.started) / self.tasks
        what = f"trained in {row['seconds']:.1f}s" if action == "trained" else "scored on new targets (stored weights)"
        self.console.print(
            f"[dim]{self.label}: {done}/{total} · {row['mixture_id']} seed {row['seed']} {what} · "
            f"{wall:.1f}s wall per task[/dim]"
        )


def proxy_store(run: RunDir) -> ProxyStore:
    return ProxyStore(run.proxy_store)


def training_basis(inputs: ProxyInputs, model: ProxyConfig, token_budget: int, device: str) -> dict:
    """What a proxy's weights depend on besides its mixture and seed (the store key's other half)."""
    return {
        "kind": "pretraining",
        "streams": inputs.stream_ids,
        "model": dataclasses.asdict(model),
        "token_budget": token_budget,
        "device": resolve_device(device).type,
    }


def proxy_swarm(client: Client, inputs: ProxyInputs, section: ProxiesSection, model: ProxyConfig | None = None,
                token_budget: int | None = None) -> Swarm:
    """The swarm of `inputs.model` proxies (or of a larger `model`, `token_budget`); streams and targets scattered once."""
    model, token_budget = model or inputs.model, token_budget or section.token_budget
    streams, targets = client.scatter([inputs.streams, inputs.targets], broadcast=True, hash=False)
    return Swarm(
        train=train_spec, train_args=(streams, targets, token_budget, model, section.device),
        basis=training_basis(inputs, model, token_budget, section.device),
        targets=targets, target_ids=inputs.target_ids, config=model, device=section.device,
    )


def train_proxies(
    specs: Sequence[ProxySpec], client: Client, run: RunDir, out: Path, swarm: Swarm, progress: ProgressLines
) -> tuple[pd.DataFrame, SwarmCounts]:
    """Train, score or reuse every spec (mixes.swarm), its rows in `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return run_swarm(specs, swarm, dask_submit(client), proxy_store(run), out, on_result=progress)


def swarm_counts(counts: SwarmCounts) -> dict[str, int]:
    return {"trained": counts.trained, "scored": counts.scored, "reused": counts.reused}


