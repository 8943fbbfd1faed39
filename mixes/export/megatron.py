"""Megatron-LM indexed datasets (`.bin` + `.idx`) and the `--data-args-path` blend file.

`.bin` holds the token ids of every sequence back to back. `.idx` (Megatron-core
`indexed_dataset.py`, little-endian) is:

    b"MMIDIDX\\x00\\x00"           9-byte magic
    uint64  version = 1
    uint8   dtype code             (uint16 = 8, int32 = 4, ...)
    uint64  sequence count N
    uint64  document count N + 1   (entries of the document index below)
    int32[N]    sequence lengths, in tokens
    int64[N]    sequence pointers, byte offsets into .bin
    int64[N+1]  document indices: 0, 1, ..., N (one sequence per document)

Each document is one sequence and ends with EOS, as Megatron's `preprocess_data.py --append-eod`
writes them; `GPTDataset` does not add EOS itself.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixes.export.token_files import check_token_ids

INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
DTYPE_CODES = {
    np.dtype(np.uint8): 1,
    np.dtype(np.int8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.int32): 4,
    np.dtype(np.int64): 5,
    np.dtype(np.float64): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.uint16): 8,
}
# Megatron's `DType.optimal_dtype`: uint16 below this vocabulary size, int32 from it on.
_UINT16_CARDINALITY_LIMIT = 65500
_WRITE_BLOCK_TOKENS = 1 << 24


def megatron_token_dtype(vocab_size: int) -> np.dtype:
    """The dtype Megatron's own preprocessing picks for `vocab_size` ids."""
    return np.dtype(np.uint16) if vocab_size < _UINT16_CARDINALITY_LIMIT else np.dtype(np.int32)


def bin_path(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".bin")


def idx_path(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".idx")


@dataclass(frozen=True)
class IndexedDataset:
    """A written dataset: `prefix` is what the blend file and `--data-path` name."""

    prefix: Path
    num_documents: int
    num_tokens: int
    dtype: np.dtype

    @property
    def bin_path(self) -> Path:
        return bin_path(self.prefix)

    @property
    def idx_path(self) -> Path:
        return idx_path(self.prefix)


class IndexedDatasetWriter:
    """Streams documents into `<prefix>.bin`, then writes `<prefix>.idx` on `finalize`."""

    def __init__(self, prefix: Path, vocab_size: int):
        self.prefix = Path(prefix)
        self.vocab_size = vocab_size
        self.dtype = megatron_token_dtype(vocab_size)
        self._lengths: list[np.ndarray] = []
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._bin = open(bin_path(self.prefix), "wb")

    def __enter__(self) -> IndexedDatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._bin.closed:
            self._bin.close()

    def add_document(self, tokens: Iterable[int] | np.ndarray) -> None:
        tokens = np.asarray(tokens)
        self.add_documents(tokens, np.array([tokens.size], dtype=np.int64))

    def add_documents(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents stored back to back in `tokens`, `lengths[i]` tokens each."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if int(lengths.sum()) != tokens.size:
            raise ValueError(
                f"document lengths sum to {int(lengths.sum())}, but {tokens.size} tokens were given"
            )
        if lengths.size and int(lengths.max()) > np.iinfo(np.int32).max:
            raise ValueError("a document over 2**31 - 1 tokens does not fit Megatron's int32 lengths")
        for start in range(0, tokens.size, _WRITE_BLOCK_TOKENS):
            block = np.asarray(tokens[start : start + _WRITE_BLOCK_TOKENS])
            check_token_ids(block, self.vocab_size)
            self._bin.write(block.astype(self.dtype.newbyteorder("<"), copy=False).tobytes())
        self._lengths.append(lengths)

    def finalize(self) -> IndexedDataset:
        self._bin.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int64)
        write_index(idx_path(self.prefix), lengths, self.dtype)
        return IndexedDataset(self.prefix, int(lengths.size), int(lengths.sum()), self.dtype)


def write_index(path: Path, lengths: np.ndarray, dtype: np.dtype) -> None:
    count = int(lengths.size)
    pointers = np.zeros(count, dtype="<i8")
    if count:
        np.cumsum(lengths[:-1] * dtype.itemsize, out=pointers[1:])
    with open(path, "wb") as f:
        f.write(INDEX_MAGIC)
        f.write(struct.pack("<Q", INDEX_VERSION))
        f.write(struct.pack("<B", DTYPE_CODES[np.dtype(dtype)]))
        f.write(struct.pack("<Q", count))
        f.write(struct.pack("<Q", count + 1))
        f.write(lengths.astype("<i4").tobytes())
        f.write(pointers.tobytes())
        f.write(np.arange(count + 1, dtype="<i8").tobytes())


def write_indexed_dataset(
    prefix: Path, documents: Iterable[Iterable[int]], vocab_size: int
) -> IndexedDataset:
    """Write one document per sequence from an iterable of token id sequences."""
    with IndexedDatasetWriter(prefix, vocab_size) as writer:
        for document in documents:
            writer.add_document(document)
        return writer.finalize()


def write_blend_file(path: Path, weighted_prefixes: dict[str, float]) -> Path:
    """Write `w1 prefix1 w2 prefix2 ...` (one pair a line) for `--data-args-path`.

    Megatron splits the file on whitespace, so prefixes must not contain any. Weights are written
    normalized to sum to 1 (Megatron normalizes them too).
    """
    total = math.fsum(weighted_prefixes.values())
    if not weighted_prefixes or total <= 0:
        raise ValueError("a blend needs at least one dataset with a positive weight")
    lines = []
    for prefix, weight in weighted_prefixes.items():
        if any(ch.isspace() for ch in prefix):
            raise ValueError(f"Megatron blend prefixes cannot contain whitespace: {prefix!r}")
        if weight < 0:
            raise ValueError(f"negative blend weight {weight} for {prefix}")
        lines.append(f"{float(weight / total)!r} {prefix}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
