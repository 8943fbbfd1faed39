"""Runs datatrove pipelines on Dask: one task per rank, on a LocalCluster or any Dask cluster.

datatrove ships local, Slurm and Ray executors; this is the Dask one. Each rank runs
through datatrove's own ``_run_for_rank`` (stats, logs, completion markers), so a
rerun skips the ranks that completed and runs only the rest.
"""

import contextlib
import importlib
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterator

import cloudpickle
import dask
from datatrove.executor.base import DistributedEnvVars, PipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.stats import PipelineStats
from distributed import Client, LocalCluster, as_completed

from curation.errors import UserError

# The HTML extractor runs in a child process; daemonic processes may not
# have children, so Dask worker processes must not be daemonic.
WORKER_ENV = {"DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


class StageFailed(RuntimeError):
    """Ranks failed; ``user_caused`` when every one failed on a ``UserError`` (bad input, a worker's setup)."""

    def __init__(self, stage: str, failures: dict[int, BaseException]):
        self.failures = failures
        self.user_caused = all(isinstance(err, UserError) for err in failures.values())
        messages: dict[str, list[int]] = {}
        for rank, err in sorted(failures.items()):
            messages.setdefault(f"{type(err).__name__}: {err}" if not isinstance(err, UserError) else str(err), []).append(rank)
        lines = [f"rank {', '.join(map(str, ranks))}: {message}" for message, ranks in messages.items()]
        super().__init__(f"stage {stage!r}: {len(failures)} rank(s) failed; " + "; ".join(lines))


class RunFolderUnseen(UserError):
    pass


def warm_worker() -> None:
    """Imports what every stage's tasks need, once per worker, when the cluster starts:
    a run reuses its cluster across stages, so no stage pays for the imports."""
    for module in ("resiliparse.extract.html2text", "trafilatura", "pipelines.stages"):  # the extractor's child forks with them loaded
        importlib.import_module(module)


@contextlib.contextmanager
def dask_client(cluster: str = "local", workers: int | None = None) -> Iterator[Client]:
    """A Dask client: a new LocalCluster (one single-threaded process per worker) or an existing scheduler."""
    if cluster != "local":
        with Client(cluster, set_as_default=False) as client:
            client.run(warm_worker)
            yield client
        return
    os.environ.update(WORKER_ENV)
    with dask.config.set({"distributed.worker.daemon": False}):
        with LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
            silence_logs=40,
        ) as local, Client(local, set_as_default=False) as client:
            client.run(warm_worker)
            yield client


def run_rank(pickled_executor: bytes, rank: int) -> PipelineStats:
    """Dask task body: runs one rank of a freshly unpickled pipeline in the worker process.

    The executor comes pickled and is unpickled here: Dask keeps a finished task's arguments
    until the stage's futures are released, so an executor passed as is would keep every
    rank's pipeline, with all its steps loaded, alive in the worker until the stage ends."""
    executor: DaskPipelineExecutor = cloudpickle.loads(pickled_executor)
    if executor.run_dir is not None and not os.path.isdir(executor.run_dir):
        raise RunFolderUnseen(
            f"the Dask worker on {socket.gethostname()} cannot see the run folder {executor.run_dir}: "
            "run.root must be a folder every worker mounts at the same path (for a run.root in object storage, "
            "its local copy run.cache)"
        )
    if multiprocessing.current_process().daemon:
        raise RuntimeError(
            "Dask worker processes are daemonic and cannot start the extractor's child process: "
            "start workers with DASK_DISTRIBUTED__WORKER__DAEMON=False in their environment"
        )
    # A spawned worker has no fork-safe start method set; the extractor sandbox needs fork.
    multiprocessing.set_start_method("fork", force=True)
    return executor._run_for_rank(rank, local_rank=1)


class DaskPipelineExecutor(PipelineExecutor):
    """datatrove ``PipelineExecutor`` whose ranks are Dask tasks.

    Args:
        pipeline: datatrove steps.
        tasks: number of ranks (shards of the input).
        logging_dir: stats, logs and completion markers.
        client: the Dask client to submit to (kept out of what is sent to workers).
        name: shown in progress lines and used in task keys.
        depends: an executor whose ranks must all be complete first; run first if not.
        on_progress: called with (ranks_done, ranks_total, stats_so_far, seconds) as ranks finish.
        run_dir: the run folder; a worker that cannot see it fails with a message saying so.
    """

    def __init__(
        self,
        pipeline: list[PipelineStep | Callable],
        tasks: int,
        logging_dir: str,
        client: Client,
        name: str = "stage",
        skip_completed: bool = True,
        depends: "DaskPipelineExecutor | None" = None,
        on_progress: Callable | None = None,
        run_dir: str | os.PathLike | None = None,
    ):
        super().__init__(pipeline, logging_dir, skip_completed)
        self.run_dir = str(run_dir) if run_dir is not None else None
        self.tasks = tasks
        self.client = client
        self.name = name
        self.depends = depends
        self.on_progress = on_progress
        self.ranks_run: list[int] = []
        self.ranks_skipped: list[int] = []

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(client=None, depends=None, on_progress=None)
        return state

    @property
    def world_size(self) -> int:
        return self.tasks

    def get_distributed_env(self, node_rank: int = -1) -> DistributedEnvVars:
        return DistributedEnvVars(
            datatrove_node_ips="localhost",
            datatrove_cpus_per_task="1",
            datatrove_mem_per_cpu="-1",
            datatrove_gpus_on_node="0",
            datatrove_executor="DASK",
        )

    def run(self) -> PipelineStats:
        if self.depends is not None and self.depends.get_incomplete_ranks():
            self.depends.run()
        ranks = self.get_incomplete_ranks()
        self.ranks_run = ranks
        self.ranks_skipped = [r for r in range(self.world_size) if r not in set(ranks)]
        self.save_executor_as_json()
        start = time.monotonic()
        pickled = cloudpickle.dumps(self)  # without the client (see __getstate__)
        futures = [
            self.client.submit(run_rank, pickled, rank, key=f"{self.name}-{rank:05d}-{os.urandom(4).hex()}", pure=False)
            for rank in ranks
        ]
        rank_of = {future.key: rank for future, rank in zip(futures, ranks)}
        merged, failures, done = PipelineStats(), {}, len(self.ranks_skipped)
        for future in as_completed(futures, loop=self.client.loop):
            rank = rank_of[future.key]
            if future.status == "error":
                failures[rank] = future.exception()
            else:
                merged = merged + future.result()
            done += 1
            if self.on_progress:
                self.on_progress(done, self.world_size, merged, time.monotonic() - start)
        with self.logging_dir.open("stats.json", "wt") as statsfile:
            merged.save_to_disk(statsfile)
        if failures:
            raise StageFailed(self.name, failures)
        return merged
