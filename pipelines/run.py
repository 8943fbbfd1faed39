"""A run's folder and its manifest.

::

    runs/<run>/input/            what demo-data writes (or anything a config points at)
    runs/<run>/<stage>/          the stage's shards (see curation.shards)
    runs/<run>/_logs/<stage>/    datatrove stats, logs and completion markers per rank
    runs/<run>/manifest.json     config hash, inputs, package versions, per-stage counts and state
    runs/<run>/ledger.parquet    per stage and rank: docs in = kept + removed
"""

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from curation.atomic import write_text_atomic
from curation.errors import UserError
from curation.shards import safe_segment
from curation.storage import is_url, remote_fingerprint

PACKAGES = (
    "curate", "datatrove", "dask", "distributed", "duckdb", "pyarrow", "resiliparse", "trafilatura",
    "warcio", "pymupdf", "spacy", "scikit-learn", "fasttext-numpy2-wheel", "tokenizers", "torch",
)
HASHED_INPUT_BYTES = 256 * 2**20


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def fingerprint(path: str, content: bool = True, storage: Mapping | None = None) -> dict:
    """Size, modification time and (with ``content``, up to a size) sha256 of an input file;
    for an object in a store, its size, time and ETag, without reading it."""
    if is_url(path):
        return remote_fingerprint(path, storage)
    stat = os.stat(path)
    info = {"bytes": stat.st_size, "mtime": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat()}
    if content and stat.st_size <= HASHED_INPUT_BYTES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
        info["sha256"] = digest.hexdigest()
    return info


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunLocked(UserError):
    pass


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDir:
    """Every location in a run folder: no other module spells out a path inside it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def input_dir(self) -> Path:
        return self.path / "input"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def ledger_path(self) -> Path:
        return self.path / "ledger.parquet"

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    def stage_dir(self, stage: str) -> Path:
        return self.path / stage

    def logs_dir(self, stage: str) -> Path:
        return self.path / "_logs" / stage

    def trash_dir(self) -> Path:
        return self.path / "_trash"

    # -- inside stages ---------------------------------------------------------------------------
    @property
    def dedup_work(self) -> Path:
        return self.stage_dir("dedup") / "_work"

    def models_dir(self, kind: str) -> Path:
        """The classify stage's trained models and their reports (``quality``, ``domain``)."""
        return self.stage_dir("classify") / "_models" / kind

    def contamination_dir(self, stage: str = "classify") -> Path:
        """The benchmark index (classify's), per-rank reports and the merged report of a stage."""
        return self.stage_dir(stage) / "_contamination"

    @property
    def contamination_benchmarks(self) -> Path:
        """Per benchmark: items found in the corpus (the `contamination` view)."""
        return self.contamination_dir() / "benchmarks.jsonl"

    @property
    def rephrase_cache(self) -> Path:
        return self.path / "_cache" / "rephrase"

    @property
    def rephrase_selection(self) -> Path:
        return self.stage_dir("rephrase") / "_selection" / "ids.parquet"

    @property
    def tokenizer_path(self) -> Path:
        return self.stage_dir("tokenize") / "_tokenizer" / "tokenizer.json"

    @property
    def token_root(self) -> Path:
        """Token files per split and domain: ``<root>/<split>/<domain>/<rank>.ds``."""
        return self.stage_dir("tokenize") / "_tokens"

    def token_dir(self, split: str, domain: str) -> Path:
        return self.token_root / split / safe_segment(domain)

    @property
    def proxy_store(self) -> Path:
        """Every trained proxy's weights and scores, by what made it (mixes.proxy_store); outlives restarts."""
        return self.path / "_cache" / "proxies"

    def proxies_table(self, stage: str = "proxies") -> Path:
        """One row per trained proxy (the swarm of ``proxies``, or of ``anneal``)."""
        return self.stage_dir(stage) / "proxies.parquet"

    def validation_proxies(self, stage: str = "mix") -> Path:
        """The proxies trained on the chosen and the natural mix, on fresh seeds."""
        return self.stage_dir(stage) / "_validation" / "proxies.parquet"

    def mix_file(self, stage: str = "mix") -> Path:
        """The chosen mixture (``weights:``), an export mix."""
        return self.stage_dir(stage) / "mix.yaml"

    @property
    def mix_weights(self) -> Path:
        return self.stage_dir("mix") / "weights.parquet"

    @property
    def anneal_base_state(self) -> Path:
        """The anneal's base proxy, beside the other stored proxies: it outlives an anneal redone for new targets."""
        return self.proxy_store / "anneal_base.pt"

    @property
    def anneal_unit_tokens(self) -> Path:
        return self.stage_dir("anneal") / "_tokens"

    def read_manifest(self) -> dict:
        if not self.manifest_path.exists():
            return {"stages": {}, "inputs": {}}
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def set_aside(self, stage: str) -> Path | None:
        """Moves a stage's outputs and logs out of the way (one rename each); ``restore`` undoes it.
        What an interrupted earlier attempt parked is deleted first (the run lock is held)."""
        for leftover in self.trash_dir().glob(f"{stage}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        parked = self.trash_dir() / f"{stage}-{os.getpid()}-{os.urandom(4).hex()}"
        moved = False
        for source, name in ((self.stage_dir(stage), "outputs"), (self.logs_dir(stage), "logs")):
            if source.exists():
                parked.mkdir(parents=True, exist_ok=True)
                source.rename(parked / name)
                moved = True
        return parked if moved else None

    def restore(self, stage: str, parked: Path | None) -> None:
        if parked is None:
            return
        for target, name in ((self.stage_dir(stage), "outputs"), (self.logs_dir(stage), "logs")):
            shutil.rmtree(target, ignore_errors=True)
            if (parked / name).exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                (parked / name).rename(target)
        shutil.rmtree(parked, ignore_errors=True)

    def discard(self, parked: Path | None) -> None:
        if parked is not None:
            shutil.rmtree(parked, ignore_errors=True)

    def clear_stage(self, stage: str) -> None:
        self.discard(self.set_aside(stage))

    def lock_holder(self) -> dict | None:
        """Who holds the run's lock, if a live process does."""
        try:
            holder = json.loads(self.lock_path.read_text())
        except (OSError, ValueError):
            return None
        if holder.get("host") == socket.gethostname() and not process_alive(int(holder.get("pid", 0))):
            return None
        return holder


class RunLock:
    """One curate process at a time writes a run folder: ``<run>/.lock`` names the holder.

    A lock left by a process that is gone (same host, no such pid) is taken over with a note.
    For a run in a store, ``mirror`` (pipelines.mirror) holds the store's lock as well.
    """

    def __init__(self, run: RunDir, command: str, console=None, mirror=None):
        self.run, self.command, self.console, self.mirror = run, command, console, mirror
        self.held = False

    def __enter__(self) -> "RunLock":
        self.run.path.mkdir(parents=True, exist_ok=True)
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "since": now(), "command": self.command}
        for _ in range(2):
            try:
                fd = os.open(self.run.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                current = self.run.lock_holder()
                if current is not None:
                    raise RunLocked(
                        f"{self.run.path} is in use by pid {current.get('pid')} on {current.get('host')} since "
                        f"{current.get('since')} ({current.get('command')}): wait for it to finish, or remove "
                        f"{self.run.lock_path} if that process is gone"
                    ) from None
                if self.console is not None:
                    self.console.print(f"[yellow]{self.run.lock_path}: taking over a lock its holder left behind[/yellow]")
                self.run.lock_path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(holder, handle)
            self.held = True
            if self.mirror is not None:
                try:
                    self.mirror.hold_lock(holder)
                except BaseException:  # held elsewhere: give back the local lock only
                    self.run.lock_path.unlink(missing_ok=True)
                    self.held = False
                    raise
            return self
        raise RunLocked(f"{self.run.lock_path}: could not take the lock")

    def __exit__(self, *exc) -> None:
        if self.held:
            if self.mirror is not None:
                self.mirror.release_lock()
            self.run.lock_path.unlink(missing_ok=True)
            self.held = False
