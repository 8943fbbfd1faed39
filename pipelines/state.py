"""Whether a stage's outputs can be used: its identity, and fresh / stale / missing / failed.

A stage's identity is a hash of what its outputs are a function of:

- the config keys it declares it reads (``Stage.reads``), each hashed on its own, so a change
  names the key;
- the identity of every stage it reads from (``Stage.upstream``), computed the same way, so an
  edit two stages up reaches every stage below it;
- for stages that read files from outside the run, the sorted file list and the content of
  each file (sha256, or size and modification time above a size).

A complete stage is **fresh** when the identity it recorded equals the one it would have now
and every upstream stage still holds the outputs it was built from (each completion records a
new ``output_id``, so a restarted upstream makes everything below it stale even when its
config did not change). Anything else is stale, missing or failed, with the reasons.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from curation.digests import stable_hash
from curation.errors import UserError
from pipelines.config import PipelineConfig, config_value
from pipelines.run import RunDir, fingerprint

FRESH, STALE, MISSING, FAILED, RUNNING = "fresh", "stale", "missing", "failed", "running"
SHOWN_NAMES = 3  # input files named in a reason; the rest are counted




def content_id(info: Mapping) -> str:
    """What an input fingerprint says about the file's content (the path is the key beside it)."""
    return info.get("sha256") or info.get("etag") or f"{info['bytes']}@{info['mtime']}"


@dataclass
class Identity:
    digest: str
    config: dict[str, str]  # config key -> hash of its value
    upstream: dict[str, str]  # stage -> its identity
    inputs: dict[str, str]  # file -> content id
    problem: str | None = None  # why the input files could not be listed (none match a glob, say)
    values: dict = field(default_factory=dict)  # config key -> its value, to say which setting changed
    output_format: int = 1  # the stage's Stage.output_format

    def to_json(self) -> dict:
        parts = {"config": self.config, "upstream": self.upstream, "inputs": self.inputs, "values": self.values,
                 "output_format": self.output_format}
        return {"identity": self.digest, "identity_parts": parts}


@dataclass
class StageState:
    name: str
    state: str  # fresh | stale | missing | failed | running
    reasons: list[str] = field(default_factory=list)
    identity: Identity | None = None

    @property
    def usable(self) -> bool:
        return self.state == FRESH

    def describe(self) -> str:
        return self.state + (f" ({'; '.join(self.reasons)})" if self.reasons else "")


class Fingerprints:
    """Input fingerprints, reusing a recorded sha256 while a file's size and mtime are unchanged."""

    def __init__(self, recorded: Mapping[str, dict]):
        self.recorded = dict(recorded)
        self.seen: dict[str, dict] = {}

    def of(self, path: str, storage: Mapping | None = None) -> dict:
        if path not in self.seen:
            self.seen[path] = self._fingerprint(path, storage)
        return self.seen[path]

    def _fingerprint(self, path: str, storage: Mapping | None) -> dict:
        try:
            quick = fingerprint(path, content=False, storage=storage)
        except FileNotFoundError:
            return {"bytes": -1, "mtime": "missing"}
        old = self.recorded.get(path)
        if old and old.get("sha256") and all(old.get(k) == quick[k] for k in ("bytes", "mtime")):
            return old
        return fingerprint(path, storage=storage)


