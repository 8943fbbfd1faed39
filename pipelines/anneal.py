"""The anneal stage: a mid-training mix over (domain, quality bucket) units, next to the pre-training mix.

A base proxy is trained on the pre-training mix (``<run>/mix/mix.yaml``, or the natural mix when
there is none) for ``proxies.token_budget`` tokens. Each sampled unit mixture then continues it
(parameters and AdamW state) for ``anneal.token_budget`` tokens with the learning rate falling
linearly to 0, one Dask task per anneal proxy, measured on the proxies' targets in bits per byte.
The regression, the bounded optimum and its validation (the chosen against the natural unit mix,
on fresh seeds) follow the mix stage.

::

    <run>/anneal/proxies.parquet              one row per anneal proxy: w_<unit>, bpb_<target>, anneal_id
    <run>/anneal/mix.yaml                     phase: anneal, weights over units (``wiki/q2``), token_budget
    <run>/anneal/report.md, *.png             regressors, weights, objectives, validation
    <run>/anneal/_base/state.pt               the base proxy (reused by a rerun with the same base)
    <run>/anneal/_tokens/<unit>/00000.ds      token files of the units the chosen mix uses (``wiki-q2``)
    <run>/anneal/_validation/proxies.parquet  the validation anneal proxies

Both files of proxies are resumable: a rerun skips the proxies already in them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import yaml
from distributed import Client
from rich.console import Console

from curation.atomic import write_text_atomic
from mixes.anneal import (
    UNSCORED,
    QualityBuckets,
    UnitStreams,
    build_unit_streams,
    fingerprint,
    load_state,
    run_anneal_swarm,
    save_state,
    write_unit_token_files,
)
from mixes.optimize import OptimizationResult, optimize_mixture
from mixes.proxy_model import ProxyState, train_proxy_state
from mixes.regression import RegressionResult, fit_regressors, objective_values
from mixes.report import write_report
from mixes.sampling import MixtureSpace, sample_mixtures
from mixes.swarm import BPB_PREFIX, ProxySpec, make_specs
from pipelines.config import AnnealSection, ConfigError, MixSection, PipelineConfig
from pipelines.export import read_mix
from pipelines.mixing import (
    ProgressLines,
    ProxyInputs,
    config_errors,
    dask_submit,
    finite_or_none,
    load_proxy_inputs,
    mix_document,
    mixture_objectives,
    natural_mixture_id,
    regressor_scores,
    summarize_validation,
    validation_markdown,
    validation_specs,
)
from pipelines.run import RunDir

STAGE = "anneal"
DEFAULT_TARGET_FRACTION = 0.1  # the real anneal, by default: a tenth of the pre-training budget


def anneal_section(config: PipelineConfig, section: AnnealSection | None = None) -> AnnealSection:
    """The given section, else ``config.anneal``."""
    return section if section is not None else config.anneal


def check_seeds(section: AnnealSection) -> None:
    seeds, validation = section.seeds, section.validation_seeds
    if len(set(seeds)) != len(seeds) or len(set(validation)) != len(validation) or set(seeds) & set(validation):
        raise ConfigError(
            f"anneal.validation_seeds: expected distinct seeds that anneal.seeds {seeds} does not use, got {validation}"
        )


def anneal_target_weights(section: AnnealSection, mix: MixSection, targets: Sequence[str]) -> dict[str, float]:
    """`anneal.target_weights`, else `mix.target_weights`, else every target weighted equally."""
    key, weights = ("anneal.target_weights", section.target_weights) if section.target_weights else ("mix.target_weights", mix.target_weights)
    if not weights:
        return {target: 1.0 for target in targets}
    unknown = sorted(set(weights) - set(targets))
    if unknown:
        raise ConfigError(f"{key}: unknown target(s) {unknown}; the targets are {sorted(targets)}")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"{key}: expected non-negative weights, not all zero, got {weights}")
    return dict(weights)


# -- the units --------------------------------------------------------------------------------------


def load_units(section: AnnealSection, run: RunDir, inputs: ProxyInputs, console: Console) -> tuple[UnitStreams, dict[str, int]]:
    """The units with at least one proxy window of tokens, and the tokens of those too small."""
    with config_errors("anneal.quality_edges"):
        buckets = QualityBuckets(tuple(section.quality_edges))
    units = build_unit_streams(run.stage_dir("tokenize"), run.token_root, list(inputs.tokens), buckets, inputs.model.vocab_size)
    per_domain = {domain: 0 for domain in inputs.tokens}
    for unit in units.units.values():
        per_domain[unit.domain] = per_domain.get(unit.domain, 0) + unit.tokens
    if per_domain != inputs.tokens:
        raise ValueError(
            f"the units hold {per_domain} training tokens per domain, the tokenize shards count "
            f"{inputs.tokens}: the tokenize stage is incomplete or stale (rerun it with --restart)"
        )
    kept, dropped = units.without_smaller_than(inputs.model.context + 1)
    if dropped:
        console.print(
            f"[yellow]anneal: left out {len(dropped)} unit(s) with fewer than one proxy window "
            f"({inputs.model.context + 1} tokens): {dropped}[/yellow]"
        )
    if not kept.units:
        raise ConfigError("anneal.quality_edges: no unit has a proxy window of training tokens")
    return kept, dropped


def pretraining_mix(run: RunDir, tokens: Mapping[str, int]) -> tuple[dict[str, float], int | None, str]:
    """The pre-training mix the base proxy trains on: mix.yaml's weights, or the natural mix.

    Returns the weights over the domains, the mix's token budget (None for the natural mix) and
    where the weights came from.
    """
    path = run.mix_file("mix")
    if not path.exists():
        return {d: float(t) for d, t in tokens.items()}, None, "natural"
    mix = read_mix(str(path))
    unknown = sorted(set(mix["weights"]) - set(tokens))
    if unknown:
        raise ConfigError(
            f"{path}: weights name domains the tokenize stage does not have: {unknown} (rerun `curate mix --restart`)"
        )
    weights = {d: float(mix["weights"].get(d, 0.0)) for d in tokens}
    budget = mix.get("token_budget")
    return weights, int(budget) if budget else None, str(path)


def anneal_budget(section: AnnealSection, pretraining_budget: int | None, tokens: Mapping[str, int]) -> int:
    """The real anneal's tokens: configured, else a tenth of the pre-training budget (or of all tokens)."""
    if section.target_budget:
        return section.target_budget
    return max(1, round(DEFAULT_TARGET_FRACTION * (pretraining_budget or sum(tokens.values()))))


