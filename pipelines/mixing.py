"""The mixing stages: a swarm of proxy models on sampled mixtures, then the regression mixer.

``proxies`` trains one tiny transformer per sampled mixture (RegMix) on the tokenize stage's
training token files, each as one Dask task, and measures it in bits per byte on every target:
each domain's held-out validation slice and each configured evaluation text set. ``mix``
regresses the objective (a weighted mean of the targets' bpb) on the mixture weights, searches
the optimum within the bounds and the repetition cap, and checks it with proxies trained on
fresh seeds on the chosen and on the natural mix.

::

    <run>/proxies/proxies.parquet          one row per proxy: w_<domain>, bpb_<target>  (view ``proxies``)
    <run>/mix/mix.yaml                     the chosen mixture, read by ``curate export --mix``
    <run>/mix/weights.parquet              domain, {natural,chosen,top_k,min,max}_weight  (view ``mix``)
    <run>/mix/report.md, *.png             regressors, weights, objectives, validation
    <run>/mix/_validation/proxies.parquet  the validation proxies ('_': not part of the view)

Both files of proxies are resumable: a rerun skips the proxies already in them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml
from distributed import Client
from rich.console import Console
from tokenizers.processors import TemplateProcessing

from classifiers.benchmarks import BenchmarkFileError, BenchmarkSpec, load_benchmark
from curation.atomic import atomic_path, write_text_atomic
from curation.shards import list_kept_shards
from curation.tokenize import TRAIN, VALID
from curation.tokenizer import TokenizerInfo, describe_tokenizer
from mixes.export.token_files import TokenFile, datatrove_token_dtype
from mixes.optimize import OptimizationResult, optimize_mixture
from mixes.proxy_model import ProxyConfig, TargetSet
from mixes.regression import RegressionResult, fit_regressors, objective_values, weights_matrix
from mixes.report import write_report
from mixes.sampling import MixtureSpace, sample_mixtures
from mixes.swarm import BPB_PREFIX, WEIGHT_PREFIX, ProxySpec, load_proxies, make_specs, run_swarm
from pipelines.config import ConfigError, EvalTextSection, MixSection, PipelineConfig, ProxiesSection
from pipelines.export import training_tokens
from pipelines.run import RunDir
from pipelines.tokens import parquet_list

VALIDATED_MIXES = ("chosen", "natural")


@contextlib.contextmanager
def config_errors(key: str) -> Iterator[None]:
    """Re-raise a library's ValueError as a ConfigError naming the config key behind it."""
    try:
        yield
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{key}: {err}") from None


# -- what the proxies train and are measured on ----------------------------------------------------


@dataclass(frozen=True)
class ProxyInputs:
    tokens: dict[str, int]  # training tokens per domain, as the tokenize shards count them
    streams: dict[str, np.ndarray]  # each domain's training documents back to back
    targets: dict[str, TargetSet]
    model: ProxyConfig


def run_tokenizer(config: PipelineConfig, run: RunDir) -> TokenizerInfo:
    path = run.tokenizer_path
    return describe_tokenizer(path, config.tokenize.tokenizer.eos_token)


def token_folder(run: RunDir, split: str, domain: str) -> Path:
    """Where the tokenize stage wrote a domain's token files of one split."""
    return run.token_dir(split, domain)


def read_token_stream(folder: Path, vocab_size: int) -> np.ndarray:
    """The documents of every rank file in `folder`, back to back (each ends with EOS).

    Only the folder's own files: the files of a domain ``a/b`` lie below those of ``a``.
    """
    files = [TokenFile(path, vocab_size) for path in sorted(folder.glob("*.ds"))]
    if not files:
        raise FileNotFoundError(f"no token files (*.ds) in {folder}: run the tokenize stage")
    return np.concatenate([token_file.tokens for token_file in files])


def training_streams(run: RunDir, tokens: Mapping[str, int], vocab_size: int, context: int) -> dict[str, np.ndarray]:
    streams = {}
    for domain, counted in tokens.items():
        stream = read_token_stream(token_folder(run, TRAIN, domain), vocab_size)
        if len(stream) != counted:
            raise ValueError(
                f"domain {domain!r}: its token files hold {len(stream):,} training tokens but the tokenize "
                f"shards count {counted:,}: the tokenize stage is incomplete or stale (rerun it with --restart)"
            )
        if len(stream) <= context:
            raise ConfigError(
                f"proxies.model.context: domain {domain!r} has {len(stream)} training tokens, "
                f"fewer than one proxy window of context + 1 = {context + 1}"
            )
        streams[domain] = stream
    return streams


