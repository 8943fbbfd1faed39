"""Tiny decoder-only transformers trained on a weighted mixture of domains (RegMix proxies).

A proxy run samples every batch row from the domain token streams by the mixture weights
(pick a domain by weight, then a random window of `context + 1` tokens), trains for exactly
`token_budget` predicted tokens with AdamW (linear warmup, cosine decay), and evaluates each
target. A held-out text slice (`TargetSet`) is measured in bits per byte, the measure that is
comparable across tokenizers:

    bpb = (mean nats per predicted token) * tokens / ln 2 / utf8_bytes

An evaluation task (`mixes.targets.TaskTarget`) scores its gold answers given their prompts.
`evaluate_model_state` scores saved weights on targets without training.

A run is deterministic on CPU for a fixed seed. Proxy runs execute as parallel processes, so a
run uses one intra-op thread unless told otherwise.

`train_proxy_state` is `train_proxy` that may start from a trained `ProxyState` (parameters and
AdamW moments) and returns the state it ends in; with `schedule="linear_decay"` the learning
rate falls linearly to 0 without warmup, as in an anneal (mid-training) phase.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curation.digests import array_hash

IGNORE_INDEX = -100
LAST_LOSSES = 10  # the reported train loss is the mean over this many final steps


@dataclass(frozen=True)
class ProxyConfig:
    """Shape and optimisation settings of a proxy model; `batch_size` is rows of `context` tokens."""

    vocab_size: int
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    context: int = 64
    batch_size: int = 16
    learning_rate: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_fraction: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_batch_size: int = 64

    def __post_init__(self):
        for name in ("vocab_size", "n_layers", "d_model", "n_heads", "context", "batch_size", "eval_batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ProxyConfig.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if not 0 <= self.warmup_fraction < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("warmup_fraction must be in [0, 1) and min_lr_ratio in [0, 1]")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context


@dataclass(frozen=True)
class TargetSet:
    """A validation target: its token ids (EOS between documents) and the UTF-8 bytes they encode."""

    tokens: np.ndarray
    num_bytes: int

    def check(self, name: str, vocab_size: int) -> None:
        _check_tokens(f"target {name!r}", self.tokens, vocab_size)
        if len(self.tokens) < 2 or self.num_bytes <= 0:
            raise ValueError(f"target {name!r} needs at least 2 tokens and a positive byte count")

    def identity(self) -> str:
        return f"text-{array_hash(self.tokens)}-{self.num_bytes}"

    def score(self, model: nn.Module, config: "ProxyConfig", device: torch.device) -> dict[str, float]:
        """Bits per byte: the mean loss extended to all of the target's tokens over its bytes."""
        nats = target_nats_per_token(model, self.tokens, config.context, device, config.eval_batch_size)
        return {"bpb": nats * len(self.tokens) / math.log(2) / self.num_bytes}


@dataclass(frozen=True)
class ProxyResult:
    weights: dict[str, float]
    scores: dict[str, dict[str, float]]  # target -> metric (bpb; accuracy for a choice task) -> value
    tokens_trained: int
    seconds: float
    final_train_loss: float
    seed: int

    @property
    def bpb(self) -> dict[str, float]:
        return {target: metrics["bpb"] for target, metrics in self.scores.items()}


