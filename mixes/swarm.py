"""Run many proxies as independent tasks, keep each in a `ProxyStore`, collect their rows in `proxies.parquet`.

Tasks go through a caller-given `submit(fn, *args)`: a Dask `Client.submit`, an executor's
`submit`, or a synchronous function. It may return a future (anything with `result()` and
`add_done_callback`, as Dask and `concurrent.futures` futures have) or the result itself.
Arguments are passed through unchanged, so Dask callers can pass the token streams and targets
once as scattered futures (`client.scatter(..., broadcast=True)`) instead of shipping them per task.

Each spec is one of three cases, by what the store holds for its key:

- not stored: trained (and scored on every target) as one task; the weights go in the store;
- stored, but some target is new or changed: scored on those targets from the saved weights;
- stored and scored on every target: its row is written without any task.

`proxies.parquet` is rewritten (temp file + rename) after every finished task, so a killed
swarm loses at most the runs in flight; run again, the store has every proxy that finished.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curation.atomic import atomic_path
from mixes.proxy_model import ProxyConfig, evaluate_model_state, train_proxy_state
from curation.digests import stable_hash
from mixes.proxy_store import ProxyStore

WEIGHT_PREFIX = "w_"
BPB_PREFIX = "bpb_"
METRIC_PREFIXES = {"bpb": BPB_PREFIX, "accuracy": "acc_"}
KEY = ["mixture_id", "seed"]
TRAINED, SCORED, REUSED = "trained", "scored", "reused"


@dataclass(frozen=True)
class ProxySpec:
    mixture_id: str
    weights: dict[str, float]
    seed: int


class SwarmFailed(RuntimeError):
    def __init__(self, failures: dict[tuple[str, int], BaseException]):
        self.failures = failures
        lines = [f"{mid} seed {seed}: {type(err).__name__}: {err}" for (mid, seed), err in sorted(failures.items())]
        super().__init__(f"{len(failures)} proxy run(s) failed\n  " + "\n  ".join(lines))


def make_specs(domains: Sequence[str], mixtures: np.ndarray, seeds: Iterable[int] = (0,)) -> list[ProxySpec]:
    """One spec per mixture row and seed; ids `mix-0000`, ... follow the row order."""
    width = max(4, len(str(len(mixtures) - 1)))
    return [
        ProxySpec(f"mix-{row:0{width}d}", dict(zip(domains, map(float, weights))), int(seed))
        for row, weights in enumerate(mixtures)
        for seed in seeds
    ]


@dataclass(frozen=True, eq=False)
class TrainedProxy:
    """A training task's answer: the final weights, how they were trained, the metrics per target name."""

    model_state: dict
    facts: dict  # weights (scaled to sum to 1), seed, tokens, seconds, final_train_loss
    scores: dict[str, dict[str, float]]


def trained_proxy(result, state) -> TrainedProxy:
    facts = {
        "weights": result.weights, "seed": result.seed, "tokens": result.tokens_trained,
        "seconds": result.seconds, "final_train_loss": result.final_train_loss,
    }
    return TrainedProxy(state.model, facts, result.scores)


def train_spec(
    spec: ProxySpec, train_streams: Mapping[str, np.ndarray], targets: Mapping, token_budget: int,
    config: ProxyConfig, device: str,
) -> TrainedProxy:
    """Task body: train one proxy from scratch on the spec's mixture and score it on every target."""
    return trained_proxy(*train_proxy_state(train_streams, spec.weights, targets, token_budget, config, spec.seed, device))


def score_stored(store_root: Path, key: str, targets: Mapping, names: Sequence[str], config: ProxyConfig, device: str) -> dict:
    """Task body: a stored proxy's metrics on the named targets (evaluation only)."""
    state = ProxyStore(store_root).model_state(key)
    return evaluate_model_state(state, {name: targets[name] for name in names}, config, device)


@dataclass(frozen=True)
class Swarm:
    """What a swarm's proxies are: how a spec trains, what its weights depend on, what it is scored on.

    ``train(spec, *train_args)`` returns a `TrainedProxy`; ``basis`` is everything the weights
    depend on besides the spec (streams, model, budget, device, a base model), hashed into the
    store key with the spec's mixture and seed. ``targets`` may be a future (scattered once);
    ``target_ids`` maps each target's name to the id of its content.
    """

    train: Callable
    train_args: tuple
    basis: Mapping
    targets: object
    target_ids: Mapping[str, str]
    config: ProxyConfig
    device: str

    def key(self, spec: ProxySpec) -> str:
        total = sum(spec.weights.values())
        weights = {domain: round(weight / total, 12) for domain, weight in sorted(spec.weights.items())}
        return stable_hash({"basis": self.basis, "weights": weights, "seed": spec.seed})


@dataclass
class SwarmCounts:
    trained: int = 0
    scored: int = 0
    reused: int = 0
    failures: dict[tuple[str, int], BaseException] = field(default_factory=dict)

    def add(self, action: str) -> None:
        setattr(self, action, getattr(self, action) + 1)