def validation_bytes(run: RunDir) -> dict[str, int]:
    """UTF-8 bytes of each domain's validation documents; domains without any are left out."""
    files = list_kept_shards(run.stage_dir("tokenize"))
    query = (
        f"SELECT domain, sum(octet_length(encode(text))) AS bytes FROM read_parquet({parquet_list(files)}, "
        f"union_by_name=true) WHERE split = '{VALID}' GROUP BY 1 HAVING bytes > 0 ORDER BY 1"
    )
    return {domain: int(n) for domain, n in duckdb.connect().execute(query).fetchall()}


def domain_targets(run: RunDir, vocab_size: int) -> dict[str, TargetSet]:
    """Each domain's validation slice, named after the domain."""
    return {
        domain: TargetSet(read_token_stream(token_folder(run, VALID, domain), vocab_size), num_bytes)
        for domain, num_bytes in validation_bytes(run).items()
    }


def encode_documents(info: TokenizerInfo, texts: Sequence[str]) -> np.ndarray:
    """The texts' token ids with EOS after each, as the tokenize stage (datatrove) writes them."""
    tokenizer = info.load()
    tokenizer.post_processor = TemplateProcessing(single="$A <EOS>", special_tokens=[("<EOS>", info.eos_id)])
    ids = itertools.chain.from_iterable(encoding.ids for encoding in tokenizer.encode_batch(list(texts)))
    return np.fromiter(ids, dtype=datatrove_token_dtype(info.vocab_size))


def eval_text_target(section: EvalTextSection, key: str, run: RunDir, info: TokenizerInfo, console: Console) -> TargetSet:
    """One JSONL set: each row's named fields joined by newlines is a document."""
    path = Path(section.path.replace("{run_dir}", str(run.path)))
    try:
        benchmark = load_benchmark(BenchmarkSpec(section.name, path, tuple(section.fields)))
    except BenchmarkFileError as err:
        raise ConfigError(f"{key}.path: {err}") from None
    if benchmark.problems:
        console.print(
            f"[yellow]proxies: eval texts {section.name!r}: {len(benchmark.problems)} row(s) skipped, "
            f"the first: {benchmark.problems[0]}[/yellow]"
        )
    texts = [item.text for item in benchmark.items]
    if not texts:
        raise ConfigError(f"{key}: {path} holds no usable row")
    return TargetSet(encode_documents(info, texts), sum(len(text.encode("utf-8")) for text in texts))


def eval_text_targets(
    sections: Sequence[EvalTextSection], domains: Sequence[str], run: RunDir, info: TokenizerInfo, console: Console
) -> dict[str, TargetSet]:
    names = [section.name for section in sections]
    clashes = sorted({name for name in names if names.count(name) > 1} | (set(names) & set(domains)))
    if clashes:
        raise ConfigError(f"proxies.eval_texts: the names {clashes} are repeated or name a domain's validation target")
    return {
        section.name: eval_text_target(section, f"proxies.eval_texts[{index}]", run, info, console)
        for index, section in enumerate(sections)
    }


def proxy_model(section: ProxiesSection, vocab_size: int) -> ProxyConfig:
    with config_errors("proxies.model"):
        return ProxyConfig(vocab_size=vocab_size, **section.model.model_dump())


def load_proxy_inputs(config: PipelineConfig, run: RunDir, console: Console) -> ProxyInputs:
    info = run_tokenizer(config, run)
    model = proxy_model(config.proxies, info.vocab_size)
    tokens = training_tokens(run)
    streams = training_streams(run, tokens, info.vocab_size, model.context)
    targets = domain_targets(run, info.vocab_size)
    targets |= eval_text_targets(config.proxies.eval_texts, list(targets), run, info, console)
    return ProxyInputs(tokens, streams, targets, model)


