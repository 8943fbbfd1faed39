"""Persistent cache of completions, so a rerun or a crashed run does not pay twice.

Layout: one small JSON file per key, ``<root>/<key[:2]>/<key[2:4]>/<key>.json``,
where the key is the sha256 of (model, style, style version, sha256 of the chunk).

Why files rather than sqlite: workers of a Slurm-run pipeline sit on different
nodes and share the cache over a network filesystem, where sqlite's WAL mode is
unsupported (it needs shared memory on one host) and its locking is unreliable.
A write goes to a unique temp file in the target directory, is fsynced, then
``os.replace``d onto the final name, which is atomic: readers see either no file
or a complete one, concurrent writers of the same key need no lock (the last
complete file wins, and both hold an answer to the same prompt), and a process
killed mid-write leaves only a ``.tmp`` file that readers never look at. A file
that cannot be parsed anyway (e.g. a disk error) is treated as a miss and
overwritten by the next put. The two-level sharding keeps directories small
(65,536 leaves) for millions of entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from curation.rephrase.client import ChatResult, Usage


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(model: str, style: str, style_version: int, chunk: str) -> str:
    """Key of one (model, style, version, input chunk); JSON-encoded so fields cannot collide."""
    parts = json.dumps([model, style, style_version, sha256_text(chunk)])
    return sha256_text(parts)


class CompletionCache:
    """Directory-backed cache of :class:`ChatResult`, safe across processes and kills."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / f"{key}.json"

    def get(self, key: str) -> ChatResult | None:
        """The cached result (with ``attempts == 0``), or None on a miss or unreadable file."""
        try:
            record = json.loads(self.path_for(key).read_text(encoding="utf-8"))
            return ChatResult(
                text=record["text"],
                finish_reason=record["finish_reason"],
                usage=Usage(record["prompt_tokens"], record["completion_tokens"]),
                attempts=0,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: ChatResult) -> None:
        record = {
            "text": result.text,
            "finish_reason": result.finish_reason,
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        }
        self._write_atomically(self.path_for(key), json.dumps(record, ensure_ascii=False))

    @staticmethod
    def _write_atomically(path: Path, content: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