def metric_columns(scores: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``{target: {bpb, accuracy}}`` as ``bpb_<target>``, ``acc_<target>`` columns."""
    return {
        f"{METRIC_PREFIXES[metric]}{target}": value
        for target, metrics in scores.items() for metric, value in metrics.items()
    }


def proxy_row(spec: ProxySpec, facts: Mapping, target_ids: Mapping[str, str]) -> dict:
    """A stored proxy as a row: its mixture, its metrics on the current targets, its cost."""
    by_name = {name: facts["scores"][tid] for name, tid in target_ids.items()}
    return {
        "mixture_id": spec.mixture_id,
        "seed": spec.seed,
        **{f"{WEIGHT_PREFIX}{domain}": weight for domain, weight in facts["weights"].items()},
        **metric_columns(by_name),
        "tokens": facts["tokens"],
        "seconds": facts["seconds"],
        "final_train_loss": facts["final_train_loss"],
    }


def load_proxies(path: Path) -> pd.DataFrame:
    """The finished proxies, or an empty frame when there is no file yet."""
    path = Path(path)
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=KEY)


def write_proxies_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Sorted by mixture id and seed; a reader sees the old file or the new one, never a partial one."""
    path = Path(path)
    with atomic_path(path) as temporary:
        frame.sort_values(KEY).reset_index(drop=True).to_parquet(temporary, index=False)


def _is_future(handle: object) -> bool:
    return hasattr(handle, "add_done_callback") and hasattr(handle, "result")


def _in_completion_order(futures: Sequence[tuple[object, object]]) -> Iterator[tuple[object, object]]:
    """(job, future) pairs as the futures finish (callbacks may run on other threads)."""
    finished: queue.Queue = queue.Queue()
    for job, future in futures:
        future.add_done_callback(lambda _, job=job, future=future: finished.put((job, future)))
    for _ in futures:
        yield finished.get()


@dataclass(frozen=True)
class _Job:
    spec: ProxySpec
    key: str
    action: str  # TRAINED or SCORED
    names: tuple[str, ...]  # the targets a SCORED job measures


class _SwarmRun:
    """The swarm's rows, saved after each finished job; the store updated with what each job made."""

    def __init__(self, swarm: Swarm, store: ProxyStore, out_path: Path, total: int, on_result):
        self.swarm, self.store, self.out_path, self.total, self.on_result = swarm, store, Path(out_path), total, on_result
        self.rows: list[dict] = []
        self.counts = SwarmCounts()

    def finish(self, job: _Job, outcome: Callable[[], object]) -> None:
        try:
            answer = outcome()
        except Exception as error:  # noqa: BLE001 - one failed proxy must not lose the others
            self.counts.failures[(job.spec.mixture_id, job.spec.seed)] = error
            return
        ids = self.swarm.target_ids
        if job.action == TRAINED:
            facts = {**answer.facts, "scores": {ids[name]: metrics for name, metrics in answer.scores.items()}}
            self.store.save(job.key, answer.model_state, facts)
        else:
            facts = self.store.add_scores(job.key, {ids[name]: answer[name] for name in job.names})
        self.add_row(job.spec, facts, job.action)

    def add_row(self, spec: ProxySpec, facts: Mapping, action: str) -> None:
        row = proxy_row(spec, facts, self.swarm.target_ids)
        self.rows.append(row)
        self.counts.add(action)
        write_proxies_atomically(pd.DataFrame(self.rows), self.out_path)
        if self.on_result is not None:
            self.on_result(row, len(self.rows), self.total, action)


def _plan(specs: Sequence[ProxySpec], swarm: Swarm, store: ProxyStore, run: _SwarmRun) -> list[_Job]:
    """Rows of the proxies needing no task are added at once; the jobs of the others are returned."""
    jobs = []
    for spec in specs:
        key = swarm.key(spec)
        facts = store.facts(key)
        if facts is None:
            jobs.append(_Job(spec, key, TRAINED, ()))
            continue
        missing = tuple(name for name, tid in swarm.target_ids.items() if tid not in facts.get("scores", {}))
        if missing:
            jobs.append(_Job(spec, key, SCORED, missing))
        else:
            run.add_row(spec, facts, REUSED)
    return jobs


def run_swarm(
    specs: Sequence[ProxySpec],
    swarm: Swarm,
    submit: Callable,
    store: ProxyStore,
    out_path: Path,
    on_result: Callable[[dict, int, int, str], None] | None = None,
) -> tuple[pd.DataFrame, SwarmCounts]:
    """Train, score or reuse every spec; the rows of all of them in `out_path` and returned, with the counts.

    `on_result(row, done, total, action)` is called after each row is saved (action: trained,
    scored or reused). Failed jobs do not stop the others; they are raised together as
    `SwarmFailed` once the rest have finished. A synchronous `submit` runs each job as submitted.
    """
    keys = [(spec.mixture_id, spec.seed) for spec in specs]
    if len(set(keys)) != len(keys):
        raise ValueError("specs repeat a (mixture_id, seed) pair")
    run = _SwarmRun(swarm, store, out_path, len(specs), on_result)
    futures = []
    for job in _plan(specs, swarm, store, run):
        if job.action == TRAINED:
            task, args = swarm.train, (job.spec, *swarm.train_args)
        else:
            task, args = score_stored, (store.root, job.key, swarm.targets, job.names, swarm.config, swarm.device)
        try:
            handle = submit(task, *args)
        except Exception as error:  # noqa: BLE001 - a synchronous submit raises the task's error
            run.counts.failures[(job.spec.mixture_id, job.spec.seed)] = error
            continue
        if _is_future(handle):
            futures.append((job, handle))
        else:
            run.finish(job, lambda handle=handle: handle)
    for job, future in _in_completion_order(futures):
        run.finish(job, future.result)
    if run.counts.failures:
        raise SwarmFailed(run.counts.failures)
    return load_proxies(out_path), run.counts
