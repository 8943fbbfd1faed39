"""The mixing stages: a swarm of proxy models on sampled mixtures, then the regression mixer.

``proxies`` trains one tiny transformer per sampled mixture (RegMix) on the tokenize stage's
training token files, each as one Dask task, and measures it on every target: each domain's
held-out validation slice and each evaluation text set in bits per byte, each evaluation task
(``proxies.tasks``) in bits per byte of the gold answer given the prompt, and a choice task's
rank accuracy. Every proxy's final weights are kept in the run's proxy store: when the targets
change, the stage scores the stored proxies on the new ones (no training) and trains only the
mixtures it has not trained before. ``mix`` regresses the objective (a weighted mean of the
targets' bpb) on the mixture weights, searches the optimum within the bounds and the
repetition cap, checks it with proxies trained on fresh seeds on the chosen and the natural
mix, and says whether the mix is recommended (pipelines.choose).

::

    <run>/proxies/proxies.parquet          one row per proxy: w_<domain>, bpb_<target>  (view ``proxies``)
    <run>/mix/mix.yaml                     the chosen mixture, read by ``curate export --mix``
    <run>/mix/weights.parquet              domain, {natural,chosen,top_k,min,max}_weight  (view ``mix``)
    <run>/mix/report.md, *.png             regressors, weights, objectives, validation
    <run>/mix/_validation/proxies.parquet  the validation proxies ('_': not part of the view)
    <run>/mix/_transfer/proxies.parquet    the larger models of mix.transfer, where enabled
    <run>/_cache/proxies/<key>.pt, .json   every trained proxy's weights and scores (mixes.proxy_store)

A rerun trains nothing the store already holds.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from distributed import Client
from rich.console import Console
from tokenizers.processors import TemplateProcessing

from classifiers.benchmarks import BenchmarkFileError, BenchmarkSpec, load_benchmark
from curation.atomic import atomic_path
from curation.shards import list_kept_shards
from curation.tokenize import TRAIN, VALID
from curation.tokenizer import TokenizerInfo, describe_tokenizer
from mixes.export.token_files import TokenFile, datatrove_token_dtype
from mixes.proxy_model import ProxyConfig, TargetSet
from mixes.sampling import MixtureSpace, sample_mixtures
from mixes.swarm import BPB_PREFIX, WEIGHT_PREFIX, SwarmCounts, load_proxies, make_specs
from mixes.targets import task_target
from mixes.tasks import TaskFileError, load_task, task_spec
from pipelines.choose import (
    MixChoice,
    choice_summary,
    choose_mixture,
    mix_document,
    print_verdict,
    validation_specs,
    write_choice,
)
from pipelines.config import ConfigError, EvalTextSection, MixSection, PipelineConfig, ProxiesSection, TaskSection
from pipelines.export import training_tokens
from pipelines.run import RunDir
from pipelines.tokens import parquet_list
from pipelines.proxy_runs import ProgressLines, ProxyInputs, proxy_swarm, swarm_counts, train_proxies
from pipelines.transfer import run_transfer


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


def check_target_names(config: PipelineConfig, domains: Sequence[str]) -> None:
    names = [section.name for section in [*config.proxies.eval_texts, *config.proxies.tasks]]
    clashes = sorted({name for name in names if names.count(name) > 1} | (set(names) & set(domains)))
    if clashes:
        raise ConfigError(
            f"proxies.eval_texts / proxies.tasks: the names {clashes} are repeated or name a domain's validation target"
        )


def eval_text_targets(sections: Sequence[EvalTextSection], run: RunDir, info: TokenizerInfo, console: Console) -> dict[str, TargetSet]:
    return {
        section.name: eval_text_target(section, f"proxies.eval_texts[{index}]", run, info, console)
        for index, section in enumerate(sections)
    }


def text_encoder(info: TokenizerInfo) -> Callable[[list[str]], list[list[int]]]:
    """Texts to token ids as the tokenize stage writes them, without the EOS it adds after a document."""
    tokenizer = info.load()

    def encode(texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    return encode


def task_targets(sections: Sequence[TaskSection], run: RunDir, info: TokenizerInfo, seed: int, console: Console) -> dict:
    """Each evaluation task, its examples encoded with the run's tokenizer."""
    targets, encode = {}, text_encoder(info)
    for index, section in enumerate(sections):
        key = f"proxies.tasks[{index}]"
        entry = section.model_dump(exclude_none=True)
        if section.path is not None:
            entry["path"] = section.path.replace("{run_dir}", str(run.path))
        try:
            spec = task_spec(entry)
            examples, problems = load_task(spec, seed)
            targets[spec.name] = task_target(spec, examples, encode)
        except TaskFileError as err:
            raise ConfigError(f"{key}.path: {err}") from None
        except ValueError as err:
            raise ConfigError(f"{key}: {err}") from None
        if problems:
            console.print(f"[yellow]proxies: task {spec.name!r}: {len(problems)} row(s) skipped, the first: {problems[0]}[/yellow]")
    return targets


