"""The export's training geometry: a token budget in whole global batches, split into whole
sequences per domain.

Trainers count in batches, not tokens. Megatron-LM trains ``train_samples // global_batch``
iterations (a budget of 706,422 tokens became 655,360); OLMo-core rounds its budget up to whole
batches and gives the extra instances to whichever sources are below one pass, whatever their
weight. So the export fixes the geometry itself: ``steps`` global batches of
``global_batch_size`` sequences of ``sequence_length`` tokens, and each domain a whole number
of those sequences (largest remainders of its weight; a weight under one sequence may round to
none, and the manifest names such domains). Both trainers are then handed exactly
these counts, and what they sample per domain is the exported share, not an approximation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPlan:
    requested_tokens: int
    sequence_length: int
    global_batch_size: int  # sequences per optimizer step
    steps: int
    sequences: dict[str, int]  # per domain, summing to steps * global_batch_size

    @property
    def total_sequences(self) -> int:
        return self.steps * self.global_batch_size

    @property
    def trained_tokens(self) -> int:
        return self.total_sequences * self.sequence_length

    @property
    def rounded_out(self) -> list[str]:
        """Domains with a positive weight under one sequence: rounded to none."""
        return sorted(name for name, count in self.sequences.items() if count == 0)

    def share(self, domain: str) -> float:
        """The domain's share of the sequences: its weight, to within one sequence."""
        return self.sequences[domain] / self.total_sequences

    def tokens(self, domain: str) -> int:
        return self.sequences[domain] * self.sequence_length


def largest_remainders(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """``total`` split into whole parts in proportion to ``weights`` (Hamilton's method): each
    gets the floor of its quota, and the parts left over go to the largest remainders (ties
    by name, so the split is deterministic)."""
    weight_sum = math.fsum(weights.values())
    quotas = {name: total * weight / weight_sum for name, weight in weights.items()}
    parts = {name: math.floor(quota) for name, quota in quotas.items()}
    left = total - sum(parts.values())
    for name in sorted(quotas, key=lambda name: (parts[name] - quotas[name], name))[:left]:
        parts[name] += 1
    return parts


def plan_batches(
    weights: Mapping[str, float], requested_tokens: int, sequence_length: int, global_batch_size: int
) -> BatchPlan:
    """The whole global batches within ``requested_tokens``, and each positive-weight domain's
    sequences. A budget under one batch is refused with what to change. A domain whose weight
    is under one sequence can be rounded to none (its share is then off by less than one
    sequence, as every domain's may be): the caller says so."""
    batch_tokens = sequence_length * global_batch_size
    steps = requested_tokens // batch_tokens
    if steps == 0:
        raise ValueError(
            f"a token budget of {requested_tokens:,} is less than one global batch of {global_batch_size} "
            f"sequences of {sequence_length} tokens ({batch_tokens:,} tokens): raise the budget or lower "
            "export.global_batch_size / export.sequence_length"
        )
    positive = {name: weight for name, weight in weights.items() if weight > 0}
    sequences = largest_remainders(positive, steps * global_batch_size)
    return BatchPlan(requested_tokens, sequence_length, global_batch_size, steps, sequences)


def olmo_ratio(sequences: int, plan: BatchPlan) -> float:
    """The ``target_ratio`` for which OLMo-core asks exactly ``sequences`` whole sequences of the
    trained budget: it takes ``int(budget * ratio)`` tokens, and ``sequences / total`` in
    floating point can land one token short."""
    wanted = sequences * plan.sequence_length
    ratio = sequences / plan.total_sequences
    while int(plan.trained_tokens * ratio) < wanted:
        ratio = math.nextafter(ratio, math.inf)
    while int(plan.trained_tokens * ratio) > wanted:
        ratio = math.nextafter(ratio, -math.inf)
    return ratio