@dataclass(frozen=True, eq=False)
class ProxyState:
    """A trained proxy to continue from: its parameters and AdamW state, as CPU tensors.

    `learning_rate` is the rate of the run's last step (where a continuation starts by default);
    `tokens_trained` counts every token the state has seen, over all the runs that made it.
    """

    model: dict[str, torch.Tensor]
    optimizer: dict
    learning_rate: float
    tokens_trained: int

    def to_dict(self) -> dict:
        """Plain containers only, for `torch.save` / `torch.load(weights_only=True)`."""
        return {
            "model": dict(self.model), "optimizer": self.optimizer,
            "learning_rate": self.learning_rate, "tokens_trained": self.tokens_trained,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ProxyState:
        return cls(dict(data["model"]), data["optimizer"], float(data["learning_rate"]), int(data["tokens_trained"]))


Schedule = Literal["cosine", "linear_decay"]


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, width // self.n_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model, bias=False), nn.GELU(), nn.Linear(4 * d_model, d_model, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class ProxyTransformer(nn.Module):
    """Decoder-only transformer with learned positions and an output layer tied to the embedding."""

    def __init__(self, config: ProxyConfig):
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.positions = nn.Embedding(config.context, config.d_model)
        self.blocks = nn.ModuleList(Block(config.d_model, config.n_heads) for _ in range(config.n_layers))
        self.final_norm = nn.LayerNorm(config.d_model)
        self.apply(_init_weights)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """The final normed states (batch, length, d_model), before the output layer."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens) + self.positions(positions)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.linear(self.hidden(tokens), self.embed.weight)

    def logits_at(self, tokens: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Logits (n, vocab) at positions ``(rows, columns)`` only: the output layer is most of the cost."""
        return F.linear(self.hidden(tokens)[rows, columns], self.embed.weight)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


def resolve_device(device: str) -> torch.device:
    """'auto' is CUDA where available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for but torch sees no CUDA device")
    return torch.device(device)


@contextlib.contextmanager
def _proxy_run_settings(device: torch.device, num_threads: int) -> Iterator[None]:
    """Deterministic kernels and a fixed thread count for one run; the process settings are restored.

    On CUDA some kernels have no deterministic version: there determinism only warns.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _check_tokens(name: str, tokens: np.ndarray, vocab_size: int) -> None:
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"{name}: tokens must be a 1-D integer array, got {tokens.dtype} {tokens.shape}")
    if tokens.size and int(tokens.max()) >= vocab_size:
        raise ValueError(f"{name}: token id {int(tokens.max())} is outside the vocabulary ({vocab_size})")


def mixture_probabilities(
    train_streams: Mapping[str, np.ndarray], weights: Mapping[str, float], context: int
) -> tuple[list[str], np.ndarray]:
    """Domains and their sampling probabilities (weights scaled to sum to 1, missing domains 0)."""
    unknown = sorted(set(weights) - set(train_streams))
    if unknown:
        raise ValueError(f"weights name domains without a token stream: {unknown}")
    domains = list(train_streams)
    probs = np.array([float(weights.get(domain, 0.0)) for domain in domains])
    if not np.all(np.isfinite(probs)) or np.any(probs < 0) or probs.sum() <= 0:
        raise ValueError(f"mixture weights must be finite, non-negative and not all zero: {dict(weights)}")
    for domain, prob in zip(domains, probs):
        if prob > 0 and len(train_streams[domain]) < context + 1:
            raise ValueError(
                f"domain {domain!r} has {len(train_streams[domain])} tokens, fewer than one window "
                f"of context + 1 = {context + 1}"
            )
    return domains, probs / probs.sum()


def step_token_counts(token_budget: int, tokens_per_step: int) -> list[int]:
    """Predicted tokens per optimiser step; they add up to exactly `token_budget`."""
    full, rest = divmod(token_budget, tokens_per_step)
    return [tokens_per_step] * full + ([rest] if rest else [])


def learning_rate_at(step: int, total_steps: int, config: ProxyConfig) -> float:
    """Linear warmup to the peak, then cosine decay to `min_lr_ratio` of the peak at the last step."""
    warmup = max(1, round(config.warmup_fraction * total_steps))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - 1 - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.learning_rate * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def linear_decay_rate(step: int, total_steps: int, peak: float) -> float:
    """The anneal schedule: `peak` at the first step, falling linearly to 0 after the last one."""
    return peak * (total_steps - step) / total_steps


def sample_batch(
    streams: list[np.ndarray], probs: np.ndarray, tokens: int, context: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of `context` inputs and next-token labels; labels past `tokens` predictions are ignored."""
    rows = -(-tokens // context)
    domains = rng.choice(len(streams), size=rows, p=probs)
    offsets = rng.random(rows)
    windows = np.empty((rows, context + 1), dtype=np.int64)
    span = np.arange(context + 1)
    for index, stream in enumerate(streams):
        chosen = np.flatnonzero(domains == index)
        starts = (offsets[chosen] * (len(stream) - context)).astype(np.int64)
        windows[chosen] = stream[starts[:, None] + span]
    labels = windows[:, 1:].copy()
    labels.reshape(-1)[tokens:] = IGNORE_INDEX
    return torch.from_numpy(windows[:, :-1]), torch.from_numpy(labels)


def _adamw(model: nn.Module, config: ProxyConfig) -> torch.optim.AdamW:
    """Weight decay on matrices only (not on norms)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.95))


