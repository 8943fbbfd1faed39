import os
from pathlib import Path

import pytest

from pipelines.executor import dask_client

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