def proxy_model(section: ProxiesSection, vocab_size: int) -> ProxyConfig:
    with config_errors("proxies.model"):
        return ProxyConfig(vocab_size=vocab_size, **section.model.model_dump())


def load_proxy_inputs(config: PipelineConfig, run: RunDir, console: Console) -> ProxyInputs:
    info = run_tokenizer(config, run)
    model = proxy_model(config.proxies, info.vocab_size)
    tokens = training_tokens(run)
    streams = training_streams(run, tokens, info.vocab_size, model.context)
    targets = domain_targets(run, info.vocab_size)
    check_target_names(config, list(targets))
    targets |= eval_text_targets(config.proxies.eval_texts, run, info, console)
    targets |= task_targets(config.proxies.tasks, run, info, config.run.seed, console)
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


def run_proxies(config: PipelineConfig, run: RunDir, client: Client, console: Console) -> dict:
    """The proxies stage: a proxy per sampled mixture and seed, trained once, scored on every target."""
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
    proxies, counts = train_proxies(specs, client, run, run.proxies_table(), proxy_swarm(client, inputs, section), progress)
    console.print(
        f"proxies: {counts.trained} trained, {counts.scored} scored from stored weights, {counts.reused} reused as they were"
    )
    trained = proxies["seconds"].to_numpy()
    return {
        "proxies": len(proxies),
        **swarm_counts(counts),
        "seconds": round(time.perf_counter() - progress.started, 3),
        "seconds_per_proxy": round(float(trained.mean()), 3),
        "tokens_per_proxy": section.token_budget,
        "target_budget": space.target_budget,
        "domains": inputs.tokens,
        "targets": {name: target_facts(target) for name, target in inputs.targets.items()},
        "out": str(run.proxies_table()),
    }


def target_facts(target) -> dict:
    if isinstance(target, TargetSet):
        return {"kind": "text", "tokens": len(target.tokens), "bytes": target.num_bytes}
    return target.facts()


# -- the mix ---------------------------------------------------------------------------------------------


def check_bounds(bounds: Mapping[str, tuple[float, float]], domains: Sequence[str]) -> None:
    for domain, (low, high) in bounds.items():
        if domain not in domains:
            raise ConfigError(f"mix.bounds.{domain}: no such domain; the domains are {sorted(domains)}")
        if not 0 <= low <= high <= 1:
            raise ConfigError(f"mix.bounds.{domain}: expected 0 <= min <= max <= 1, got ({low}, {high})")


