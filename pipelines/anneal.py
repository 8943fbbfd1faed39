"""The anneal stage: a mid-training mix over (domain, quality bucket) units, next to the pre-training mix.

A base proxy is trained on the pre-training mix (``<run>/mix/mix.yaml``, or the natural mix when
there is none) for ``proxies.token_budget`` tokens. Each sampled unit mixture then continues it
(parameters and AdamW state) for ``anneal.token_budget`` tokens with the learning rate falling
linearly to 0, one Dask task per anneal proxy, measured on the proxies' targets in bits per byte.
The regression, the bounded optimum, its validation (the chosen against the natural unit mix,
on fresh seeds) and the verdict are the mix stage's (pipelines.choose).

::

    <run>/anneal/proxies.parquet              one row per anneal proxy: w_<unit>, bpb_<target>
    <run>/anneal/mix.yaml                     phase: anneal, weights over units (``wiki/q2``), token_budget
    <run>/anneal/report.md, *.png             regressors, weights, objectives, validation
    <run>/_cache/proxies/anneal_base.pt        the base proxy (reused by a rerun with the same base)
    <run>/anneal/_tokens/<unit>/00000.ds      token files of the units the chosen mix uses (``wiki-q2``)
    <run>/anneal/_validation/proxies.parquet  the validation anneal proxies

Anneal proxies are kept in the run's proxy store (mixes.proxy_store) under their base's id: a
rerun trains only what the store lacks and scores stored proxies on new targets.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from distributed import Client
from rich.console import Console

from mixes.anneal import (
    UNSCORED,
    QualityBuckets,
    UnitStreams,
    build_unit_streams,
    load_state,
    run_anneal_spec,
    save_state,
    write_unit_token_files,
)
from mixes.proxy_model import ProxyState, evaluate_model_state, resolve_device, train_proxy_state
from curation.digests import stable_hash
from mixes.regression import objective_values
from mixes.sampling import MixtureSpace, sample_mixtures
from mixes.swarm import BPB_PREFIX, Swarm, make_specs
from pipelines.choose import MixChoice, choice_summary, choose_mixture, mix_document, print_verdict, validation_specs, write_choice
from pipelines.config import AnnealSection, ConfigError, MixSection, PipelineConfig
from pipelines.export import read_mix
from pipelines.mixing import config_errors, exportable_tokens, load_proxy_inputs
from pipelines.proxy_runs import ProgressLines, ProxyInputs, swarm_counts, train_proxies
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


def unit_spaces(
    section: AnnealSection, units: Mapping[str, int], budget: int, sequence_length: int
) -> tuple[MixtureSpace, MixtureSpace]:
    """The space the anneal proxies sample (the cap only) and the admissible one (bounds within the
    cap, counted in exportable sequences)."""
    with config_errors("anneal.target_budget / anneal.max_epochs"):
        swarm = MixtureSpace.from_tokens(units, budget, section.max_epochs)
    with config_errors("anneal.bounds"):
        bounded = MixtureSpace.from_tokens(
            units, budget, section.max_epochs,
            min_weights={u: low for u, (low, _) in section.bounds.items()},
            max_weights={u: high for u, (_, high) in section.bounds.items()},
            repeatable_tokens=exportable_tokens(units, sequence_length),
        )
    return swarm, bounded


# -- the base model ---------------------------------------------------------------------------------


def base_identity(config: PipelineConfig, inputs: ProxyInputs, weights: Mapping[str, float], seed: int) -> dict:
    """What the base proxy's weights depend on: a change in any of it makes another base."""
    return {
        "weights": {d: round(float(w), 12) for d, w in weights.items()},
        "token_budget": config.proxies.token_budget,
        "seed": seed,
        "model": dataclasses.asdict(inputs.model),
        "streams": inputs.stream_ids,
        "device": resolve_device(config.proxies.device).type,
    }