def _train(
    model: nn.Module,
    streams: list[np.ndarray],
    probs: np.ndarray,
    token_budget: int,
    config: ProxyConfig,
    rng: np.random.Generator,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
    rate_at: Callable[[int, int], float] | None = None,
) -> float:
    """Train in place for exactly `token_budget` predicted tokens; return the final train loss.

    By default a fresh AdamW with warmup and cosine decay; `optimizer` and `rate_at(step, steps)`
    replace them (a continued run's optimizer, an anneal's schedule).
    """
    optimizer = optimizer if optimizer is not None else _adamw(model, config)
    rate_at = rate_at or (lambda step, total: learning_rate_at(step, total, config))
    steps = step_token_counts(token_budget, config.tokens_per_step)
    losses = []
    model.train()
    for step, tokens in enumerate(steps):
        for group in optimizer.param_groups:
            group["lr"] = rate_at(step, len(steps))
        inputs, labels = sample_batch(streams, probs, tokens, config.context, rng)
        logits = model(inputs.to(device))
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.to(device).reshape(-1), ignore_index=IGNORE_INDEX
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses[-LAST_LOSSES:]))


def _evaluation_windows(tokens: np.ndarray, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows predicting every token after the first once; padding is ignored."""
    predicted = len(tokens) - 1
    windows = -(-predicted // context)
    padded = np.zeros(windows * context + 1, dtype=np.int64)
    padded[: len(tokens)] = tokens
    labels = padded[1:].copy()
    labels[predicted:] = IGNORE_INDEX
    return torch.from_numpy(padded[:-1].reshape(windows, context)), torch.from_numpy(labels.reshape(windows, context))


def target_nats_per_token(
    model: nn.Module, tokens: np.ndarray, context: int, device: torch.device, batch_size: int
) -> float:
    """Mean next-token loss (nats) over the target's non-overlapping windows."""
    inputs, labels = _evaluation_windows(tokens, context)
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            logits = model(inputs[start : start + batch_size].to(device))
            batch_labels = labels[start : start + batch_size].to(device)
            total += F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch_labels.reshape(-1),
                ignore_index=IGNORE_INDEX, reduction="sum",
            ).item()
    return total / (len(tokens) - 1)


def evaluate_targets(model: nn.Module, targets: Mapping, config: ProxyConfig, device: torch.device) -> dict[str, dict[str, float]]:
    """Every target's metrics; a target is anything with ``score(model, config, device)`` (a TargetSet, a task)."""
    model.eval()
    return {name: target.score(model, config, device) for name, target in targets.items()}


def evaluate_model_state(
    model_state: Mapping[str, torch.Tensor], targets: Mapping, config: ProxyConfig, device: str = "cpu", num_threads: int = 1
) -> dict[str, dict[str, float]]:
    """A saved proxy's metrics on `targets`, without any training (a new or changed evaluation)."""
    _check_targets(targets, config.vocab_size)
    torch_device = resolve_device(device)
    with _proxy_run_settings(torch_device, num_threads):
        model = ProxyTransformer(config).to(torch_device)
        try:
            model.load_state_dict(model_state)
        except RuntimeError as err:
            raise ValueError(f"the saved proxy does not fit this proxy config: {err}") from None
        return evaluate_targets(model, targets, config, torch_device)


def _check_targets(targets: Mapping, vocab_size: int) -> None:
    if not targets:
        raise ValueError("no validation targets to evaluate")
    for name, target in targets.items():
        target.check(name, vocab_size)


def train_proxy(
    train_streams: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    targets: Mapping[str, TargetSet],
    token_budget: int,
    config: ProxyConfig,
    seed: int,
    device: str = "cpu",
    num_threads: int = 1,
) -> ProxyResult:
    """Train a proxy on the mixture for exactly `token_budget` tokens and measure each target in bpb."""
    result, _ = _run_proxy(train_streams, weights, targets, token_budget, config, seed, device, num_threads)
    return result