class StageGraph:
    """Identities and states of every stage for one config and run folder, computed once each."""

    def __init__(self, config: PipelineConfig, run: RunDir, stages: Mapping, manifest: dict | None = None):
        self.config, self.run, self.stages = config, run, stages
        self.manifest = manifest if manifest is not None else run.read_manifest()
        self.fingerprints = Fingerprints(self.manifest.get("inputs", {}))
        self._identities: dict[str, Identity] = {}

    def identity(self, name: str) -> Identity:
        if name not in self._identities:
            stage = self.stages[name]
            files, problem = self.input_files(stage)
            values = {key: config_value(self.config, key) for key in stage.reads}
            parts = Identity(
                "",
                {key: stable_hash(value) for key, value in values.items()},
                {up: self.identity(up).digest for up in stage.upstream},
                {path: content_id(self.fingerprints.of(path, storage)) for path, storage in files.items()},
                problem,
                values,
                stage.output_format,
            )
            parts.digest = stable_hash([parts.config, parts.upstream, parts.inputs, parts.output_format])
            self._identities[name] = parts
        return self._identities[name]

    def input_files(self, stage) -> tuple[dict[str, dict], str | None]:
        """``{file: its storage settings}`` of the stage's inputs, or why they cannot be listed."""
        if stage.inputs is None:
            return {}, None
        try:
            return dict(sorted(stage.inputs(self.config, self.run).items())), None
        except UserError as err:
            return {}, str(err)

    def state(self, name: str, live_lock: bool = False) -> StageState:
        entry = self.manifest["stages"].get(name)
        identity = self.identity(name)
        if entry is None:
            return StageState(name, MISSING, identity=identity)
        if entry["state"] in ("running", "clearing"):
            state = RUNNING if live_lock else FAILED
            why = "in progress" if live_lock else f"interrupted while {entry['state']}; rerun it"
            return StageState(name, state, [why], identity)
        if entry["state"] != "complete":
            return StageState(name, FAILED, [entry.get("error", entry["state"]).splitlines()[0]], identity)
        reasons = ([identity.problem] if identity.problem else []) + identity_changes(entry.get("identity_parts", {}), identity)
        for up in self.stages[name].upstream:
            upstream = self.manifest["stages"].get(up, {})
            if upstream.get("state") != "complete":
                reasons.append(f"upstream '{up}' is {upstream.get('state', 'missing')}")
            elif entry.get("upstream_outputs", {}).get(up) != upstream.get("output_id"):
                reasons.append(f"upstream '{up}' was rebuilt since")
        return StageState(name, STALE if reasons else FRESH, reasons, identity)


def identity_changes(recorded: Mapping, now: Identity) -> list[str]:
    """Why a recorded identity differs from the current one, most specific first."""
    if not recorded:
        return ["made by an earlier curate without a recorded identity"]
    reasons = []
    written = recorded.get("output_format", 1)
    if written != now.output_format:
        reasons.append(f"its outputs were written by an earlier curate (output format {written}; this curate writes {now.output_format})")
    config, values = recorded.get("config", {}), recorded.get("values", {})
    for key in sorted(set(config) | set(now.config)):
        if config.get(key) != now.config.get(key):
            changed = changed_settings(key, values.get(key), now.values.get(key)) if key in values else []
            reasons.extend(changed or [f"config '{key}' changed"])
    upstream = recorded.get("upstream", {})
    for up in sorted(set(upstream) | set(now.upstream)):
        if upstream.get(up) != now.upstream.get(up):
            reasons.append(f"upstream '{up}' changed")
    before, after = recorded.get("inputs", {}), now.inputs
    for label, files in (
        ("added", sorted(set(after) - set(before))),
        ("removed", sorted(set(before) - set(after))),
        ("changed", sorted(p for p in set(before) & set(after) if before[p] != after[p])),
    ):
        if files:
            shown = ", ".join(files[:SHOWN_NAMES]) + (f" and {len(files) - SHOWN_NAMES} more" if len(files) > SHOWN_NAMES else "")
            reasons.append(f"{len(files)} input file(s) {label}: {shown}")
    return reasons


def changed_settings(key: str, before, after) -> list[str]:
    """The settings under ``key`` that differ, one reason each (``config 'filter.language.threshold': 0.65 -> 0.6``)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [line for name in sorted(set(before) | set(after)) for line in changed_settings(f"{key}.{name}", before.get(name), after.get(name))]
    if named_entries(before) and named_entries(after):  # e.g. ingest.sources, told apart by name
        old, new = ({entry["name"]: entry for entry in entries} for entries in (before, after))
        return [line for name in [*old, *(n for n in new if n not in old)] for line in changed_settings(f"{key}[{name}]", old.get(name), new.get(name))]
    return [] if before == after else [f"config '{key}': {json.dumps(before)} -> {json.dumps(after)}"]


def named_entries(value) -> bool:
    return isinstance(value, list) and all(isinstance(entry, dict) and "name" in entry for entry in value)


def lineage_of(manifest: Mapping, stages: tuple[str, ...]) -> dict[str, dict]:
    """The recorded identity and output of ``stages`` and of every stage they were built from."""
    lineage: dict[str, dict] = {}
    todo = list(stages)
    while todo:
        name = todo.pop()
        if name in lineage:
            continue
        entry = manifest["stages"].get(name, {})
        lineage[name] = {key: entry.get(key) for key in ("identity", "output_id", "finished")}
        todo.extend(entry.get("upstream_outputs", {}))
    return dict(sorted(lineage.items()))
