"""Run many proxies as independent tasks and collect their results in `proxies.parquet`.

Tasks go through a caller-given `submit(fn, *args)`: a Dask `Client.submit`, an executor's
`submit`, or a synchronous function. It may return a future (anything with `result()` and
`add_done_callback`, as Dask and `concurrent.futures` futures have) or the result itself.
Arguments are passed through unchanged, so Dask callers can pass the token streams once as
scattered futures (`client.scatter(streams, broadcast=True)`) instead of shipping them per task.

The file is rewritten (temp file + rename) after every finished proxy, so a killed swarm loses
at most the runs in flight; run again, it skips the specs already in the file.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curation.atomic import atomic_path
from mixes.proxy_model import ProxyConfig, TargetSet, train_proxy

WEIGHT_PREFIX = "w_"
BPB_PREFIX = "bpb_"
KEY = ["mixture_id", "seed"]


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


def run_proxy_spec(
    spec: ProxySpec,
    train_streams: Mapping[str, np.ndarray],
    targets: Mapping[str, TargetSet],
    token_budget: int,
    config: ProxyConfig,
    device: str,
) -> dict:
    """Task body: train one proxy and return its row for `proxies.parquet`."""
    return proxy_row(spec, train_proxy(train_streams, spec.weights, targets, token_budget, config, spec.seed, device))


def proxy_row(spec: ProxySpec, result) -> dict:
    """A finished proxy as a row: its mixture, the bits per byte on each target, its cost."""
    return {
        "mixture_id": spec.mixture_id,
        "seed": spec.seed,
        **{f"{WEIGHT_PREFIX}{domain}": weight for domain, weight in result.weights.items()},
        **{f"{BPB_PREFIX}{target}": value for target, value in result.bpb.items()},
        "tokens": result.tokens_trained,
        "seconds": result.seconds,
        "final_train_loss": result.final_train_loss,
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


def _check_file_matches(finished: pd.DataFrame, specs: Sequence[ProxySpec], token_budget: int) -> None:
    """A spec id already in the file must name the same mixture and budget, or the file is stale."""
    by_key = {(spec.mixture_id, spec.seed): spec for spec in specs}
    for row in finished.to_dict("records"):
        spec = by_key.get((row["mixture_id"], row["seed"]))
        if spec is None:
            continue
        total = sum(spec.weights.values())
        stored = {d: row.get(f"{WEIGHT_PREFIX}{d}", 0.0) for d in spec.weights}
        same = all(np.isclose(stored[d], w / total, atol=1e-9) for d, w in spec.weights.items())
        if not same or row["tokens"] != token_budget:
            raise ValueError(
                f"{row['mixture_id']} seed {row['seed']} in the proxies file has other weights or "
                f"another token budget ({row['tokens']}) than the spec: the file belongs to another "
                "swarm; move it away or use another output folder"
            )


def _is_future(handle: object) -> bool:
    return hasattr(handle, "add_done_callback") and hasattr(handle, "result")


def _in_completion_order(futures: Sequence[tuple[ProxySpec, object]]) -> Iterator[tuple[ProxySpec, object]]:
    """(spec, future) pairs as the futures finish (callbacks may run on other threads)."""
    finished: queue.Queue = queue.Queue()
    for spec, future in futures:
        future.add_done_callback(lambda _, spec=spec, future=future: finished.put((spec, future)))
    for _ in futures:
        yield finished.get()


class _ProxiesFile:
    """The rows of `proxies.parquet`, saved after each added result; failures are kept aside."""

    def __init__(self, path: Path, finished: pd.DataFrame, total: int, done: int, on_result):
        self.path = Path(path)
        self.rows = finished.to_dict("records")
        self.total, self.done, self.on_result = total, done, on_result
        self.failures: dict[tuple[str, int], BaseException] = {}

    def add(self, spec: ProxySpec, outcome: Callable[[], dict]) -> None:
        try:
            row = outcome()
        except Exception as error:  # noqa: BLE001 - one failed proxy must not lose the others
            self.failures[(spec.mixture_id, spec.seed)] = error
            return
        self.rows.append(row)
        self.done += 1
        write_proxies_atomically(pd.DataFrame(self.rows), self.path)
        if self.on_result is not None:
            self.on_result(row, self.done, self.total)


def run_swarm(
    specs: Sequence[ProxySpec],
    submit: Callable,
    out_path: Path,
    train_streams,
    targets,
    token_budget: int,
    config: ProxyConfig,
    device: str = "cpu",
    on_result: Callable[[dict, int, int], None] | None = None,
) -> pd.DataFrame:
    """Run every spec not yet in `out_path` and return all finished proxies (old and new).

    `on_result(row, done, total)` is called after each finished proxy is saved. Failed runs do
    not stop the others; they are raised together as `SwarmFailed` once the rest have finished.
    A synchronous `submit` runs (and saves) each proxy as it is submitted.
    """
    task_args = (train_streams, targets, token_budget, config, device)
    return run_specs(specs, submit, out_path, token_budget, run_proxy_spec, task_args, on_result)


def run_specs(
    specs: Sequence[ProxySpec],
    submit: Callable,
    out_path: Path,
    token_budget: int,
    task: Callable,
    task_args: tuple,
    on_result: Callable[[dict, int, int], None] | None = None,
    check_finished: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Submit ``task(spec, *task_args)`` for every spec not yet in `out_path`, saving each result as it comes.

    Shared by the pre-training and anneal swarms; ``check_finished`` can refuse a file
    written for other inputs before anything runs.
    """
    keys = [(spec.mixture_id, spec.seed) for spec in specs]
    if len(set(keys)) != len(keys):
        raise ValueError("specs repeat a (mixture_id, seed) pair")
    finished = load_proxies(out_path)
    if check_finished is not None:
        check_finished(finished)
    _check_file_matches(finished, specs, token_budget)
    done = set(zip(finished["mixture_id"], finished["seed"]))
    pending = [spec for spec in specs if (spec.mixture_id, spec.seed) not in done]
    results = _ProxiesFile(out_path, finished, len(specs), len(specs) - len(pending), on_result)
    futures = []
    for spec in pending:
        try:
            handle = submit(task, spec, *task_args)
        except Exception as error:  # noqa: BLE001 - a synchronous submit raises the task's error
            results.failures[(spec.mixture_id, spec.seed)] = error
            continue
        if _is_future(handle):
            futures.append((spec, handle))
        else:
            results.add(spec, lambda handle=handle: handle)
    for spec, future in _in_completion_order(futures):
        results.add(spec, future.result)
    if results.failures:
        raise SwarmFailed(results.failures)
    return load_proxies(out_path)
