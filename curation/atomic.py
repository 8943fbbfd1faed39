"""Files that appear complete or not at all: write to a unique temp name beside the target, then rename.

The temp name holds the host, the pid and a random part, so two writers (two runs, two workers,
two hosts on a shared filesystem) never write into one temp file; a reader, a resume or a
rerun never sees a partial file under the final name.
"""

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".tmp-"


def temp_path(path: str | Path) -> Path:
    """A fresh temp name beside ``path`` (hidden, so stage listings skip it)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temp path to write; on success it is renamed to ``path``, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
