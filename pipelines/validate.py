"""`curate validate`: what can be checked without running a stage.

The schema (pipelines.config) checks types and ranges; this checks what the config refers to:
files exist and hold what the config says (benchmark fields, a tokenizer's EOS token), mixing
bounds are feasible, SQL parses. A problem raises ``ConfigError`` naming the key; a file that an
earlier stage will make (under ``{run_dir}``) and that is not there yet is a note, not an error.
"""

from collections.abc import Mapping
from pathlib import Path

import duckdb

from classifiers.benchmarks import BenchmarkFileError, BenchmarkSpec, load_benchmark, require_items
from curation.tokenizer import describe_tokenizer
from pipelines.classify import check_classifier_params
from pipelines.config import ConfigError, PipelineConfig, task_file
from pipelines.run import RunDir
from pipelines.stages import in_run, listing, source_key


def check_config(config: PipelineConfig) -> list[str]:
    """Raises ConfigError for the first problem found; returns notes about files not made yet."""
    run = RunDir(config.run_dir)
    notes: list[str] = []
    check_sources(config, run, notes)
    check_benchmarks(config, run, notes)
    check_tokenizer(config)
    check_files(config, run, notes)
    for key, bounds in (("mix.bounds", config.mix.bounds), ("anneal.bounds", config.anneal.bounds)):
        check_bounds(key, bounds)
    check_sql(config)
    check_classifier_params(config)
    return notes


def made_later(pattern: str) -> bool:
    return pattern.startswith("{run_dir}")


def check_sources(config: PipelineConfig, run: RunDir, notes: list[str]) -> None:
    config.ingest.require_sources()
    for index, source in enumerate(config.ingest.sources):
        key = source_key(index)
        for pattern in source.paths:
            if listing(in_run(pattern, run), key, source.storage.model_dump(), folders=source.kind == "hf"):
                continue
            if made_later(pattern):
                notes.append(f"{key}: nothing matches {in_run(pattern, run)!r} yet")
            else:
                raise ConfigError(f"{key}: no file matches {pattern!r}")


def check_benchmarks(config: PipelineConfig, run: RunDir, notes: list[str]) -> None:
    contamination = config.classify.contamination
    for i, bench in enumerate(contamination.benchmarks if contamination else []):
        key = f"classify.contamination.benchmarks[{i}] ({bench.name})"
        path = Path(in_run(bench.path, run))
        if not path.exists() and made_later(bench.path):
            notes.append(f"{key}: {path} does not exist yet")
            continue
        spec = BenchmarkSpec(bench.name, path, tuple(bench.fields))
        try:
            require_items(load_benchmark(spec), spec)
        except (BenchmarkFileError, OSError) as err:
            raise ConfigError(f"{key}: {err}") from None


def check_tokenizer(config: PipelineConfig) -> None:
    tokenizer = config.tokenize.tokenizer
    if tokenizer.kind != "file":
        return
    try:
        describe_tokenizer(Path(tokenizer.path), tokenizer.eos_token)
    except FileNotFoundError:
        raise ConfigError(f"tokenize.tokenizer.path: {tokenizer.path} does not exist") from None
    except (ValueError, OSError) as err:
        raise ConfigError(f"tokenize.tokenizer: {err}") from None


def check_files(config: PipelineConfig, run: RunDir, notes: list[str]) -> None:
    files = [(f"proxies.eval_texts[{i}] ({t.name})", t.path) for i, t in enumerate(config.proxies.eval_texts)]
    for index, task in enumerate(config.proxies.tasks):
        try:
            files.append((f"proxies.tasks[{index}] ({task.name})", task_file(task)))
        except ValueError as err:
            raise ConfigError(f"proxies.tasks[{index}]: {err}") from None
    if config.export.mix:
        files.append(("export.mix", config.export.mix))
    for key, path in files:
        if Path(in_run(path, run)).exists():
            continue
        if not made_later(path):
            raise ConfigError(f"{key}: {path} does not exist")
        notes.append(f"{key}: {in_run(path, run)} does not exist yet")


def check_bounds(key: str, bounds: Mapping[str, tuple[float, float]]) -> None:
    for name, (low, high) in bounds.items():
        if not 0 <= low <= high <= 1:
            raise ConfigError(f"{key}.{name}: expected 0 <= min <= max <= 1, got [{low}, {high}]")
    if sum(low for low, _ in bounds.values()) > 1:
        raise ConfigError(f"{key}: the minimum weights sum to {sum(low for low, _ in bounds.values()):.3g} > 1: no mix fits them")


def check_sql(config: PipelineConfig) -> None:
    """Parses (does not run) the SQL the config holds; a syntax error names the key."""
    queries = {
        "classify.domain.training": config.classify.domain and config.classify.domain.training,
        "classify.quality.positives": config.classify.quality and config.classify.quality.positives,
        "classify.quality.negatives": config.classify.quality and config.classify.quality.negatives,
        "rephrase.where": config.rephrase.where and f"SELECT 1 WHERE ({config.rephrase.where})",
    }
    con = duckdb.connect()
    try:
        for key, sql in queries.items():
            if not sql:
                continue
            try:
                con.extract_statements(sql)
            except duckdb.Error as err:
                raise ConfigError(f"{key}: not valid SQL: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
