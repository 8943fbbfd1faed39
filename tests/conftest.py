import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client

from pipelines.executor import WORKER_ENV, dask_client

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real third-party fixtures in ../shared/data: skipped where absent, a failure under CI."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_DATA} is missing: CI must have the shared fixtures")
        pytest.skip(f"{SHARED_DATA} is absent (a fresh clone without the shared fixtures)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def client():
    """One real Dask LocalCluster (2 single-threaded worker processes) for the whole session."""
    with dask_client("local", workers=2) as dask:
        yield dask


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tcp_cluster_in(cwd: Path | None = None):
    """A real `dask scheduler` and `dask worker` processes on loopback, as a user's cluster would be;
    the worker starts in ``cwd`` (a machine whose working directory is not the driver's)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    env = os.environ | WORKER_ENV
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                              env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Client(address, timeout=60) as probe:
            probe.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for proc in (worker, scheduler):
            proc.terminate()
        for proc in (worker, scheduler):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def tcp_cluster():
    with tcp_cluster_in() as address:
        yield address


@pytest.fixture
def tcp_cluster_elsewhere(tmp_path_factory):
    with tcp_cluster_in(tmp_path_factory.mktemp("worker-cwd")) as address:
        yield address