def check_bounds(bounds: Mapping[str, tuple[float, float]], units: Sequence[str], dropped: Mapping[str, int]) -> None:
    for unit, (low, high) in bounds.items():
        if unit not in units:
            why = "it has fewer tokens than one proxy window" if unit in dropped else f"the units are {list(units)}"
            raise ConfigError(f"anneal.bounds.{unit}: no such unit ({why})")
        if not 0 <= low <= high <= 1:
            raise ConfigError(f"anneal.bounds.{unit}: expected 0 <= min <= max <= 1, got ({low}, {high})")


def unit_spaces(section: AnnealSection, units: Mapping[str, int], budget: int) -> tuple[MixtureSpace, MixtureSpace]:
    """The space the anneal proxies sample (the cap only) and the admissible one (bounds within the cap)."""
    with config_errors("anneal.target_budget / anneal.max_epochs"):
        swarm = MixtureSpace.from_tokens(units, budget, section.max_epochs)
    with config_errors("anneal.bounds"):
        bounded = MixtureSpace.from_tokens(
            units, budget, section.max_epochs,
            min_weights={u: low for u, (low, _) in section.bounds.items()},
            max_weights={u: high for u, (_, high) in section.bounds.items()},
        )
    return swarm, bounded


# -- the base model ---------------------------------------------------------------------------------


def base_identity(config: PipelineConfig, inputs: ProxyInputs, weights: Mapping[str, float], seed: int) -> dict:
    """What the base proxy depends on: a change in any of it makes another base."""
    return {
        "weights": {d: round(float(w), 12) for d, w in weights.items()},
        "token_budget": config.proxies.token_budget,
        "seed": seed,
        "model": dataclasses.asdict(inputs.model),
        "domains": dict(inputs.tokens),
        "device": config.proxies.device,
        "targets": {name: [len(t.tokens), t.num_bytes] for name, t in inputs.targets.items()},
    }


