"""Export a weighted mixture of tokenized domains for a trainer.

`export_mixture` takes one folder of datatrove token files per domain and writes, under `out_dir`:

    tokenizer/                 tokenizer.json + tokenizer_config.json (a transformers folder)
    megatron-lm/<domain>.bin/.idx  one Megatron indexed dataset per domain, a sequence per document
    megatron-lm/blend.txt      "w1 megatron-lm/<d1> w2 megatron-lm/<d2> ..." for --data-args-path
    olmo-core/<domain>.npy     one raw token memmap per domain, EOS between documents, cut at
                               its last whole sequence (OLMo-core reads no further)
    olmo-core/mixture.yaml     OLMo-core source mixture
    handoff.sh (+ olmo_core_train.py)  launch commands, see `mixes.export.handoff`
    manifest.json              domains, files + sha256, token counts, weights, epochs, batches, lineage

The token budget is trained in whole global batches (`mixes.export.batches`): the budget is
rounded down to them, and each domain gets a whole number of sequences by its weight. The
Megatron blend weights and the OLMo-core target ratios are those sequence shares, so both
trainers sample each domain exactly that many times; a domain is seen
`sequences * sequence_length / tokens` times ("epochs" in the manifest). All paths written inside the
export are relative to `out_dir`. Folder names hold a hyphen so that none can shadow the
`megatron` or `olmo_core` Python packages when a trainer runs from the export directory.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from curation.tokenizer import TokenizerInfo, verify_tokenizer_file, write_hf_tokenizer_dir
from mixes.export.batches import BatchPlan, olmo_ratio, plan_batches
from mixes.export.handoff import HANDOFF_SCRIPT, OLMO_CORE_LAUNCHER, HandoffPlan, write_handoff
from mixes.export.manifest import (
    DomainSummary,
    build_manifest,
    file_record,
    write_manifest,
)
from mixes.export.megatron import IndexedDatasetWriter, write_blend_file
from mixes.export.olmo_core import (
    MixtureSource,
    olmo_token_dtype,
    validate_source,
    whole_sequence_tokens,
    write_source_mixture,
    write_token_memmap,
)
from mixes.export.token_files import TokenFile, open_token_files

__all__ = ["FORMATS", "export_mixture", "normalize_weights"]

FORMATS = ("megatron", "olmo_core")
TOKENIZER_DIR = "tokenizer"
MEGATRON_DIR = "megatron-lm"
OLMO_CORE_DIR = "olmo-core"
MANIFEST = "manifest.json"
_EXPORT_ENTRIES = (TOKENIZER_DIR, MEGATRON_DIR, OLMO_CORE_DIR, HANDOFF_SCRIPT, OLMO_CORE_LAUNCHER, MANIFEST)


def normalize_weights(weights: Mapping[str, float], known_domains: Iterable[str]) -> dict[str, float]:
    """Check weights (finite, non-negative, domains known) and scale them to sum to 1.

    Known domains without a weight get 0. Zero-weight domains stay in the result.
    """
    known = list(known_domains)
    unknown = sorted(set(weights) - set(known))
    if unknown:
        raise ValueError(f"weights name unknown domains {unknown}; known domains: {sorted(known)}")
    for domain, weight in weights.items():
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(
                f"weight of domain {domain!r} must be a finite non-negative number, got {weight!r}"
            )
    total = math.fsum(weights.values())
    if total <= 0:
        raise ValueError(f"all domain weights are zero ({dict(weights)}): nothing to export")
    return {domain: float(weights.get(domain, 0.0)) / total for domain in known}


def _open_domain(domain: str, folder: Path, tokenizer: TokenizerInfo) -> list[TokenFile]:
    files = open_token_files(folder, tokenizer.vocab_size)
    for token_file in files:
        missing = token_file.documents_missing_eos(tokenizer.eos_id)
        if missing:
            raise ValueError(
                f"domain {domain!r}: {missing} of {len(token_file)} documents in {token_file.path} "
                f"do not end with EOS id {tokenizer.eos_id} ({tokenizer.eos_token!r}); tokenize with "
                f"DocumentTokenizer(eos_token={tokenizer.eos_token!r}) and this tokenizer"
            )
    if sum(token_file.num_tokens for token_file in files) == 0:
        raise ValueError(f"domain {domain!r} has a positive weight but no tokens in {folder}")
    return files


def _summarize(domain: str, weight: float, files: list[TokenFile]) -> DomainSummary:
    return DomainSummary(
        name=domain,
        weight=weight,
        tokens=sum(f.num_tokens for f in files),
        documents=sum(len(f) for f in files),
        source_files=tuple(
            {"path": str(f.path), "documents": len(f), "tokens": f.num_tokens} for f in files
        ),
    )


def _repetition_limits(
    max_repetition_ratio: float | Mapping[str, float], domains: Iterable[str]
) -> dict[str, float]:
    if isinstance(max_repetition_ratio, Mapping):
        return {domain: float(max_repetition_ratio.get(domain, 1.0)) for domain in domains}
    return {domain: float(max_repetition_ratio) for domain in domains}


def _export_megatron(
    out_dir: Path, domain_files: dict[str, list[TokenFile]], batches: BatchPlan, vocab_size: int
) -> tuple[list[dict], str]:
    records, blend = [], {}
    for domain, files in domain_files.items():
        prefix = out_dir / MEGATRON_DIR / domain
        with IndexedDatasetWriter(prefix, vocab_size) as writer:
            for token_file in files:
                writer.add_documents(token_file.tokens, token_file.document_lengths)
            dataset = writer.finalize()
        details = {"format": "megatron", "domain": domain, "tokens": dataset.num_tokens}
        records += [file_record(path, out_dir, **details) for path in (dataset.bin_path, dataset.idx_path)]
        blend[f"{MEGATRON_DIR}/{domain}"] = batches.share(domain)
    blend_path = write_blend_file(out_dir / MEGATRON_DIR / "blend.txt", blend)
    records.append(file_record(blend_path, out_dir, format="megatron"))
    return records, blend_path.relative_to(out_dir).as_posix()


def _export_olmo_core(
    out_dir: Path,
    domain_files: dict[str, list[TokenFile]],
    sources: list[MixtureSource],
    token_budget: int,
    vocab_size: int,
) -> tuple[list[dict], str]:
    records = []
    for source in sources:
        path = out_dir / source.paths[0]
        tokens = write_token_memmap(path, (f.tokens for f in domain_files[source.name]), vocab_size, limit=source.tokens)
        records.append(file_record(path, out_dir, format="olmo_core", domain=source.name, tokens=tokens))
    mixture_path = write_source_mixture(out_dir / OLMO_CORE_DIR / "mixture.yaml", sources, token_budget)
    records.append(file_record(mixture_path, out_dir, format="olmo_core"))
    return records, mixture_path.relative_to(out_dir).as_posix()


def _check_domain_names(domains: Iterable[str]) -> None:
    """Domain names become file names and Megatron blend entries (split on whitespace)."""
    for domain in domains:
        if not domain or domain in (".", "..") or "/" in domain or any(ch.isspace() for ch in domain):
            raise ValueError(f"domain name {domain!r} cannot be used as a file name in the export")


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> Path:
    """Refuse a non-empty folder, or with `overwrite` remove only what an export writes there."""
    out_dir = Path(out_dir).resolve()
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"export folder {out_dir} is not empty (pass overwrite=True to replace an export)"
            )
        for name in _EXPORT_ENTRIES:
            path = out_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def export_mixture(
    token_dirs: dict[str, Path],
    weights: dict[str, float],
    token_budget: int,
    tokenizer_info: TokenizerInfo,
    out_dir: Path,
    lineage: dict,
    formats: Iterable[str] = FORMATS,
    *,
    sequence_length: int = 2048,
    global_batch_size: int = 64,
    max_repetition_ratio: float | Mapping[str, float] = 1.0,
    overwrite: bool = False,
) -> dict:
    """Export the weighted domains in each trainer format; return the manifest (also written).

    `token_budget` is trained as whole global batches of `global_batch_size` sequences of
    `sequence_length` tokens (rounded down). `max_repetition_ratio` (one value, or one per
    domain) bounds how often a domain may be repeated; a domain too small for its sequences
    under that bound, or shorter than one sequence, is refused before anything is written,
    with an error naming it. `out_dir` must be empty unless `overwrite`, which replaces a
    previous export there (and only the files an export writes).
    """
    formats = list(dict.fromkeys(formats))
    if not formats or set(formats) - set(FORMATS):
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {formats}")
    if token_budget <= 0 or sequence_length <= 0 or global_batch_size <= 0:
        raise ValueError(
            f"token_budget, sequence_length and global_batch_size must be positive, got {token_budget}, "
            f"{sequence_length} and {global_batch_size}"
        )
    _check_domain_names(token_dirs)
    verify_tokenizer_file(tokenizer_info)
    normalized = normalize_weights(weights, token_dirs)
    batches = plan_batches(normalized, token_budget, sequence_length, global_batch_size)
    exported = [domain for domain, count in batches.sequences.items() if count > 0]
    domain_files = {
        domain: _open_domain(domain, Path(token_dirs[domain]), tokenizer_info) for domain in exported
    }
    summaries = [_summarize(domain, normalized[domain], domain_files[domain]) for domain in exported]

    limits = _repetition_limits(max_repetition_ratio, exported)
    olmo_dtype = olmo_token_dtype(tokenizer_info.vocab_size)
    sources = [
        MixtureSource(
            s.name, olmo_ratio(batches.sequences[s.name], batches), [f"{OLMO_CORE_DIR}/{s.name}.npy"],
            whole_sequence_tokens(s.tokens, sequence_length), limits[s.name],
        )
        for s in summaries
    ]
    for source in sources:  # Megatron repeats a domain as OLMo-core does: one supply check for both
        validate_source(source, batches.trained_tokens, sequence_length)

    out_dir = _prepare_out_dir(out_dir, overwrite)
    tokenizer_dir = write_hf_tokenizer_dir(tokenizer_info, out_dir / TOKENIZER_DIR)
    records = [
        file_record(path, out_dir, format="tokenizer") for path in sorted(tokenizer_dir.iterdir())
    ]
    blend_path = mixture_path = None
    if "megatron" in formats:
        megatron_records, blend_path = _export_megatron(
            out_dir, domain_files, batches, tokenizer_info.vocab_size
        )
        records += megatron_records
    if "olmo_core" in formats:
        olmo_records, mixture_path = _export_olmo_core(
            out_dir, domain_files, sources, batches.trained_tokens, tokenizer_info.vocab_size
        )
        records += olmo_records
    handoff_files = write_handoff(
        HandoffPlan(
            export_dir=out_dir,
            batches=batches,
            tokenizer=tokenizer_info,
            tokenizer_dir=TOKENIZER_DIR,
            megatron_blend_path=blend_path,
            olmo_mixture_path=mixture_path,
            olmo_dtype=olmo_dtype.name if mixture_path else None,
        )
    )
    records += [file_record(path, out_dir, format="handoff") for path in handoff_files]

    manifest = build_manifest(
        domains=summaries,
        excluded_domains=[domain for domain, weight in normalized.items() if weight == 0],
        rounded_out={domain: normalized[domain] for domain in batches.rounded_out},
        batches=batches,
        tokenizer=tokenizer_info,
        exported_tokenizer_dir=TOKENIZER_DIR,
        formats=formats,
        files=records,
        lineage=lineage,
    )
    write_manifest(out_dir / MANIFEST, manifest)
    return manifest
