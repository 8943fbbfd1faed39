"""Files loaded once per worker process, not once per rank.

A Dask worker runs each rank on a fresh unpickled copy of the pipeline, so a model a step
loads into itself is loaded again for every rank: a stage of 64 ranks on 8 workers reads
each model 64 times instead of 8. ``per_process(loader)`` returns a loader whose results
the process keeps, keyed by the file's resolved path, size and modification time, so a
model replaced on disk (a retrained classifier) is read again.
"""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def per_process(loader: Callable[[Path], T], keep: int = 4) -> Callable[[str | Path], T]:
    @functools.lru_cache(maxsize=keep)
    def cached(path: Path, size: int, mtime_ns: int) -> T:
        return loader(path)

    @functools.wraps(loader)
    def load(path: str | Path) -> T:
        resolved = Path(path).resolve()
        stat = resolved.stat()
        return cached(resolved, stat.st_size, stat.st_mtime_ns)

    load.cache_clear = cached.cache_clear
    return load