def base_state(
    config: PipelineConfig, run: RunDir, client: Client, console: Console, inputs: ProxyInputs,
    weights: Mapping[str, float], target_weights: Mapping[str, float],
) -> tuple[ProxyState, dict, bool]:
    """The base proxy's state and facts: the saved one for this base (scored on any new target), else trained."""
    seed, device = config.run.seed, config.proxies.device
    base_id = stable_hash(base_identity(config, inputs, weights, seed))
    path, ids = run.anneal_base_state, inputs.target_ids
    saved = load_state(path, base_id)
    if saved is None:
        console.print(f"anneal: base proxy on the pre-training mix, {config.proxies.token_budget:,} tokens")
        streams, targets = client.scatter([inputs.streams, inputs.targets], broadcast=True, hash=False)
        future = client.submit(
            train_proxy_state, streams, dict(weights), targets, config.proxies.token_budget, inputs.model, seed,
            device, key=f"anneal-base-{os.urandom(4).hex()}", pure=False,
        )
        result, state = future.result()
        meta = {
            "base_id": base_id, "weights": result.weights, "tokens": result.tokens_trained, "seed": result.seed,
            "final_learning_rate": state.learning_rate,
            "scores": {ids[name]: metrics for name, metrics in result.scores.items()},
        }
        save_state(state, path, meta)
    else:
        state, meta = saved
    missing = {name: target for name, target in inputs.targets.items() if ids[name] not in meta["scores"]}
    if missing:
        future = client.submit(evaluate_model_state, state.model, missing, inputs.model, device,
                               key=f"anneal-base-score-{os.urandom(4).hex()}", pure=False)
        meta = {**meta, "scores": {**meta["scores"], **{ids[name]: m for name, m in future.result().items()}}}
        save_state(state, path, meta)
    bpb = {name: meta["scores"][tid]["bpb"] for name, tid in ids.items()}
    facts = {key: value for key, value in meta.items() if key != "scores"} | {"bpb": bpb}
    return state, with_objective(facts, target_weights), saved is None


def with_objective(meta: Mapping, target_weights: Mapping[str, float]) -> dict:
    """The base's facts with its objective under the current target weights."""
    row = pd.DataFrame([{f"{BPB_PREFIX}{t}": v for t, v in meta["bpb"].items()}])
    return {**meta, "objective": float(objective_values(row, target_weights)[0])}


# -- anneal proxies -----------------------------------------------------------------------------------


def anneal_swarm(client: Client, section: AnnealSection, inputs: ProxyInputs, units: UnitStreams,
                 base: ProxyState, base_id: str, device: str) -> Swarm:
    """Anneal proxies continuing `base`; the unit streams, targets and base state are scattered once."""
    streams, targets, scattered_base = client.scatter([units.streams, inputs.targets, base], broadcast=True, hash=False)
    basis = {
        "kind": "anneal",
        "base": base_id,
        "units": units.tokens,
        "quality_edges": section.quality_edges,
        "learning_rate": section.learning_rate,
        "token_budget": section.token_budget,
        "model": dataclasses.asdict(inputs.model),
        "device": resolve_device(device).type,
    }
    return Swarm(
        train=run_anneal_spec,
        train_args=(streams, targets, section.token_budget, inputs.model, scattered_base, section.learning_rate, device),
        basis=basis, targets=targets, target_ids=inputs.target_ids, config=inputs.model, device=device,
    )


def default_count(section: AnnealSection, space: MixtureSpace) -> int:
    return section.count if section.count is not None else 2 * (space.k + 1)


# -- outputs ----------------------------------------------------------------------------------------------