def objective_weights(section: MixSection, targets: Sequence[str]) -> dict[str, float]:
    """`mix.target_weights`, or every target weighted equally."""
    if not section.target_weights:
        return {target: 1.0 for target in targets}
    unknown = sorted(set(section.target_weights) - set(targets))
    if unknown:
        raise ConfigError(f"mix.target_weights: unknown target(s) {unknown}; the targets are {sorted(targets)}")
    weights = section.target_weights
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"mix.target_weights: expected non-negative weights, not all zero, got {weights}")
    return dict(weights)


def target_budget(section: ProxiesSection, tokens: Mapping[str, int]) -> int:
    """The real training run's tokens, for the repetition cap: by default every training token once."""
    return section.target_budget or sum(tokens.values())


def swarm_space(section: ProxiesSection, tokens: Mapping[str, int]) -> MixtureSpace:
    """The mixtures the proxies may take: only the repetition cap at the target budget applies."""
    with config_errors("proxies.target_budget / proxies.max_epochs"):
        return MixtureSpace.from_tokens(tokens, target_budget(section, tokens), section.max_epochs)


# -- proxies as Dask tasks -----------------------------------------------------------------------------


def dask_submit(client: Client) -> Callable:
    """`submit` for run_swarm: one task per proxy, keyed by its name, never merged with another."""

    def submit(fn: Callable, spec: ProxySpec, *args):
        key = f"proxy-{spec.mixture_id}-{spec.seed}-{os.urandom(4).hex()}"
        return client.submit(fn, spec, *args, key=key, pure=False)

    return submit


class ProgressLines:
    """run_swarm's `on_result`: a console line per finished proxy, with the wall time per proxy."""

    def __init__(self, console: Console, label: str):
        self.console, self.label = console, label
        self.started = time.perf_counter()
        self.trained = 0

    def __call__(self, row: dict, done: int, total: int) -> None:
        self.trained += 1
        wall = (time.perf_counter() - self.started) / self.trained
        self.console.print(
            f"[dim]{self.label}: {done}/{total} · {row['mixture_id']} seed {row['seed']} trained in "
            f"{row['seconds']:.1f}s · {wall:.1f}s wall per proxy · ETA {wall * (total - done):,.0f}s[/dim]"
        )


def train_proxies(
    specs: Sequence[ProxySpec], client: Client, out: Path, inputs: ProxyInputs, section: ProxiesSection, progress: ProgressLines
) -> pd.DataFrame:
    """Train the specs not yet in `out`; the streams and targets go to every worker once, not per task."""
    out.parent.mkdir(parents=True, exist_ok=True)
    streams, targets = client.scatter([inputs.streams, inputs.targets], broadcast=True, hash=False)
    return run_swarm(
        specs, dask_submit(client), out, streams, targets, section.token_budget, inputs.model,
        device=section.device, on_result=progress,
    )


def run_proxies(config: PipelineConfig, run: RunDir, client: Client, console: Console) -> dict:
    """The proxies stage: train a proxy per sampled mixture and seed into ``proxies/proxies.parquet``."""
    section = config.proxies
    inputs = load_proxy_inputs(config, run, console)
    objective_weights(config.mix, list(inputs.targets))  # a typo here would only show after the training
    space = swarm_space(section, inputs.tokens)
    with config_errors("proxies.count"):
        mixtures = sample_mixtures(space, section.count, seed=config.run.seed, strength_range=section.strength_range)
    specs = make_specs(space.domains, mixtures, section.seeds)
    console.print(
        f"proxies: {len(specs)} runs ({section.count} mixtures x {len(section.seeds)} seed(s)) of "
        f"{section.token_budget:,} tokens over {len(space.domains)} domains; targets: {', '.join(inputs.targets)}"
    )
    progress = ProgressLines(console, "proxies")
    proxies = train_proxies(specs, client, run.proxies_table(), inputs, section, progress)
    return {
        "proxies": len(proxies),
        "trained": progress.trained,
        "seconds": round(time.perf_counter() - progress.started, 3),
        "seconds_per_proxy": round(float(proxies["seconds"].mean()), 3),
        "tokens_per_proxy": section.token_budget,
        "target_budget": space.target_budget,
        "domains": inputs.tokens,
        "targets": {name: {"tokens": len(t.tokens), "bytes": t.num_bytes} for name, t in inputs.targets.items()},
        "out": str(run.proxies_table()),
    }


