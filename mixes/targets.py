"""Evaluation tasks as proxy targets, beside the held-out text slices (`mixes.proxy_model.TargetSet`).

A target is anything with ``check(name, vocab_size)``, ``identity()`` (a hash of its content:
a proxy is scored again only when it changes) and ``score(model, config, device)`` (its
metrics). A task scores the bits per byte of the gold answers given their prompts and, for a
choice task, the rank accuracy of the gold choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mixes.proxy_model import ProxyConfig
from curation.digests import array_hash, stable_hash
from mixes.task_scores import score_task
from mixes.tasks import EncodedTask, TaskExample, TaskSpec, encode_task


@dataclass(frozen=True, eq=False)
class TaskTarget:
    spec: TaskSpec
    task: EncodedTask

    def _arrays(self) -> list[np.ndarray]:
        return [*self.task.contexts, *(ids for choices in self.task.continuations for ids in choices)]

    def check(self, name: str, vocab_size: int) -> None:
        largest = max(int(ids.max()) for ids in self._arrays() if ids.size)
        if largest >= vocab_size:
            raise ValueError(f"task {name!r}: token id {largest} is outside the vocabulary ({vocab_size})")

    def identity(self) -> str:
        lengths = np.array([len(ids) for ids in self._arrays()], dtype=np.int64)
        content = array_hash(lengths, np.concatenate(self._arrays()), np.asarray(self.task.gold))
        return f"task-{self.task.kind}-{stable_hash(self.task.continuation_bytes)}-{content}"

    def score(self, model: nn.Module, config: ProxyConfig, device: torch.device) -> dict[str, float]:
        return score_task(model, self.task, config.context, device, config.eval_batch_size)

    def facts(self) -> dict:
        """What the proxies stage reports about the task."""
        return {
            "kind": self.task.kind,
            "path": str(self.spec.path),
            "items": len(self.task.contexts),
            "few_shot": self.spec.few_shot,
            "context_tokens": int(sum(len(ids) for ids in self.task.contexts)),
        }


def task_target(spec: TaskSpec, examples: Sequence[TaskExample], encode: Callable[[list[str]], list[list[int]]]) -> TaskTarget:
    return TaskTarget(spec, encode_task(spec.name, spec.kind, list(examples), encode))