def train_proxy_state(
    train_streams: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    targets: Mapping[str, TargetSet],
    token_budget: int,
    config: ProxyConfig,
    seed: int,
    device: str = "cpu",
    num_threads: int = 1,
    *,
    initial_state: ProxyState | None = None,
    schedule: Schedule = "cosine",
    learning_rate: float | None = None,
) -> tuple[ProxyResult, ProxyState]:
    """`train_proxy`, optionally from `initial_state`, also returning the state it ends in.

    From a state, the model takes its parameters and AdamW its moments (the seed then only draws
    the batches). `schedule`: "cosine" is `train_proxy`'s warmup and cosine decay with
    `learning_rate` (default: the config's) as the peak; "linear_decay" starts at `learning_rate`
    (default: the state's last rate, or the config's without a state) and falls linearly to 0.
    """
    return _run_proxy(
        train_streams, weights, targets, token_budget, config, seed, device, num_threads,
        initial_state=initial_state, schedule=schedule, learning_rate=learning_rate, keep_state=True,
    )


def _schedule(schedule: Schedule, config: ProxyConfig, learning_rate: float | None, initial_state: ProxyState | None):
    if schedule == "cosine":
        peaked = config if learning_rate is None else dataclasses.replace(config, learning_rate=learning_rate)
        return lambda step, total: learning_rate_at(step, total, peaked)
    if schedule == "linear_decay":
        default = initial_state.learning_rate if initial_state is not None else config.learning_rate
        peak = default if learning_rate is None else learning_rate
        return lambda step, total: linear_decay_rate(step, total, peak)
    raise ValueError(f"schedule must be 'cosine' or 'linear_decay', got {schedule!r}")


def _on_cpu(value):
    """A state dict's tensors copied to the CPU (the containers rebuilt, other values kept)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(item) for item in value)
    return value


def _load_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: ProxyState) -> None:
    """Load a copy: AdamW's load keeps the given tensors where it can and then updates them in place,
    which would change a state shared by several runs (a scattered base on a Dask worker)."""
    try:
        model.load_state_dict(state.model)
        optimizer.load_state_dict(_on_cpu(state.optimizer))
    except (RuntimeError, ValueError, KeyError) as err:
        raise ValueError(f"initial_state does not fit this proxy config: {err}") from None


def _run_proxy(
    train_streams: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    targets: Mapping[str, TargetSet],
    token_budget: int,
    config: ProxyConfig,
    seed: int,
    device: str,
    num_threads: int,
    initial_state: ProxyState | None = None,
    schedule: Schedule = "cosine",
    learning_rate: float | None = None,
    keep_state: bool = False,
) -> tuple[ProxyResult, ProxyState | None]:
    if token_budget <= 0:
        raise ValueError(f"token_budget must be positive, got {token_budget}")
    if learning_rate is not None and not (math.isfinite(learning_rate) and learning_rate >= 0):
        raise ValueError(f"learning_rate must be finite and non-negative, got {learning_rate}")
    rate_at = _schedule(schedule, config, learning_rate, initial_state)
    domains, probs = mixture_probabilities(train_streams, weights, config.context)
    for domain in domains:
        _check_tokens(f"domain {domain!r}", train_streams[domain], config.vocab_size)
    _check_targets(targets, config.vocab_size)
    torch_device = resolve_device(device)
    started = time.perf_counter()
    with _proxy_run_settings(torch_device, num_threads):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = ProxyTransformer(config).to(torch_device)
        optimizer = _adamw(model, config)
        if initial_state is not None:
            _load_state(model, optimizer, initial_state)
        streams = [train_streams[domain] for domain in domains]
        final_loss = _train(model, streams, probs, token_budget, config, rng, torch_device, optimizer, rate_at)
        scores = evaluate_targets(model, targets, config, torch_device)
        state = None
        if keep_state:
            total_steps = len(step_token_counts(token_budget, config.tokens_per_step))
            state = ProxyState(
                model=_on_cpu(model.state_dict()),
                optimizer=_on_cpu(optimizer.state_dict()),
                learning_rate=float(rate_at(total_steps - 1, total_steps)),
                tokens_trained=token_budget + (initial_state.tokens_trained if initial_state is not None else 0),
            )
    result = ProxyResult(
        weights=dict(zip(domains, probs.tolist())),
        scores=scores,
        tokens_trained=token_budget,
        seconds=time.perf_counter() - started,
        final_train_loss=final_loss,
        seed=seed,
    )
    return result, state