# -- the mix ---------------------------------------------------------------------------------------------


def check_bounds(bounds: Mapping[str, tuple[float, float]], domains: Sequence[str]) -> None:
    for domain, (low, high) in bounds.items():
        if domain not in domains:
            raise ConfigError(f"mix.bounds.{domain}: no such domain; the domains are {sorted(domains)}")
        if not 0 <= low <= high <= 1:
            raise ConfigError(f"mix.bounds.{domain}: expected 0 <= min <= max <= 1, got ({low}, {high})")


def bounded_space(config: PipelineConfig, tokens: Mapping[str, int]) -> MixtureSpace:
    """The admissible mixes: `mix.bounds` within the repetition cap."""
    bounds = config.mix.bounds
    check_bounds(bounds, list(tokens))
    with config_errors("mix.bounds"):
        return MixtureSpace.from_tokens(
            tokens, target_budget(config.proxies, tokens), config.proxies.max_epochs,
            min_weights={d: low for d, (low, _) in bounds.items()},
            max_weights={d: high for d, (_, high) in bounds.items()},
        )


def check_validation_seeds(config: PipelineConfig) -> None:
    seeds = config.mix.validation_seeds
    shared = sorted(set(seeds) & set(config.proxies.seeds))
    if shared or len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"mix.validation_seeds: expected distinct seeds that the swarm does not use (proxies.seeds "
            f"{config.proxies.seeds}), got {seeds}"
        )


def load_swarm(run: RunDir, domains: Sequence[str]) -> pd.DataFrame:
    path = run.proxies_table()
    proxies = load_proxies(path)
    if proxies.empty:
        raise FileNotFoundError(f"{path}: no proxies yet: run `curate proxies` first")
    trained_on = sorted(c.removeprefix(WEIGHT_PREFIX) for c in proxies.columns if c.startswith(WEIGHT_PREFIX))
    if trained_on != sorted(domains):
        raise ValueError(
            f"{path}: the proxies were trained on the domains {trained_on}, the tokenize stage has "
            f"{sorted(domains)}: rerun `curate proxies --restart`"
        )
    return proxies


def bpb_targets(proxies: pd.DataFrame) -> list[str]:
    return [c.removeprefix(BPB_PREFIX) for c in proxies.columns if c.startswith(BPB_PREFIX)]


