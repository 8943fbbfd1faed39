"""The export's `manifest.json`: what was exported, from what, and how often each domain repeats.

The manifest is deterministic (no timestamps): the same inputs give the same bytes, so its hash
identifies an export. Whatever varies per run (run dir, config hash, dates) belongs in `lineage`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curation.tokenizer import TokenizerInfo, sha256_file

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class DomainSummary:
    name: str
    weight: float
    tokens: int
    documents: int
    source_files: tuple[dict, ...]


def epochs_at_budget(token_budget: int, weight: float, tokens: int) -> float:
    """How many times a domain's tokens are seen when it supplies `weight` of `token_budget`."""
    if tokens <= 0:
        raise ValueError("a domain with no tokens cannot supply any share of the budget")
    return token_budget * weight / tokens


def file_record(path: Path, export_dir: Path, **details) -> dict:
    """An exported file: its path relative to the export directory, size and sha256."""
    path = Path(path)
    return {
        "path": path.relative_to(export_dir).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        **details,
    }


def domain_record(domain: DomainSummary, token_budget: int) -> dict:
    return {
        "weight": domain.weight,
        "tokens": domain.tokens,
        "documents": domain.documents,
        "epochs": epochs_at_budget(token_budget, domain.weight, domain.tokens),
        "source_files": list(domain.source_files),
    }


def build_manifest(
    *,
    domains: list[DomainSummary],
    excluded_domains: list[str],
    token_budget: int,
    tokenizer: TokenizerInfo,
    exported_tokenizer_dir: str,
    formats: list[str],
    files: list[dict],
    lineage: dict,
) -> dict:
    return {
        "manifest_version": MANIFEST_VERSION,
        "token_budget": token_budget,
        "formats": list(formats),
        "tokenizer": {**tokenizer.to_dict(), "exported_dir": exported_tokenizer_dir},
        "domains": {domain.name: domain_record(domain, token_budget) for domain in domains},
        "excluded_domains": sorted(excluded_domains),
        "files": sorted(files, key=lambda record: record["path"]),
        "lineage": lineage,
    }


def _json_value(value):
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"manifest value of type {type(value).__name__} is not JSON serializable: {value!r}")


def write_manifest(path: Path, manifest: dict) -> Path:
    path = Path(path)
    text = json.dumps(manifest, indent=2, sort_keys=True, default=_json_value, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
