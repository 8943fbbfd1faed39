"""``mix.transfer``: do the proxies' rankings hold for a larger model, on this run's own data?

RegMix's central claim is that the ranking of mixtures by tiny proxies carries over to larger
models. The check trains a larger model (``parameter_factor`` times the proxy's non-embedding
parameters, ``token_factor`` times its tokens) on the chosen, the natural and ``sampled`` other
admissible mixes, and compares the objective the regression predicts for each with the one the
larger model measures. Larger models are stored like proxies, so a rerun trains none again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from distributed import Client
from rich.console import Console

from mixes.regression import objective_values
from mixes.sampling import MixtureSpace
from mixes.swarm import ProxySpec
from mixes.transfer import larger_config, sampled_transfer_mixtures, transfer_plot, transfer_summary
from pipelines.choose import MixChoice
from pipelines.config import PipelineConfig
from pipelines.proxy_runs import ProgressLines, ProxyInputs, proxy_swarm, swarm_counts, train_proxies
from pipelines.run import RunDir

TRANSFER_PNG = "transfer.png"


@dataclass(frozen=True)
class TransferOutcome:
    summary: dict  # for mix.yaml and the stage result
    markdown: list[str]  # the report's section


def transfer_mixes(space: MixtureSpace, choice: MixChoice, sampled: int, seed: int) -> dict[str, np.ndarray]:
    mixes = {"chosen": choice.optimization.optimum.weights, "natural": space.natural}
    for index, weights in enumerate(sampled_transfer_mixtures(space, sampled, seed)):
        mixes[f"sampled-{index}"] = weights
    return mixes


def run_transfer(
    config: PipelineConfig, run: RunDir, client: Client, console: Console, inputs: ProxyInputs,
    space: MixtureSpace, choice: MixChoice, target_weights: Mapping[str, float],
) -> TransferOutcome:
    section = config.mix.transfer
    model = larger_config(inputs.model, section.parameter_factor)
    tokens = round(config.proxies.token_budget * section.token_factor)
    mixes = transfer_mixes(space, choice, section.sampled, config.run.seed)
    seed = config.proxies.seeds[0]
    specs = [ProxySpec(label, space.as_dict(weights), seed) for label, weights in mixes.items()]
    console.print(
        f"mix transfer: {len(specs)} models of {model.n_layers} layers x {model.d_model} ({section.parameter_factor:g}x "
        f"the proxy's parameters) on {tokens:,} tokens each"
    )
    swarm = proxy_swarm(client, inputs, config.proxies, model=model, token_budget=tokens)
    out = run.stage_dir("mix") / "_transfer" / "proxies.parquet"
    frame, counts = train_proxies(specs, client, run, out, swarm, ProgressLines(console, "mix transfer"))
    measured_by_label = dict(zip(frame["mixture_id"], objective_values(frame, target_weights)))
    labels = list(mixes)
    measured = np.array([measured_by_label[label] for label in labels])
    predicted = np.asarray(choice.regression.chosen_model.predict(np.vstack(list(mixes.values()))), dtype=np.float64)
    summary = {
        **transfer_summary(labels, predicted, measured),
        "model": {key: value for key, value in dataclasses.asdict(model).items() if key != "vocab_size"},
        "tokens": tokens,
        "models": swarm_counts(counts),
    }
    transfer_plot(run.stage_dir("mix") / TRANSFER_PNG, labels, predicted, measured)
    return TransferOutcome(summary, transfer_markdown(labels, predicted, measured, summary))


def transfer_markdown(labels, predicted: np.ndarray, measured: np.ndarray, summary: Mapping) -> list[str]:
    spearman = summary.get("spearman")
    lines = [
        "## Transfer to a larger model",
        "",
        f"{len(labels)} models of {summary['model']['n_layers']} layers x {summary['model']['d_model']} on "
        f"{summary['tokens']:,} tokens each. Rank correlation between the proxies' predicted objective and the "
        f"larger models' measured one: Spearman {'n/a' if spearman is None else f'{spearman:.3f}'}.",
        "",
        "| mix | predicted (proxies) | measured (larger model) |",
        "|---|---|---|",
        *(f"| {label} | {p:.4f} | {m:.4f} |" for label, p, m in zip(labels, predicted, measured)),
        "",
        f"{summary.get('verdict', '')} {summary.get('note', '')}".strip(),
        "",
        f"![transfer]({TRANSFER_PNG})",
        "",
    ]
    return lines