def unit_table(units: UnitStreams, space: MixtureSpace, chosen: np.ndarray, buckets: QualityBuckets) -> dict:
    table = {}
    epochs = space.epochs(chosen)
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
    space: MixtureSpace, choice: MixChoice, section: AnnealSection, units: UnitStreams, dropped: Mapping[str, int],
    base: dict, target_weights: Mapping[str, float],
) -> dict:
    """mix.yaml of the anneal: the mix stage's document, with ``phase: anneal`` and the units."""
    buckets = QualityBuckets(tuple(section.quality_edges))
    return {
        "phase": "anneal",
        **mix_document(space, choice, target_weights),
        "proxy_token_budget": section.token_budget,
        "quality_edges": list(section.quality_edges),
        "units": unit_table(units, space, choice.optimization.optimum.weights, buckets),
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
    """The anneal stage: base proxy, anneal proxies over the units, then the mix stage's choice, mix.yaml."""
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
    budget = anneal_budget(section, pre_budget, inputs.tokens)
    space, bounded = unit_spaces(section, units.tokens, budget, config.export.sequence_length)
    count = default_count(section, space)
    with config_errors("anneal.count"):
        mixtures = sample_mixtures(space, count, seed=config.run.seed, strength_range=config.proxies.strength_range)
    if count < config.mix.folds:
        raise ConfigError(f"anneal.count: {count} mixtures are fewer than mix.folds = {config.mix.folds}")

    base, meta, base_trained = base_state(config, run, client, console, inputs, pre_weights, target_weights)
    base_facts = {**meta, "source": source, "trained_now": base_trained}
    swarm = anneal_swarm(client, section, inputs, units, base, meta["base_id"], config.proxies.device)
    specs = make_specs(space.domains, mixtures, section.seeds)
    console.print(
        f"anneal: {len(specs)} runs ({count} mixtures x {len(section.seeds)} seed(s)) of {section.token_budget:,} "
        f"tokens over {space.k} units, from the base proxy ({source}); targets: {', '.join(inputs.targets)}"
    )
    progress = ProgressLines(console, "anneal")
    proxies, counts = train_proxies(specs, client, run, run.proxies_table(STAGE), swarm, progress)
    validation_progress = ProgressLines(console, "anneal validation")
    validated = []

    def validate(chosen: np.ndarray) -> pd.DataFrame:
        specs = validation_specs(bounded, chosen, section.validation_seeds)
        frame, validation_counts = train_proxies(specs, client, run, run.validation_proxies(STAGE), swarm, validation_progress)
        validated.append(validation_counts)
        return frame

    choice = choose_mixture(proxies, bounded, target_weights, config.mix, config.run.seed, validate)
    document = anneal_document(bounded, choice, section, units, dropped, base_facts, target_weights)
    weights = bounded.as_dict(choice.optimization.optimum.weights)
    document["token_dirs"] = unit_token_dirs(run, units, weights, inputs.model.vocab_size)
    out = run.stage_dir(STAGE)
    out.mkdir(parents=True, exist_ok=True)
    title = "Anneal mixture report (units: domain/quality bucket)"
    path = write_choice(out, title, bounded, choice, document, run.mix_file(STAGE), base_markdown(base_facts, choice.validation))
    print_anneal(console, bounded, choice, base_facts)
    return {
        "phase": "anneal",
        "units": units.tokens,
        "dropped_units": dict(dropped),
        "base": {k: base_facts[k] for k in ("base_id", "source", "tokens", "objective", "trained_now")},
        "proxies": len(proxies),
        **swarm_counts(counts),
        "validation_proxies": swarm_counts(validated[0]),
        "seconds": round(time.perf_counter() - started, 3),
        "tokens_per_proxy": section.token_budget,
        "target_budget": bounded.target_budget,
        **choice_summary(bounded, choice),
        "token_dirs": document["token_dirs"],
        "mix": str(path),
    }


def print_anneal(console: Console, space: MixtureSpace, choice: MixChoice, base: dict) -> None:
    for unit, natural, chosen in zip(space.domains, space.natural, choice.optimization.optimum.weights):
        console.print(f"  {unit:<24} natural {natural:.4f} -> chosen {chosen:.4f}")
    chosen, natural = choice.validation["chosen"], choice.validation["natural"]
    console.print(
        f"anneal: objective base {base['objective']:.4f}, after the anneal chosen {chosen['mean']:.4f} "
        f"(predicted {chosen['predicted']:.4f}), natural {natural['mean']:.4f}"
    )
    print_verdict(console, "anneal", choice)