def exportable_tokens(tokens: Mapping[str, int], sequence_length: int) -> dict[str, int]:
    """What the export can repeat of each domain: its whole sequences, less one that the rounding
    of sequences to domains may add, so a mix at the repetition cap still exports."""
    return {domain: max(0, count // sequence_length - 1) * sequence_length for domain, count in tokens.items()}


def bounded_space(config: PipelineConfig, tokens: Mapping[str, int]) -> MixtureSpace:
    """The admissible mixes: `mix.bounds` within the repetition cap, counted in exportable sequences."""
    bounds = config.mix.bounds
    check_bounds(bounds, list(tokens))
    with config_errors("mix.bounds"):
        return MixtureSpace.from_tokens(
            tokens, target_budget(config.proxies, tokens), config.proxies.max_epochs,
            min_weights={d: low for d, (low, _) in bounds.items()},
            max_weights={d: high for d, (_, high) in bounds.items()},
            repeatable_tokens=exportable_tokens(tokens, config.export.sequence_length),
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


def weights_table(space: MixtureSpace, choice: MixChoice) -> pd.DataFrame:
    chosen = choice.optimization.optimum.weights
    return pd.DataFrame({
        "domain": list(space.domains),
        "tokens": space.tokens.astype(np.int64),
        "natural_weight": space.natural,
        "chosen_weight": chosen,
        "top_k_weight": choice.optimization.top_k.weights,
        "min_weight": space.lower,
        "max_weight": space.upper,  # the bound or the repetition cap, whichever is lower
        "chosen_epochs": space.epochs(chosen),
    })


def print_mix(console: Console, space: MixtureSpace, choice: MixChoice) -> None:
    scores = ", ".join(f"{name} {score.spearman:.3f}" for name, score in choice.regression.scores.items())
    console.print(
        f"mix: regressors by CV Spearman: {scores}; chosen {choice.regression.chosen} ({choice.optimization.optimum.method})"
    )
    for domain, natural, chosen in zip(space.domains, space.natural, choice.optimization.optimum.weights):
        console.print(f"  {domain:<20} natural {natural:.4f} -> chosen {chosen:.4f}")
    chosen, natural = choice.validation["chosen"], choice.validation["natural"]
    console.print(
        f"mix: objective chosen {chosen['mean']:.4f} (predicted {chosen['predicted']:.4f}), natural "
        f"{natural['mean']:.4f} (predicted {natural['predicted']:.4f}), natural range {natural['range']:.4f}"
    )
    print_verdict(console, "mix", choice)


def run_mix(config: PipelineConfig, run: RunDir, client: Client, console: Console) -> dict:
    """The mix stage: regression over the proxies, the bounded optimum, its validation and verdict, mix.yaml."""
    started = time.perf_counter()
    space = bounded_space(config, training_tokens(run))
    check_validation_seeds(config)
    proxies = load_swarm(run, space.domains)
    target_weights = objective_weights(config.mix, bpb_targets(proxies))
    inputs = load_proxy_inputs(config, run, console)
    swarm = proxy_swarm(client, inputs, config.proxies)
    progress = ProgressLines(console, "mix validation")
    counts: list[SwarmCounts] = []

    def validate(chosen: np.ndarray) -> pd.DataFrame:
        specs = validation_specs(space, chosen, config.mix.validation_seeds)
        frame, validation_counts = train_proxies(specs, client, run, run.validation_proxies("mix"), swarm, progress)
        counts.append(validation_counts)
        return frame

    choice = choose_mixture(proxies, space, target_weights, config.mix, config.run.seed, validate)
    document = mix_document(space, choice, target_weights)
    sections: list[str] = []
    if config.mix.transfer.enabled:
        transfer = run_transfer(config, run, client, console, inputs, space, choice, target_weights)
        document["transfer"], sections = transfer.summary, transfer.markdown
    out = run.stage_dir("mix")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(run.mix_weights) as table:
        weights_table(space, choice).to_parquet(table, index=False)
    path = write_choice(out, "Mixture report", space, choice, document, run.mix_file(), sections)
    print_mix(console, space, choice)
    return {
        **choice_summary(space, choice),
        "validation_proxies": swarm_counts(counts[0]),
        **({"transfer": document["transfer"]} if "transfer" in document else {}),
        "seconds": round(time.perf_counter() - started, 3),
        "mix": str(path),
    }