def base_state(
    config: PipelineConfig, run: RunDir, client: Client, console: Console, inputs: ProxyInputs,
    weights: Mapping[str, float], target_weights: Mapping[str, float],
) -> tuple[ProxyState, dict, bool]:
    """The base proxy's state and facts: the saved one for this base, else trained as one Dask task."""
    seed = config.run.seed
    base_id = fingerprint(base_identity(config, inputs, weights, seed))
    path = run.anneal_base_state
    saved = load_state(path, base_id)
    if saved is not None:
        return saved[0], with_objective(saved[1], target_weights), False
    console.print(f"anneal: base proxy on the pre-training mix, {config.proxies.token_budget:,} tokens")
    streams, targets = client.scatter([inputs.streams, inputs.targets], broadcast=True, hash=False)
    future = client.submit(
        train_proxy_state, streams, dict(weights), targets, config.proxies.token_budget, inputs.model, seed,
        config.proxies.device, key=f"anneal-base-{os.urandom(4).hex()}", pure=False,
    )
    result, state = future.result()
    meta = {
        "base_id": base_id,
        "weights": result.weights,
        "tokens": result.tokens_trained,
        "seed": result.seed,
        "bpb": result.bpb,
        "final_learning_rate": state.learning_rate,
    }
    save_state(state, path, meta)
    return state, with_objective(meta, target_weights), True


def with_objective(meta: Mapping, target_weights: Mapping[str, float]) -> dict:
    """The base's facts with its objective under the current target weights."""
    row = pd.DataFrame([{f"{BPB_PREFIX}{t}": v for t, v in meta["bpb"].items()}])
    return {**meta, "objective": float(objective_values(row, target_weights)[0])}


# -- anneal proxies -----------------------------------------------------------------------------------


def anneal_identity(base_id: str, section: AnnealSection, units: UnitStreams, inputs: ProxyInputs) -> str:
    """The anneal proxies' fingerprint: the base, the units and the targets they are measured on."""
    return fingerprint({
        "base": base_id,
        "units": units.tokens,
        "quality_edges": section.quality_edges,
        "learning_rate": section.learning_rate,
        "targets": {name: [len(t.tokens), t.num_bytes] for name, t in inputs.targets.items()},
    })


class AnnealTrainer:
    """Trains anneal proxies as Dask tasks; the unit streams, targets and base state are scattered once."""

    def __init__(self, client: Client, section: AnnealSection, inputs: ProxyInputs, units: UnitStreams,
                 base: ProxyState, anneal_id: str, device: str):
        self.client, self.section, self.inputs, self.anneal_id, self.device = client, section, inputs, anneal_id, device
        self.streams, self.targets, self.base = client.scatter(
            [units.streams, inputs.targets, base], broadcast=True, hash=False
        )

    def train(self, specs: Sequence[ProxySpec], out: Path, progress: ProgressLines) -> pd.DataFrame:
        out.parent.mkdir(parents=True, exist_ok=True)
        return run_anneal_swarm(
            specs, dask_submit(self.client), out, self.streams, self.targets, self.section.token_budget,
            self.inputs.model, self.base, self.anneal_id, self.section.learning_rate, self.device, on_result=progress,
        )


def default_count(section: AnnealSection, space: MixtureSpace) -> int:
    return section.count if section.count is not None else 2 * (space.k + 1)


# -- outputs ----------------------------------------------------------------------------------------------


def unit_table(units: UnitStreams, space: MixtureSpace, optimization: OptimizationResult, buckets: QualityBuckets) -> dict:
    table = {}
    chosen, epochs = optimization.optimum.weights, space.epochs(optimization.optimum.weights)
    for i, name in enumerate(space.domains):
        unit = units.units[name]
        low, high = buckets.score_range(unit.bucket)
        table[name] = {
            "domain": unit.domain,
            "bucket": unit.bucket,
            "quality_range": None if unit.bucket == UNSCORED else [low, high],
            "tokens": unit.tokens,
            "documents": unit.documents,
            "natural_weight": float(space.natural[i]),
            "chosen_weight": float(chosen[i]),
            "min_weight": float(space.lower[i]),
            "max_weight": float(space.upper[i]),
            "chosen_epochs": float(epochs[i]),
        }
    return table


