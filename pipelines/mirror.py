"""A run folder in object storage, worked on through a local copy.

Stages memory-map token files, DuckDB scans shards and fastText loads models from local
files, so with ``run.root`` a URL (``s3://bucket/runs``) the run lives in the store and is
worked on in a copy under ``run.cache``. Before a command works on the run, what changed in
the store is pulled into the copy. As each rank finishes, its outputs (shards, drops, stats,
completion markers) are pushed, so a run killed on one machine resumes on another from the
ranks already done. When a stage ends, the store is made equal to the copy, deletions
included. A stage that was rebuilt elsewhere (its ``output_id`` in the store's manifest is
not the copy's) is dropped from the copy before the pull, so no stale rank file lingers.

What was last synced is kept in ``<copy>/.mirror.json`` (each file's size and mtime here and
ETag there): a file is sent or fetched only when it changed since. The store also holds the
run's ``.lock`` while a command runs, so two machines do not work on one run at once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

from curation.atomic import TEMP_MARK, write_text_atomic
from curation.storage import filesystem
from pipelines.run import RunDir, RunLock, RunLocked, process_alive

SYNC_STATE = ".mirror.json"
LOCK = ".lock"
NOT_SYNCED = ("_trash",)  # top-level folders that stay local


def synced(relative: str) -> bool:
    first = relative.split("/", 1)[0]
    return first not in NOT_SYNCED and relative not in (SYNC_STATE, LOCK) and TEMP_MARK not in relative


def commit_order(relative: str) -> tuple[int, str]:
    """Files that say work is done go last: a completion marker only after its rank's outputs and
    stats, the manifest after everything, so a push cut short never claims what is not there."""
    if relative == "manifest.json":
        return 2, relative
    return (1 if "/completions/" in relative else 0), relative


class RunMirror:
    """The store's copy of a run (``remote``, a URL) and the local copy stages work on."""

    def __init__(self, remote: str, local: Path, storage: Mapping | None = None):
        self.remote = remote.rstrip("/")
        self.run = RunDir(local)
        self.fs, self.root = filesystem(self.remote, storage)
        self.state_path = self.run.path / SYNC_STATE

    # -- bookkeeping ------------------------------------------------------------------------------
    def load_state(self) -> dict[str, dict]:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def save_state(self, state: dict[str, dict]) -> None:
        write_text_atomic(self.state_path, json.dumps(state, sort_keys=True))

    def local_files(self) -> dict[str, os.stat_result]:
        found = {}
        for folder, _, names in os.walk(self.run.path):
            for name in names:
                path = Path(folder) / name
                relative = path.relative_to(self.run.path).as_posix()
                if synced(relative):
                    found[relative] = path.stat()
        return found

    def remote_files(self) -> dict[str, dict]:
        if not self.fs.exists(self.root):
            return {}
        listing = self.fs.find(self.root, detail=True)
        prefix = self.root.rstrip("/") + "/"
        return {key[len(prefix):]: info for key, info in listing.items() if key.startswith(prefix) and synced(key[len(prefix):])}

    def remote_path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    @staticmethod
    def tag(info: Mapping) -> str:
        return str(info.get("ETag") or info.get("etag") or f"{info.get('size')}@{info.get('LastModified')}").strip('"')

    # -- pull -------------------------------------------------------------------------------------
    def pull(self, only: tuple[str, ...] | None = None) -> int:
        """Brings the copy up to the store (``only`` those files: the manifest, for `curate
        status`); returns the number of files fetched. Stages rebuilt elsewhere are dropped from
        the copy first, whatever is pulled."""
        self.run.path.mkdir(parents=True, exist_ok=True)
        remote, state = self.remote_files(), self.load_state()
        if "manifest.json" in remote:
            self.drop_rebuilt_stages(state)
        wanted = [relative for relative in sorted(remote) if only is None or relative in only]
        fetched = 0
        for relative in wanted:
            target, tag = self.run.path / relative, self.tag(remote[relative])
            if state.get(relative, {}).get("etag") == tag and target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(self.remote_path(relative), str(target))
            stat = target.stat()
            state[relative] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "etag": tag}
            fetched += 1
        for relative in [r for r in state if r not in remote and (only is None or r in only)]:  # deleted in the store
            (self.run.path / relative).unlink(missing_ok=True)
            del state[relative]
        self.save_state(state)
        return fetched

    def drop_rebuilt_stages(self, state: dict[str, dict]) -> None:
        with self.fs.open(self.remote_path("manifest.json"), "rb") as handle:
            theirs = json.loads(handle.read()).get("stages", {})
        ours = self.run.read_manifest().get("stages", {})
        for stage, entry in theirs.items():
            mine = ours.get(stage)
            if mine and mine.get("output_id") != entry.get("output_id"):
                for folder in (self.run.stage_dir(stage), self.run.logs_dir(stage)):
                    shutil.rmtree(folder, ignore_errors=True)
                    prefix = folder.relative_to(self.run.path).as_posix() + "/"
                    for relative in [r for r in state if r.startswith(prefix)]:
                        del state[relative]

    # -- push -------------------------------------------------------------------------------------
    def push(self, complete: bool = True) -> int:
        """Sends what changed in the copy; with ``complete``, also deletes from the store what
        the copy no longer has. Returns the number of files sent."""
        local, state = self.local_files(), self.load_state()
        changed = [relative for relative, stat in sorted(local.items(), key=lambda item: commit_order(item[0]))
                   if (state.get(relative, {}).get("bytes"), state.get(relative, {}).get("mtime_ns")) != (stat.st_size, stat.st_mtime_ns)]
        for relative in changed:
            self.fs.put_file(str(self.run.path / relative), self.remote_path(relative))
        remote = self.remote_files() if changed or complete else {}
        for relative in changed:
            stat = local[relative]
            state[relative] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "etag": self.tag(remote.get(relative, {}))}
        if complete:
            gone = [relative for relative in remote if relative not in local]
            if gone:
                self.fs.rm([self.remote_path(relative) for relative in gone])
            for relative in gone:
                state.pop(relative, None)
        self.save_state(state)
        return len(changed)

    # -- the store's lock -------------------------------------------------------------------------
    def hold_lock(self, holder: dict) -> None:
        """Writes the store's lock, unless another live curate holds it."""
        lock = self.remote_path(LOCK)
        if self.fs.exists(lock):
            with self.fs.open(lock, "rb") as handle:
                current = json.loads(handle.read() or b"{}")
            gone = current.get("host") == socket.gethostname() and not process_alive(int(current.get("pid", 0)))
            if current and not gone and current.get("pid") != holder["pid"]:
                raise RunLocked(
                    f"{self.remote} is in use by pid {current.get('pid')} on {current.get('host')} since "
                    f"{current.get('since')} ({current.get('command')}): wait for it to finish, or delete {lock} if that process is gone"
                )
        with self.fs.open(lock, "wb") as handle:
            handle.write(json.dumps(holder).encode())

    def release_lock(self) -> None:
        lock = self.remote_path(LOCK)
        if self.fs.exists(lock):
            self.fs.rm(lock)


def mirror_of(config) -> RunMirror | None:
    """The mirror of a run whose ``run.root`` is in a store; None for a run in a folder."""
    if config.run_remote is None:
        return None
    return RunMirror(config.run_remote, config.run_dir, config.run.storage.model_dump())


@contextmanager
def run_folder(config, command: str | None = None, console=None, writes: bool = True,
               only: tuple[str, ...] | None = None) -> Iterator[RunDir]:
    """The run folder a command works in, under the run lock when it names a ``command``. For a
    run in a store: its local copy, pulled first (``only`` some files) and, when the command
    ``writes``, pushed after, also after a failure, so the store always holds what was done."""
    run, mirror = RunDir(config.run_dir), mirror_of(config)
    with RunLock(run, command, console, mirror) if command else nullcontext():
        if mirror is not None:
            mirror.pull(only)
        try:
            yield run
        finally:
            if mirror is not None and writes:
                mirror.push(complete=True)
