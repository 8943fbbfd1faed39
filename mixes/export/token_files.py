"""Read the token files that datatrove's `DocumentTokenizer` writes, one document at a time.

The format, from datatrove 0.10.1 (`datatrove/pipeline/tokens/tokenizer.py`, `TokenizedFile`):

- `<name>.ds`: the token ids of every document back to back, little-endian, no header.
  uint16 when the tokenizer's vocab size (added tokens included) is at most 65,536, else uint32.
  With `DocumentTokenizer(eos_token=...)` each document's last id is that token's.
- `<name>.ds.index`: little-endian uint64, one per document: where the document ends, in tokens
  (exclusive and cumulative; the first document starts at 0).
- `<name>.ds.loss` (only with `save_loss_metadata=True`): one byte per token, 0 = no loss.
- `<name>.ds.metadata`: text lines `tokenizer|token bytes`, token count, human-readable count.

Names are `[save_filename_]<rank:05d>_{unshuffled,doc_shuffled,chunk_shuffled}.ds` (with a
`_<subrank:05d>` before the suffix when files are split by `max_tokens_per_file`), or the merger's.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

_UINT16_VOCAB_LIMIT = np.iinfo(np.uint16).max + 1


def datatrove_token_dtype(vocab_size: int) -> np.dtype:
    """The dtype `DocumentTokenizer` writes ids with for a tokenizer of `vocab_size` ids."""
    return np.dtype("<u2") if vocab_size <= _UINT16_VOCAB_LIMIT else np.dtype("<u4")


def check_token_ids(tokens: np.ndarray, vocab_size: int) -> None:
    """Refuse ids outside the vocabulary: the token files were written with another tokenizer."""
    if tokens.size and (int(tokens.max()) >= vocab_size or int(tokens.min()) < 0):
        raise ValueError(
            f"token ids range over [{int(tokens.min())}, {int(tokens.max())}], "
            f"outside a vocabulary of {vocab_size}: the token files come from another tokenizer"
        )


class TokenFile:
    """A `.ds` token file and its `.ds.index` (and `.ds.loss` if present), memory-mapped."""

    def __init__(self, path: Path, vocab_size: int):
        self.path = Path(path)
        self.vocab_size = vocab_size
        self.dtype = datatrove_token_dtype(vocab_size)
        self.index_path = self.path.with_name(self.path.name + ".index")
        self.loss_path = self.path.with_name(self.path.name + ".loss")
        if not self.index_path.is_file():
            raise FileNotFoundError(
                f"{self.path} has no {self.index_path.name}: document boundaries are unknown "
                "(DocumentTokenizer must run with save_index=True)"
            )
        self._check_size()

    def _check_size(self) -> None:
        """A wrong vocab size (uint16 read as uint32 or back) shows as a size mismatch."""
        expected = self.num_tokens * self.dtype.itemsize
        actual = self.path.stat().st_size
        if actual != expected:
            raise ValueError(
                f"{self.path} holds {actual} bytes but its index ends at token {self.num_tokens} "
                f"({expected} bytes as {self.dtype.name} for vocab size {self.vocab_size}): "
                "wrong tokenizer or a damaged file"
            )

    @cached_property
    def doc_ends(self) -> np.ndarray:
        if self.index_path.stat().st_size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.fromfile(self.index_path, dtype="<u8").astype(np.int64)

    @cached_property
    def doc_starts(self) -> np.ndarray:
        return np.concatenate(([0], self.doc_ends[:-1])).astype(np.int64)

    @property
    def document_lengths(self) -> np.ndarray:
        return self.doc_ends - self.doc_starts

    @property
    def num_tokens(self) -> int:
        return int(self.doc_ends[-1]) if len(self.doc_ends) else 0

    @cached_property
    def tokens(self) -> np.ndarray:
        """All tokens of the file (read-only memmap; an empty array for an empty file)."""
        if self.num_tokens == 0:
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(self.path, dtype=self.dtype, mode="r")

    @property
    def has_loss_mask(self) -> bool:
        return self.loss_path.is_file()

    @cached_property
    def _loss(self) -> np.ndarray:
        if not self.has_loss_mask:
            raise FileNotFoundError(f"{self.path} has no loss mask ({self.loss_path.name})")
        if self.num_tokens == 0:
            return np.zeros(0, dtype=np.bool_)
        return np.memmap(self.loss_path, dtype=np.bool_, mode="r")

    def __len__(self) -> int:
        return len(self.doc_ends)

    def document(self, i: int) -> np.ndarray:
        return self.tokens[self.doc_starts[i] : self.doc_ends[i]]

    def loss_mask(self, i: int) -> np.ndarray:
        """Document `i`'s loss mask: True where the token counts in the loss."""
        return self._loss[self.doc_starts[i] : self.doc_ends[i]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.document(i) for i in range(len(self)))

    def documents_missing_eos(self, eos_id: int) -> int:
        """How many documents do not end with `eos_id` (empty documents count as missing it)."""
        if len(self) == 0:
            return 0
        non_empty = self.document_lengths > 0
        last_ids = self.tokens[self.doc_ends[non_empty] - 1]
        return int(np.count_nonzero(last_ids != eos_id) + np.count_nonzero(~non_empty))


def find_token_files(folder: Path) -> list[Path]:
    """The `.ds` files directly in `folder`, in a stable (sorted) order: domain `a`'s folder must not
    pick up the files of domain `a/b` in its subfolder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"token folder {folder} does not exist")
    return sorted(p for p in folder.glob("*.ds") if p.is_file())


def open_token_files(folder: Path, vocab_size: int) -> list[TokenFile]:
    paths = find_token_files(folder)
    if not paths:
        raise FileNotFoundError(f"no datatrove token files (*.ds) under {folder}")
    return [TokenFile(path, vocab_size) for path in paths]
