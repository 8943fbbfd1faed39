"""Scoring a proxy on an evaluation task: bits per byte of the gold answer given the question, and
for a choice task the accuracy of the gold choice by log-likelihood per byte.

Only continuation tokens are scored; context tokens condition them and are never counted.

Windows. A proxy has `context` positions, so a sequence (context ids + continuation ids, N tokens)
is scored in windows. A window that predicts the tokens at positions ``first .. end-1`` feeds
the inputs at positions ``start .. end-2`` with ``start = max(0, end - 1 - context)``: at most
`context` inputs, ending just before its last predicted token.

- A sequence that fits (N - 1 <= context inputs) is one window: ``first`` is the first
  continuation position, ``end = N``, ``start = 0``; every token sees everything before it.
- Otherwise the continuation is cut into consecutive blocks of ``block = max(1, context // 2)``
  tokens from its first token (the last block may be shorter), one window each. A token at
  position ``j`` in a block sees ``j - start`` preceding tokens: everything before it when
  ``start = 0``, else at least ``context - block + 1 >= context // 2``.

Windows of all sequences are batched together, the longest first, right-padded to the longest in
their batch (causal attention makes right padding harmless; padded positions are never scored),
and the losses of their scored positions are added into their sequences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mixes.proxy_model import ProxyTransformer
from mixes.tasks import EncodedTask


@dataclass(frozen=True)
class ScoringWindows:
    """Per window: its sequence, and positions in that sequence (see the module docstring)."""

    sequence: np.ndarray
    start: np.ndarray  # first input position
    first: np.ndarray  # first predicted (scored) position
    end: np.ndarray  # one past the last predicted position; the inputs end at end - 2

    @property
    def lengths(self) -> np.ndarray:
        """Input tokens per window."""
        return self.end - 1 - self.start


def scoring_windows(context_lengths: np.ndarray, continuation_lengths: np.ndarray, context: int) -> ScoringWindows:
    """The windows that score every continuation token exactly once, by the rule above."""
    prefix = np.asarray(context_lengths, dtype=np.int64)
    total = prefix + np.asarray(continuation_lengths, dtype=np.int64)
    block = max(1, context // 2)
    fits = total - 1 <= context
    counts = np.where(fits, 1, -(-(total - prefix) // block))
    sequence = np.repeat(np.arange(len(prefix)), counts)
    rank = np.arange(len(sequence)) - np.repeat(np.cumsum(counts) - counts, counts)
    first = prefix[sequence] + rank * block
    end = np.where(fits[sequence], total[sequence], np.minimum(first + block, total[sequence]))
    return ScoringWindows(sequence, np.maximum(0, end - 1 - context), first, end)


def continuation_nats(
    model: nn.Module,
    sequences: Sequence[tuple[np.ndarray, np.ndarray]],
    context: int,
    device: torch.device | str,
    batch_size: int,
) -> np.ndarray:
    """Per ``(context_ids, continuation_ids)``: the summed next-token loss (nats) of the continuation."""
    if context < 1 or batch_size < 1:
        raise ValueError(f"context and batch_size must be positive, got {context} and {batch_size}")
    _check_sequences(sequences)
    if not sequences:
        return np.zeros(0)
    device = torch.device(device)
    tokens = np.concatenate([ids for pair in sequences for ids in pair]).astype(np.int64)
    offsets = np.cumsum([0] + [len(prefix) + len(continuation) for prefix, continuation in sequences])[:-1]
    windows = scoring_windows([len(p) for p, _ in sequences], [len(c) for _, c in sequences], context)
    order = np.argsort(-windows.lengths, kind="stable")
    totals = torch.zeros(len(sequences), dtype=torch.float64, device=device)
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in np.array_split(order, -(-len(order) // batch_size)):
                _add_batch_nats(model, tokens, offsets, windows, batch, totals, device)
    finally:
        model.train(training)
    return totals.cpu().numpy()


def _check_sequences(sequences: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
    for index, (prefix, continuation) in enumerate(sequences):
        if not len(prefix) or not len(continuation):
            raise ValueError(
                f"sequence {index}: needs at least one context and one continuation token, "
                f"got {len(prefix)} and {len(continuation)}"
            )


def _add_batch_nats(
    model: nn.Module,
    tokens: np.ndarray,
    offsets: np.ndarray,
    windows: ScoringWindows,
    batch: np.ndarray,
    totals: torch.Tensor,
    device: torch.device,
) -> None:
    """One forward pass over the batch's windows; its scored losses are added into `totals`."""
    lengths = windows.lengths[batch]
    base = offsets[windows.sequence[batch]] + windows.start[batch]  # flat index of each window's first input
    steps = np.arange(lengths.max())
    inputs = tokens[base[:, None] + np.minimum(steps, lengths[:, None] - 1)]  # padding repeats the last input
    scored = (steps >= (windows.first[batch] - 1 - windows.start[batch])[:, None]) & (steps < lengths[:, None])
    rows, columns = np.nonzero(scored)
    targets = tokens[base[rows] + columns + 1]
    rows_t, columns_t = torch.from_numpy(rows).to(device), torch.from_numpy(columns).to(device)
    logits = _scored_logits(model, torch.from_numpy(inputs).to(device), rows_t, columns_t)
    losses = F.cross_entropy(logits.float(), torch.from_numpy(targets).to(device), reduction="none")
    owners = torch.from_numpy(windows.sequence[batch][rows]).to(device)
    totals.index_add_(0, owners, losses.double())


def _scored_logits(model: nn.Module, inputs: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Logits (scored positions, vocab) at ``inputs[rows, columns]``.

    Most window positions are context, and the output layer (d_model x vocab per position) is
    most of a proxy's cost: a `ProxyTransformer` applies it at the scored positions only; any
    other model computes every position's logits and they are picked afterwards.
    """
    if isinstance(model, ProxyTransformer):
        return model.logits_at(inputs, rows, columns)
    return model(inputs)[rows, columns]


def score_task(
    model: nn.Module, task: EncodedTask, context: int, device: torch.device | str, batch_size: int
) -> dict[str, float]:
    """``bpb`` of the gold continuations, and for a choice task ``accuracy``: the fraction of
    examples whose gold choice has the lowest nats per byte, strictly (a tie counts as wrong)."""
    counts = np.array([len(choices) for choices in task.continuations])
    sequences = [
        (prefix, continuation)
        for prefix, choices in zip(task.contexts, task.continuations)
        for continuation in choices
    ]
    nats = continuation_nats(model, sequences, context, device, batch_size)
    num_bytes = np.array([size for sizes in task.continuation_bytes for size in sizes], dtype=np.float64)
    first_choice = np.cumsum(counts) - counts
    gold = first_choice + task.gold
    scores = {"bpb": float(nats[gold].sum() / math.log(2) / num_bytes[gold].sum())}
    if task.kind == "choice":
        scores["accuracy"] = choice_accuracy(nats / num_bytes, first_choice, gold)
    return scores


def choice_accuracy(nats_per_byte: np.ndarray, first_choice: np.ndarray, gold: np.ndarray) -> float:
    """Fraction of examples whose gold (a flat index) beats every other choice of its example.

    `first_choice` is each example's first flat index; examples are contiguous and in order.
    """
    rivals = nats_per_byte.copy()
    rivals[gold] = np.inf
    best_rival = np.minimum.reduceat(rivals, first_choice)
    return float(np.mean(nats_per_byte[gold] < best_rival))