def anneal_document(
    space: MixtureSpace, regression: RegressionResult, optimization: OptimizationResult, validation: dict,
    section: AnnealSection, units: UnitStreams, dropped: Mapping[str, int], base: dict,
    target_weights: Mapping[str, float],
) -> dict:
    """mix.yaml of the anneal: the mix stage's document, with ``phase: anneal`` and the units."""
    buckets = QualityBuckets(tuple(section.quality_edges))
    return {
        "phase": "anneal",
        **mix_document(space, regression, optimization, validation),
        "proxy_token_budget": section.token_budget,
        "quality_edges": list(section.quality_edges),
        "target_weights": dict(target_weights),
        "units": unit_table(units, space, optimization, buckets),
        "dropped_units": dict(dropped),
        "base": base,
    }


def base_markdown(base: dict, validation: dict) -> list[str]:
    natural = validation["natural"]["mean"]
    return [
        "## Base proxy",
        "",
        f"Trained on the pre-training mix ({base['source']}) for {base['tokens']:,} tokens: objective "
        f"{base['objective']:.4f} bpb before any anneal. Annealed on the natural unit mix it reaches "
        f"{natural:.4f} bpb on the validation seeds; on the chosen mix {validation['chosen']['mean']:.4f} bpb.",
        "",
    ]


def write_anneal_outputs(
    run: RunDir, space: MixtureSpace, regression: RegressionResult, optimization: OptimizationResult,
    mixture_ids: Sequence[str], validation: dict, document: dict,
) -> Path:
    """mix.yaml and the report (with the validation and base sections); returns the mix.yaml path."""
    out = run.stage_dir(STAGE)
    out.mkdir(parents=True, exist_ok=True)
    measured = {"optimum": validation["chosen"]["mean"], "natural": validation["natural"]["mean"]}
    natural_id = natural_mixture_id(mixture_ids, regression.weights, space.natural)
    report = write_report(out, regression, optimization, space, mixture_ids, measured, natural_id)
    text = report.read_text().replace("# Mixture report", "# Anneal mixture report (units: domain/quality bucket)", 1)
    extra = validation_markdown(validation) + base_markdown(document["base"], validation)
    report.write_text(text + "\n".join(extra))
    write_text_atomic(run.mix_file(STAGE), yaml.safe_dump(document, sort_keys=False))
    return run.mix_file(STAGE)


def unit_token_dirs(run: RunDir, units: UnitStreams, weights: Mapping[str, float], vocab_size: int) -> dict[str, str]:
    """Token files of the units with a positive weight, for the export; folders relative to the run."""
    root = run.anneal_unit_tokens
    shutil.rmtree(root, ignore_errors=True)  # units a previous choice used
    used = [unit for unit, weight in weights.items() if weight > 0]
    folders = write_unit_token_files(units, used, root, vocab_size)
    return {unit: str(folder.relative_to(run.path)) for unit, folder in folders.items()}


# -- the job -------------------------------------------------------------------------------------------------


