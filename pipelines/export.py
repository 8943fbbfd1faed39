"""The export stage: a mixture of the tokenized domains, handed off to a trainer.

The mixture is a YAML file (``weights: {domain: weight}``, optionally ``token_budget``)
— written by hand or by the regression mixer — or, by default, the natural mixture:
each domain in proportion to its training tokens.
"""

from pathlib import Path

import duckdb
import yaml

from curation.errors import UserError
from curation.shards import list_kept_shards, safe_segment
from curation.tokenize import TRAIN
from curation.tokenizer import describe_tokenizer
from mixes.export import export_mixture
from pipelines.config import ConfigError, ExportSection, PipelineConfig
from pipelines.run import RunDir
from pipelines.state import lineage_of
from pipelines.tokens import parquet_list


EXPORT_READS = ("tokenize",)


def export_name(domain: str) -> str:
    """Export file names cannot hold '/': ``synthetic/qa`` is exported as ``synthetic-qa``."""
    return safe_segment(domain).replace("/", "-")


def training_tokens(run: RunDir) -> dict[str, int]:
    files = list_kept_shards(run.stage_dir("tokenize"))
    if not files:
        raise UserError(f"{run.stage_dir('tokenize')}: no tokenized documents to export (did every document get filtered out?)")
    query = f"SELECT domain, sum(n_tokens) FROM read_parquet({parquet_list(files)}) WHERE split = 'train' GROUP BY 1 ORDER BY 1"
    return {domain: int(tokens) for domain, tokens in duckdb.connect().execute(query).fetchall()}


def read_mix(path: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the mixture: {err}") from None
    weights = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(w, (int, float)) for w in weights.values()):
        raise ConfigError(f"{path}: expected 'weights:' mapping each domain to a number")
    return data


def mix_to_export(section: ExportSection, run: RunDir, tokens: dict[str, int], console) -> tuple[dict, str]:
    """The mix the export trains and what it is; a mix the mixer did not recommend per `export.not_recommended`."""
    natural = {"weights": tokens, "name": "natural"}
    if not section.mix:
        return natural, "natural"
    path = section.mix.replace("{run_dir}", str(run.path))
    mix = read_mix(path)
    if mix.get("recommended", True):
        return mix, section.mix
    reasons = "; ".join(mix.get("not_recommended_because") or ["no reason recorded"])
    if section.not_recommended == "natural":
        console.print(f"[yellow]export: {path} is not recommended ({reasons}): exporting the natural mix instead[/yellow]")
        return natural, f"natural (instead of {section.mix}, not recommended)"
    if section.not_recommended == "export":
        console.print(f"[bold yellow]export: exporting {path} although it is not recommended ({reasons})[/bold yellow]")
        return mix, f"{section.mix} (not recommended, exported with --force)"
    raise UserError(
        f"export: {path} is not recommended: {reasons}. Give --force to export it anyway, set "
        "export.not_recommended: natural to export the natural mix instead, or improve the mix (see its report.md)"
    )


def run_export(config: PipelineConfig, run: RunDir, client, console) -> dict:
    section = config.export
    tokens = training_tokens(run)
    mix, mix_name = mix_to_export(section, run, tokens, console)
    budget = section.token_budget or mix.get("token_budget") or sum(tokens.values())
    if mix.get("token_dirs"):  # an anneal mix over (domain, quality bucket) units, with their own token files
        token_dirs = {export_name(u): run.path / folder for u, folder in mix["token_dirs"].items()}
        weights = {export_name(u): float(w) for u, w in mix["weights"].items() if w > 0}
    else:
        token_dirs = {export_name(domain): run.token_dir(TRAIN, domain) for domain in tokens}
        weights = {export_name(d): float(w) for d, w in mix["weights"].items()}
    tokenizer = describe_tokenizer(run.tokenizer_path, config.tokenize.tokenizer.eos_token)
    out = Path(section.out.replace("{run_dir}", str(run.path)))
    lineage = {"run": str(run.path), "mix": mix_name, "stages": lineage_of(run.read_manifest(), EXPORT_READS)}
    try:
        manifest = export_mixture(
            token_dirs, weights, int(budget), tokenizer, out, lineage, section.formats,
            sequence_length=section.sequence_length, global_batch_size=section.global_batch_size,
            max_repetition_ratio=section.max_repetition_ratio, overwrite=True,
        )
    except ValueError as err:  # a budget, weight or supply the batch plan cannot meet: the user's to change
        raise UserError(f"export: {err}") from None
    batches = manifest["batches"]
    if manifest["rounded_out_domains"]:
        console.print(
            f"[yellow]export: {', '.join(manifest['rounded_out_domains'])} left out: their weights are under one "
            f"of the {batches['sequences']:,} sequences trained (raise the budget to keep them)[/yellow]"
        )
    console.print(
        f"export: {len(manifest['domains'])} domains, {batches['trained_tokens']:,} tokens "
        f"({batches['steps']} steps of {batches['global_batch_size']} x {batches['sequence_length']}; "
        f"requested {int(budget):,}) -> {out}"
    )
    return {"out": str(out), "mix": mix_name, "token_budget": batches["trained_tokens"], "requested_token_budget": int(budget),
            "weights": weights, "domains": len(manifest["domains"]), "manifest": str(out / "manifest.json")}
