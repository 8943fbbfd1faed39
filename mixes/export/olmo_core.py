"""OLMo-core token memmaps and the source-mixture YAML.

OLMo-core's numpy fixed-sequence-length datasets read `.npy` files that are raw, headerless
memmaps of token ids (not `numpy.save` files), documents separated by EOS. When no dtype is set
it picks the smallest unsigned type holding `vocab_size - 1`; the export writes uint16 when the
vocabulary fits and uint32 otherwise, and states the dtype in the handoff.

The mixture YAML has the shape of `olmo_core.data.source_mixture.SourceMixtureList`:
`sources: [{source_name, target_ratio, paths, max_repetition_ratio}]`, ratios summing to 1.

OLMo-core reads a source as whole sequences from the start of its file and never past the
last whole one, so each file is written cut there (`whole_sequence_tokens`): its size is then
what OLMo-core checks the source's supply against.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mixes.export.token_files import check_token_ids

_UINT16_VOCAB_LIMIT = np.iinfo(np.uint16).max + 1
_WRITE_BLOCK_TOKENS = 1 << 24


def olmo_token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= _UINT16_VOCAB_LIMIT else np.dtype("<u4")


def whole_sequence_tokens(tokens: int, sequence_length: int) -> int:
    return tokens // sequence_length * sequence_length


def write_token_memmap(path: Path, chunks: Iterable[np.ndarray], vocab_size: int, limit: int | None = None) -> int:
    """Write token chunks (each already EOS-terminated per document) to one raw memmap file,
    the first ``limit`` tokens of them when given. Returns the number of tokens written.
    """
    dtype = olmo_token_dtype(vocab_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "wb") as f:
        for chunk in chunks:
            for start in range(0, len(chunk), _WRITE_BLOCK_TOKENS):
                block = np.asarray(chunk[start : start + _WRITE_BLOCK_TOKENS])
                if limit is not None:
                    block = block[: limit - written]
                check_token_ids(block, vocab_size)
                f.write(block.astype(dtype, copy=False).tobytes())
                written += block.size
                if written == limit:
                    return written
    return written


@dataclass(frozen=True)
class MixtureSource:
    name: str
    ratio: float
    paths: list[str]
    tokens: int  # in its file, cut at the last whole sequence
    max_repetition_ratio: float = 1.0


def check_source_has_enough_tokens(source: MixtureSource, token_budget: int) -> None:
    """Fail as OLMo-core's `SourceMixtureDatasetConfig.build` would, but before any training.

    OLMo-core needs `int(budget * ratio)` tokens from the source and allows at most
    `int(tokens * max_repetition_ratio)`.
    """
    needed = int(token_budget * source.ratio)
    allowed = int(source.tokens * source.max_repetition_ratio)
    if allowed < needed:
        raise ValueError(
            f"source {source.name!r} has too few tokens for its share: target_ratio {source.ratio:.6g} "
            f"of a {token_budget:,}-token budget needs {needed:,} tokens, but it has {source.tokens:,} "
            f"in whole sequences and max_repetition_ratio {source.max_repetition_ratio:g} allows {allowed:,} "
            f"(raise max_repetition_ratio to at least {needed / max(source.tokens, 1):.4g}, "
            "lower its weight or the budget)"
        )


def validate_source(source: MixtureSource, token_budget: int, sequence_length: int) -> None:
    """The checks OLMo-core makes on one source, plus its token supply at `token_budget`."""
    if not 0 < source.ratio <= 1:
        raise ValueError(f"source {source.name!r}: target_ratio must be in (0, 1], got {source.ratio}")
    if source.max_repetition_ratio < 1:
        raise ValueError(
            f"source {source.name!r}: max_repetition_ratio must be >= 1, got {source.max_repetition_ratio}"
        )
    if not source.paths:
        raise ValueError(f"source {source.name!r} has no paths")
    if source.tokens < sequence_length:
        raise ValueError(
            f"source {source.name!r} holds less than one sequence of {sequence_length} tokens: give it weight 0 "
            "or lower export.sequence_length"
        )
    check_source_has_enough_tokens(source, token_budget)


def write_source_mixture(path: Path, sources: list[MixtureSource], token_budget: int) -> Path:
    """Write the mixture YAML after checking ratios and every source's token supply."""
    if not sources:
        raise ValueError("a source mixture needs at least one source")
    total = math.fsum(source.ratio for source in sources)
    if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"target ratios must sum to 1, got {total}")
    for source in sources:
        check_source_has_enough_tokens(source, token_budget)
    document = {
        "sources": [
            {
                "source_name": source.name,
                "target_ratio": float(source.ratio),
                "paths": list(source.paths),
                "max_repetition_ratio": float(source.max_repetition_ratio),
            }
            for source in sources
        ]
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# OLMo-core SourceMixtureList written by curate; paths are relative to the export folder\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
