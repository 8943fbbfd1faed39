"""The export's `manifest.json`: what was exported, from what, and how often each domain repeats.

The manifest is deterministic (no timestamps): the same inputs give the same bytes, so its hash
identifies an export. Whatever varies per run (run dir, config hash, dates) belongs in `lineage`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curation.tokenizer import TokenizerInfo, sha256_file
from mixes.export.batches import BatchPlan

MANIFEST_VERSION = 2  # 2: batches, per-domain sequences and shares


@dataclass(frozen=True)
class DomainSummary:
    name: str
    weight: float
    tokens: int
    documents: int
    source_files: tuple[dict, ...]


def epochs(trained_tokens: int, tokens: int) -> float:
    """How many times a domain's tokens are seen when it supplies `trained_tokens`."""
    if tokens <= 0:
        raise ValueError("a domain with no tokens cannot supply any share of the budget")
    return trained_tokens / tokens


def file_record(path: Path, export_dir: Path, **details) -> dict:
    """An exported file: its path relative to the export directory, size and sha256."""
    path = Path(path)
    return {
        "path": path.relative_to(export_dir).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        **details,
    }


def domain_record(domain: DomainSummary, batches: BatchPlan) -> dict:
    return {
        "weight": domain.weight,
        "share": batches.share(domain.name),  # of the sequences trained: the weight to within one sequence
        "sequences": batches.sequences[domain.name],
        "trained_tokens": batches.tokens(domain.name),
        "tokens": domain.tokens,
        "documents": domain.documents,
        "epochs": epochs(batches.tokens(domain.name), domain.tokens),
        "source_files": list(domain.source_files),
    }


def build_manifest(
    *,
    domains: list[DomainSummary],
    excluded_domains: list[str],
    rounded_out: dict[str, float],
    batches: BatchPlan,
    tokenizer: TokenizerInfo,
    exported_tokenizer_dir: str,
    formats: list[str],
    files: list[dict],
    lineage: dict,
) -> dict:
    return {
        "manifest_version": MANIFEST_VERSION,
        "token_budget": batches.trained_tokens,
        "batches": {
            "requested_tokens": batches.requested_tokens,
            "trained_tokens": batches.trained_tokens,
            "sequence_length": batches.sequence_length,
            "global_batch_size": batches.global_batch_size,
            "steps": batches.steps,
            "sequences": batches.total_sequences,
        },
        "formats": list(formats),
        "tokenizer": {**tokenizer.to_dict(), "exported_dir": exported_tokenizer_dir},
        "domains": {domain.name: domain_record(domain, batches) for domain in domains},
        "excluded_domains": sorted(excluded_domains),
        # positive weights under one of the trained sequences, rounded to none: {domain: weight}
        "rounded_out_domains": dict(sorted(rounded_out.items())),
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
