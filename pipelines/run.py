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
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "curate", "datatrove", "dask", "distributed", "duckdb", "pyarrow", "trafilatura",
    "warcio", "pymupdf", "spacy", "scikit-learn", "fasttext-numpy2-wheel", "tokenizers", "torch",
)
HASHED_INPUT_BYTES = 256 * 2**20


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def fingerprint(path: str) -> dict:
    """Size, modification time and (up to a size) sha256 of an input file."""
    stat = os.stat(path)
    info = {"bytes": stat.st_size, "mtime": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat()}
    if stat.st_size <= HASHED_INPUT_BYTES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
        info["sha256"] = digest.hexdigest()
    return info


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
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

    def stage_dir(self, stage: str) -> Path:
        return self.path / stage

    def logs_dir(self, stage: str) -> Path:
        return self.path / "_logs" / stage

    def read_manifest(self) -> dict:
        if not self.manifest_path.exists():
            return {"stages": {}, "inputs": {}}
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def clear_stage(self, stage: str) -> None:
        shutil.rmtree(self.stage_dir(stage), ignore_errors=True)
        shutil.rmtree(self.logs_dir(stage), ignore_errors=True)
