"""Proxy training throughput: `train_proxy` against a plain torch loop of the same model.

Both train the proxy transformer for the same steps of `batch_size` rows of `context` tokens on
random token streams, with the same thread count. The plain loop draws each batch as random
windows of one stream (torch.randint), without the mixture sampler, the deterministic-kernel
settings, the per-step loss read-back or the evaluation, so the gap is what those cost;
`train_proxy`'s time includes building the model and evaluating a two-window target.

FLOP utilisation is 6 * parameters * tokens/s (forward and backward matmuls; the attention
scores are left out, a few percent at these shapes) against the rate of a large fp32 matmul
measured on the same device with the same threads: a nominal peak, not the data sheet's.

    .venv/bin/python -m bench.proxy [--device auto|cpu|cuda] [--threads 1] [--tokens 200000]
"""

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from mixes.proxy_model import ProxyConfig, ProxyTransformer, TargetSet, resolve_device, train_proxy

DOMAINS = 3
STREAM_TOKENS = 1_000_000
WARMUP_STEPS = 3


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_flops(device: torch.device, size: int, repeats: int) -> float:
    """FLOP/s of repeated fp32 (size x size) @ (size x size) products, after one warm-up product."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.mm(a, b)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def random_streams(vocab_size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"d{i}": rng.integers(0, vocab_size, STREAM_TOKENS, dtype=np.uint16) for i in range(DOMAINS)}


def parameter_count(config: ProxyConfig) -> int:
    """Parameters that do matmul work: all but the learned positions (a lookup); the tied output layer counts once."""
    model = ProxyTransformer(config)
    return sum(p.numel() for p in model.parameters()) - model.positions.weight.numel()


def plain_loop(stream: torch.Tensor, config: ProxyConfig, steps: int, device: torch.device) -> float:
    """Seconds for `steps` AdamW steps of the proxy model on random windows of one stream."""
    torch.manual_seed(0)
    model = ProxyTransformer(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.95))
    span = torch.arange(config.context + 1, device=device)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        starts = torch.randint(0, len(stream) - config.context - 1, (config.batch_size, 1), device=device)
        windows = stream[starts + span]
        logits = model(windows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
    synchronize(device)
    return time.perf_counter() - start


def proxy_seconds(streams, target: dict[str, TargetSet], tokens: int, config: ProxyConfig, device: str, threads: int) -> float:
    start = time.perf_counter()
    train_proxy(streams, {name: 1.0 for name in streams}, target, tokens, config, seed=0, device=device, num_threads=threads)
    return time.perf_counter() - start


def report(label: str, tokens: int, seconds: float, params: int, peak: float, baseline: float | None = None) -> float:
    rate = tokens / seconds
    flops = 6 * params * rate
    line = (
        f"{label:<18} {tokens:,} tokens in {seconds:6.2f}s = {rate:10,.0f} tokens/s · "
        f"{flops / 1e9:7.2f} GFLOP/s = {flops / peak:6.1%} of peak"
    )
    print(line + (f" · {rate / baseline:.2f}x the loop" if baseline else ""))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a proxy runs with 1 per Dask worker)")
    parser.add_argument("--tokens", type=int, default=200_000, help="training tokens per run (proxies.token_budget)")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--matmul", type=int, default=2048, help="side of the square matmul that measures the peak")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    config = ProxyConfig(
        vocab_size=args.vocab, n_layers=args.layers, d_model=args.d_model, context=args.context, batch_size=args.batch
    )
    steps = max(1, args.tokens // config.tokens_per_step)
    tokens = steps * config.tokens_per_step  # whole batches, so both runs train the same tokens
    streams = random_streams(args.vocab, seed=0)
    target = {"t": TargetSet(streams["d0"][: 2 * config.context + 1], num_bytes=4 * (2 * config.context + 1))}
    stream = torch.from_numpy(streams["d0"].astype(np.int64)).to(device)
    params = parameter_count(config)
    peak = matmul_peak_flops(device, args.matmul, repeats=10 if device.type == "cpu" else 100)
    print(f"device {device}, {torch.get_num_threads()} thread(s); proxy: {args.layers} layers, d_model {args.d_model}, "
          f"context {args.context}, batch {args.batch}, vocab {args.vocab:,}: {params / 1e6:.2f}M parameters, {steps} steps")
    print(f"nominal peak: fp32 matmul {args.matmul}^3 at {peak / 1e9:,.1f} GFLOP/s")
    plain_loop(stream, config, WARMUP_STEPS, device)
    proxy_seconds(streams, target, WARMUP_STEPS * config.tokens_per_step, config, args.device, args.threads)
    baseline = report("plain torch loop", tokens, plain_loop(stream, config, steps, device), params, peak)
    seconds = proxy_seconds(streams, target, tokens, config, args.device, args.threads)
    report("train_proxy", tokens, seconds, params, peak, baseline)


if __name__ == "__main__":
    main()