def mixture_objectives(
    proxies: pd.DataFrame, domains: Sequence[str], target_weights: Mapping[str, float]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per mixture: id, weights and objective averaged over its seeds.

    One row per mixture, not per run: the seeds of a mixture in different CV folds would let a
    regressor score by recognising the mixture.
    """
    runs = proxies.assign(objective=objective_values(proxies, target_weights)).groupby("mixture_id", sort=True)
    first = runs.first()
    return list(first.index), weights_matrix(first, list(domains)), runs["objective"].mean().to_numpy()


def natural_mixture_id(ids: Sequence[str], weights: np.ndarray, natural: np.ndarray) -> str | None:
    """The proxy trained on the natural mix (the swarm's first anchor, unless the cap moved it)."""
    return next((i for i, row in zip(ids, weights) if np.allclose(row, natural, atol=1e-9)), None)


def validation_specs(space: MixtureSpace, chosen: np.ndarray, seeds: Sequence[int]) -> list[ProxySpec]:
    mixes = {"chosen": space.as_dict(chosen), "natural": space.as_dict(space.natural)}
    return [ProxySpec(name, mixes[name], seed) for name in VALIDATED_MIXES for seed in seeds]


def summarize_validation(
    frame: pd.DataFrame, target_weights: Mapping[str, float], predicted: Mapping[str, float]
) -> dict:
    """Measured against predicted objective of the validation mixes, and the natural mix's spread.

    The chosen mix beats the natural one beyond the spread when its mean is lower by more than
    the range of the natural mix over the seeds (with one seed there is no spread to beat).
    """
    measured = frame.assign(objective=objective_values(frame, target_weights)).sort_values("seed")
    summary: dict = {"seeds": [int(seed) for seed in measured["seed"].unique()]}
    for name in VALIDATED_MIXES:
        values = measured.loc[measured["mixture_id"] == name, ["seed", "objective"]]
        summary[name] = {
            "predicted": float(predicted[name]),
            "measured": {int(seed): float(value) for seed, value in values.itertuples(index=False)},
            "mean": float(values["objective"].mean()),
        }
    natural = measured.loc[measured["mixture_id"] == "natural", "objective"].to_numpy()
    spread = {"std": float(np.std(natural, ddof=1)) if len(natural) > 1 else None, "range": float(np.ptp(natural))}
    improvement = summary["natural"]["mean"] - summary["chosen"]["mean"]
    summary["natural"].update(spread)
    summary["improvement"] = float(improvement)
    summary["beats_natural_beyond_spread"] = bool(improvement > spread["range"])
    return summary


def validate_mix(
    config: PipelineConfig, run: RunDir, client: Client, console: Console,
    space: MixtureSpace, optimization: OptimizationResult, target_weights: Mapping[str, float],
) -> dict:
    """Proxies on fresh seeds for the chosen and the natural mix, as Dask tasks."""
    inputs = load_proxy_inputs(config, run, console)
    specs = validation_specs(space, optimization.optimum.weights, config.mix.validation_seeds)
    out = run.validation_proxies("mix")
    frame = train_proxies(specs, client, out, inputs, config.proxies, ProgressLines(console, "mix validation"))
    predicted = {"chosen": optimization.optimum.predicted, "natural": optimization.natural_predicted}
    return summarize_validation(frame, target_weights, predicted)


def finite_or_none(value: float) -> float | None:
    """NaN (a regressor that ranks nothing) as null: the manifest is JSON."""
    return float(value) if np.isfinite(value) else None


def regressor_scores(regression: RegressionResult) -> dict[str, float | None]:
    return {name: finite_or_none(score.spearman) for name, score in regression.scores.items()}


def mix_document(space: MixtureSpace, regression: RegressionResult, optimization: OptimizationResult, validation: dict) -> dict:
    """mix.yaml: ``weights`` and ``token_budget`` are what the export reads; the rest says why.

    ``token_budget`` is the target budget the repetition cap was computed for, so an export
    without its own budget repeats no domain more than the mixer allowed.
    """
    return {
        "weights": space.as_dict(optimization.optimum.weights),
        "token_budget": space.target_budget,
        "natural_weights": space.as_dict(space.natural),
        "top_k_weights": space.as_dict(optimization.top_k.weights),
        "method": optimization.optimum.method,
        "regressor": regression.chosen,
        "cv_spearman": float(regression.scores[regression.chosen].spearman),
        "regressor_scores": regressor_scores(regression),
        "predicted_objective": optimization.optimum.predicted,
        "natural_predicted_objective": optimization.natural_predicted,
        "validation": validation,
    }


def weights_table(space: MixtureSpace, optimization: OptimizationResult) -> pd.DataFrame:
    chosen = optimization.optimum.weights
    return pd.DataFrame({
        "domain": list(space.domains),
        "tokens": space.tokens.astype(np.int64),
        "natural_weight": space.natural,
        "chosen_weight": chosen,
        "top_k_weight": optimization.top_k.weights,
        "min_weight": space.lower,
        "max_weight": space.upper,  # the bound or the repetition cap, whichever is lower
        "chosen_epochs": space.epochs(chosen),
    })


def validation_markdown(validation: dict) -> list[str]:
    chosen, natural = validation["chosen"], validation["natural"]
    lines = ["## Validation proxies (fresh seeds)", "", "| seed | chosen bpb | natural bpb |", "|---|---|---|"]
    lines += [f"| {seed} | {chosen['measured'][seed]:.4f} | {natural['measured'][seed]:.4f} |" for seed in validation["seeds"]]
    std = "n/a (one seed)" if natural["std"] is None else f"{natural['std']:.4f}"
    verdict = "more" if validation["beats_natural_beyond_spread"] else "not more"
    lines += [
        f"| mean (predicted) | {chosen['mean']:.4f} ({chosen['predicted']:.4f}) "
        f"| {natural['mean']:.4f} ({natural['predicted']:.4f}) |",
        "",
        f"The natural mix varies by std {std}, range {natural['range']:.4f} bpb over the seeds. The chosen "
        f"mix is {validation['improvement']:+.4f} bpb better on average: {verdict} than that range.",
        "",
    ]
    return lines


def write_mix_outputs(
    run: RunDir, space: MixtureSpace, regression: RegressionResult, optimization: OptimizationResult,
    mixture_ids: Sequence[str], validation: dict,
) -> Path:
    """mix.yaml, weights.parquet and the report; returns the mix.yaml path."""
    out = run.stage_dir("mix")
    out.mkdir(parents=True, exist_ok=True)
    measured = {"optimum": validation["chosen"]["mean"], "natural": validation["natural"]["mean"]}
    natural_id = natural_mixture_id(mixture_ids, regression.weights, space.natural)
    report = write_report(out, regression, optimization, space, mixture_ids, measured, natural_id)
    with report.open("a") as handle:
        handle.write("\n".join(validation_markdown(validation)))
    with atomic_path(run.mix_weights) as table:
        weights_table(space, optimization).to_parquet(table, index=False)
    document = mix_document(space, regression, optimization, validation)
    write_text_atomic(run.mix_file(), yaml.safe_dump(document, sort_keys=False))
    return run.mix_file()


def print_mix(
    console: Console, regression: RegressionResult, space: MixtureSpace, optimization: OptimizationResult, validation: dict
) -> None:
    scores = ", ".join(f"{name} {score.spearman:.3f}" for name, score in regression.scores.items())
    console.print(f"mix: regressors by CV Spearman: {scores}; chosen {regression.chosen} ({optimization.optimum.method})")
    for domain, natural, chosen in zip(space.domains, space.natural, optimization.optimum.weights):
        console.print(f"  {domain:<20} natural {natural:.4f} -> chosen {chosen:.4f}")
    chosen, natural = validation["chosen"], validation["natural"]
    console.print(
        f"mix: objective chosen {chosen['mean']:.4f} (predicted {chosen['predicted']:.4f}), natural "
        f"{natural['mean']:.4f} (predicted {natural['predicted']:.4f}), natural range {natural['range']:.4f}; "
        f"{'beats' if validation['beats_natural_beyond_spread'] else 'does not beat'} natural beyond the spread"
    )


def run_mix(config: PipelineConfig, run: RunDir, client: Client, console: Console) -> dict:
    """The mix stage: regression over the proxies, the bounded optimum, its validation, mix.yaml."""
    space = bounded_space(config, training_tokens(run))
    check_validation_seeds(config)
    proxies = load_swarm(run, space.domains)
    target_weights = objective_weights(config.mix, bpb_targets(proxies))
    mixture_ids, weights, objective = mixture_objectives(proxies, space.domains, target_weights)
    with config_errors("mix.folds"):
        regression = fit_regressors(weights, objective, list(space.domains), n_folds=config.mix.folds, seed=config.run.seed)
    section = config.mix
    optimization = optimize_mixture(
        regression.chosen_model.predict, space, regression.chosen_is_smooth, kl_weight=section.kl_weight,
        n_candidates=section.candidates, top_k=section.top_k, seed=config.run.seed,
    )
    validation = validate_mix(config, run, client, console, space, optimization, target_weights)
    path = write_mix_outputs(run, space, regression, optimization, mixture_ids, validation)
    print_mix(console, regression, space, optimization, validation)
    return {
        "regressor": regression.chosen,
        "cv_spearman": finite_or_none(regression.scores[regression.chosen].spearman),
        "regressor_scores": regressor_scores(regression),
        "method": optimization.optimum.method,
        "weights": space.as_dict(optimization.optimum.weights),
        "top_k_weights": space.as_dict(optimization.top_k.weights),
        "natural_weights": space.as_dict(space.natural),
        "predicted_objective": optimization.optimum.predicted,
        "measured_objective": validation["chosen"]["mean"],
        "natural_predicted_objective": optimization.natural_predicted,
        "natural_measured_objective": validation["natural"]["mean"],
        "natural_spread": {"std": validation["natural"]["std"], "range": validation["natural"]["range"]},
        "beats_natural_beyond_spread": validation["beats_natural_beyond_spread"],
        "mix": str(path),
    }