def run_anneal(
    config: PipelineConfig, run: RunDir, client: Client, console: Console, section: AnnealSection | None = None
) -> dict:
    """The anneal stage: base proxy, anneal proxies over the units, regression, optimum, validation, mix.yaml."""
    section = anneal_section(config, section)
    if not section.enabled:
        return {"skipped": "anneal.enabled is false"}
    started = time.perf_counter()
    check_seeds(section)
    inputs = load_proxy_inputs(config, run, console)
    target_weights = anneal_target_weights(section, config.mix, list(inputs.targets))
    units, dropped = load_units(section, run, inputs, console)
    check_bounds(section.bounds, list(units.units), dropped)
    pre_weights, pre_budget, source = pretraining_mix(run, inputs.tokens)
    space, bounded = unit_spaces(section, units.tokens, anneal_budget(section, pre_budget, inputs.tokens))
    count = default_count(section, space)
    with config_errors("anneal.count"):
        mixtures = sample_mixtures(space, count, seed=config.run.seed, strength_range=config.proxies.strength_range)
    if count < config.mix.folds:
        raise ConfigError(f"anneal.count: {count} mixtures are fewer than mix.folds = {config.mix.folds}")

    base, meta, base_trained = base_state(config, run, client, console, inputs, pre_weights, target_weights)
    base_facts = {**meta, "source": source, "trained_now": base_trained}
    anneal_id = anneal_identity(meta["base_id"], section, units, inputs)
    trainer = AnnealTrainer(client, section, inputs, units, base, anneal_id, config.proxies.device)
    specs = make_specs(space.domains, mixtures, section.seeds)
    console.print(
        f"anneal: {len(specs)} runs ({count} mixtures x {len(section.seeds)} seed(s)) of {section.token_budget:,} "
        f"tokens over {space.k} units, from the base proxy ({source}); targets: {', '.join(inputs.targets)}"
    )
    progress = ProgressLines(console, "anneal")
    proxies = trainer.train(specs, run.proxies_table(STAGE), progress)

    mixture_ids, weights, objective = mixture_objectives(proxies, space.domains, target_weights)
    with config_errors("mix.folds"):
        regression = fit_regressors(weights, objective, list(space.domains), n_folds=config.mix.folds, seed=config.run.seed)
    optimization = optimize_mixture(
        regression.chosen_model.predict, bounded, regression.chosen_is_smooth, kl_weight=config.mix.kl_weight,
        n_candidates=config.mix.candidates, top_k=config.mix.top_k, seed=config.run.seed,
    )
    validation_progress = ProgressLines(console, "anneal validation")
    frame = trainer.train(
        validation_specs(bounded, optimization.optimum.weights, section.validation_seeds),
        run.validation_proxies(STAGE), validation_progress,
    )
    predicted = {"chosen": optimization.optimum.predicted, "natural": optimization.natural_predicted}
    validation = summarize_validation(frame, target_weights, predicted)
    document = anneal_document(bounded, regression, optimization, validation, section, units, dropped, base_facts, target_weights)
    document["token_dirs"] = unit_token_dirs(run, units, bounded.as_dict(optimization.optimum.weights), inputs.model.vocab_size)
    path = write_anneal_outputs(run, bounded, regression, optimization, mixture_ids, validation, document)
    print_anneal(console, bounded, optimization, validation, base_facts)
    return {
        "phase": "anneal",
        "units": units.tokens,
        "dropped_units": dict(dropped),
        "base": {k: base_facts[k] for k in ("base_id", "source", "tokens", "objective", "trained_now")},
        "proxies": len(proxies),
        "trained": progress.trained,
        "validation_trained": validation_progress.trained,
        "seconds": round(time.perf_counter() - started, 3),
        "tokens_per_proxy": section.token_budget,
        "target_budget": bounded.target_budget,
        "regressor": regression.chosen,
        "cv_spearman": finite_or_none(regression.scores[regression.chosen].spearman),
        "regressor_scores": regressor_scores(regression),
        "method": optimization.optimum.method,
        "weights": bounded.as_dict(optimization.optimum.weights),
        "natural_weights": bounded.as_dict(bounded.natural),
        "predicted_objective": optimization.optimum.predicted,
        "measured_objective": validation["chosen"]["mean"],
        "natural_measured_objective": validation["natural"]["mean"],
        "beats_natural_beyond_spread": validation["beats_natural_beyond_spread"],
        "token_dirs": document["token_dirs"],
        "mix": str(path),
    }


def print_anneal(console: Console, space: MixtureSpace, optimization: OptimizationResult, validation: dict, base: dict) -> None:
    for unit, natural, chosen in zip(space.domains, space.natural, optimization.optimum.weights):
        console.print(f"  {unit:<24} natural {natural:.4f} -> chosen {chosen:.4f}")
    chosen, natural = validation["chosen"], validation["natural"]
    console.print(
        f"anneal: objective base {base['objective']:.4f}, after the anneal chosen {chosen['mean']:.4f} "
        f"(predicted {chosen['predicted']:.4f}), natural {natural['mean']:.4f}; "
        f"{'beats' if validation['beats_natural_beyond_spread'] else 'does not beat'} natural beyond the spread"
    )
