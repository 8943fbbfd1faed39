"""The stage graph: what each stage reads, which steps it runs, and what it depends on."""

import glob
import importlib
import os
from pathlib import Path

import duckdb
from collections.abc import Callable
from dataclasses import dataclass, field

from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig

from curation.dedup import DedupFilter, DocumentIndex, DuplicateClusters
from curation.extract import HtmlExtractor
from curation.filters import HEURISTIC_FILTERS, LanguageIdFilter, OfflineUrlFilter, ProseOnly
from curation.intake import StageIntake
from curation.license import LicenseFilter
from curation.shards import LabelledSink, RemovedSink, ShardReader, ShardWriter
from curation.sources.commoncrawl import CommonCrawlConfig, crawl_files
from curation.sources.ocr import OcrConfig, VlmConfig
from curation.sources.pdf import PdfSource
from curation.rephrase.client import ClientConfig
from curation.rephrase.rephraser import RephraserConfig
from curation.rephrase.step import FixedStyles, QualityRouting, RephraseStep, Selection
from curation.sources.warc import WarcSource
from curation.tokenize import DomainTokenizer
from pipelines.classify import classifier_steps, contamination_report, contamination_step
from pipelines.export import run_export
from pipelines.tokens import TOKENIZE_READS, prepare_tokenizer, token_counts
from pipelines.config import ConfigError, PipelineConfig
from pipelines.run import RunDir
from pipelines.sql import connect


@dataclass(frozen=True)
class SubPipeline:
    """A pipeline that must finish before the stage's main one (e.g. MinHash signatures)."""

    name: str
    pipeline: list
    tasks: int


@dataclass(frozen=True)
class StagePlan:
    pipeline: list  # the main pipeline: reader, StageIntake, steps, ShardWriter; the ledger counts it
    tasks: int
    inputs: list[str] = field(default_factory=list)  # files from outside the run, fingerprinted
    before: list[SubPipeline] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """A document stage (``plan``: a datatrove pipeline per rank, checked by the ledger) or a
    job stage (``job``: works on what earlier stages made, returns a summary for the manifest)."""

    name: str
    section: str  # the config section its outputs depend on
    depends: str | None
    about: str
    plan: Callable[[PipelineConfig, RunDir], StagePlan] | None = None
    job: Callable | None = None
    describe: Callable[[PipelineConfig, RunDir], dict] | None = None  # extra manifest facts after a document stage
    cheap: bool = False  # redone whenever its config changes, without asking for --restart


def expand_inputs(patterns: list[str], run: RunDir, key: str) -> list[str]:
    paths: list[str] = []
    for pattern in patterns:
        resolved = pattern.replace("{run_dir}", str(run.path))
        matches = sorted(glob.glob(resolved, recursive=True))
        if not matches:
            raise ConfigError(
                f"{key}: no file matches {resolved!r}"
                + (" (run `curate demo-data` first)" if "{run_dir}" in pattern else "")
            )
        paths.extend(matches)
    return list(dict.fromkeys(paths))


def ocr_config(section) -> OcrConfig:
    vlm = VlmConfig(**section.vlm.model_dump()) if section.vlm else None
    return OcrConfig(**section.model_dump(exclude={"vlm"}), vlm=vlm)


REPHRASE_READS = "classify"


def plan_ingest(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.ingest
    warcs = expand_inputs(section.warc, run, "ingest.warc")
    if section.commoncrawl:
        warcs += crawl_files(CommonCrawlConfig(**section.commoncrawl.model_dump()))
    pdfs = expand_inputs(section.pdf.paths, run, "ingest.pdf.paths")
    stage_dir = run.stage_dir("ingest")
    removed = RemovedSink(stage_dir)
    pipeline = [
        WarcSource(
            warcs,
            max_record_bytes=section.max_record_bytes,
            default_metadata={"domain": section.default_domain},
            pdf_domain=section.pdf.domain,
        ),
        PdfSource(pdfs, per_page=section.pdf.per_page, ocr=ocr_config(section.pdf.ocr), domain=section.pdf.domain),
        StageIntake(removed),
        HtmlExtractor(
            removed,
            timeout=section.extract.timeout_s,
            favor_precision=section.extract.favor_precision,
            include_tables=section.extract.include_tables,
        ),
        ShardWriter(stage_dir),
    ]
    local_inputs = [p for p in warcs + pdfs if "://" not in p]
    return StagePlan(pipeline, tasks=min(section.tasks, max(len(warcs), len(pdfs))), inputs=local_inputs)


def plan_filter(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.filter
    stage_dir = run.stage_dir("filter")
    removed = RemovedSink(stage_dir)
    steps: list = [ShardReader(run.stage_dir("ingest")), StageIntake(removed)]
    if section.url.enabled:
        steps.append(OfflineUrlFilter(LabelledSink(removed, "url"), section.url.extra_domains, section.url.extra_urls))
    steps.append(
        LicenseFilter(
            LabelledSink(removed, "license"),
            licensed_only=section.license.licensed_only,
            respect_opt_out=section.license.respect_opt_out,
            allow_domains=section.license.allow_domains,
            deny_domains=section.license.deny_domains,
        )
    )
    if section.language.enabled:
        steps.append(LanguageIdFilter(section.language.languages, section.language.threshold, LabelledSink(removed, "language")))
    for name, filter_class in HEURISTIC_FILTERS.items():
        heuristic = getattr(section, name)
        if not heuristic.enabled:
            continue
        writer = LabelledSink(removed, name)
        inner = filter_class(exclusion_writer=writer, **heuristic.params)
        steps.append(ProseOnly(inner, exclusion_writer=writer) if heuristic.prose_only else inner)
    steps.append(ShardWriter(stage_dir))
    return StagePlan(steps, tasks=section.tasks)


def plan_dedup(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.dedup
    source, stage_dir = run.stage_dir("filter"), run.stage_dir("dedup")
    work = stage_dir / "_work"
    minhash = MinhashConfig(
        n_grams=section.minhash.n_grams,
        num_buckets=section.minhash.buckets,
        hashes_per_bucket=section.minhash.hashes_per_bucket,
        seed=section.minhash.seed,
    )
    removed = RemovedSink(stage_dir)
    before = [
        SubPipeline(
            "signatures",
            [ShardReader(source), DocumentIndex(work / "index"), MinhashDedupSignature(str(work / "signatures"), config=minhash)],
            section.tasks,
        ),
        SubPipeline(
            "buckets",
            [MinhashDedupBuckets(str(work / "signatures"), str(work / "buckets"), config=minhash)],
            section.minhash.buckets,
        ),
        SubPipeline(
            "clusters",
            [DuplicateClusters(work / "index", work / "buckets", work / "drops", section.tasks)],
            1,
        ),
    ]
    pipeline = [ShardReader(source), StageIntake(removed), DedupFilter(work / "drops", removed), ShardWriter(stage_dir)]
    return StagePlan(pipeline, tasks=section.tasks, before=before)


def plan_classify(config: PipelineConfig, run: RunDir) -> StagePlan:
    stage_dir = run.stage_dir("classify")
    removed = RemovedSink(stage_dir)
    steps = [ShardReader(run.stage_dir("dedup")), StageIntake(removed), *classifier_steps(config, run, removed)]
    return StagePlan([*steps, ShardWriter(stage_dir)], tasks=config.classify.tasks)


def select_ids(run: RunDir, stage: str, where: str, key: str) -> Path:
    """Evaluates a SQL predicate over a stage's documents once, in the driver: the ids it keeps, as Parquet."""
    out = run.stage_dir("rephrase") / "_selection" / "ids.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    con = connect(run.path)
    try:
        con.execute(f'COPY (SELECT id FROM "{stage}" WHERE ({where})) TO \'{out}\' (FORMAT parquet)')
    except duckdb.Error as err:
        raise ConfigError(f"{key}: {err}") from None
    finally:
        con.close()
    return out


def plan_rephrase(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.rephrase
    stage_dir = run.stage_dir("rephrase")
    removed = RemovedSink(stage_dir)
    client = None
    if section.endpoint and section.api_key_env and not os.environ.get(section.api_key_env):
        raise ConfigError(f"rephrase.api_key_env: the environment variable {section.api_key_env} is not set")
    if section.endpoint:
        client = ClientConfig(
            base_url=section.endpoint,
            model=section.model,
            api_key_env=section.api_key_env,
            max_concurrency=section.max_concurrency,
            timeout_s=section.timeout_s,
            max_retries=section.max_retries,
            seed=config.run.seed,
        )
    styles = (
        QualityRouting(section.route_by_quality.low, section.route_by_quality.high)
        if section.route_by_quality
        else FixedStyles(tuple(section.styles))
    )
    step = RephraseStep(
        removed,
        client,
        cache_dir=run.path / "_cache" / "rephrase",
        styles=styles,
        rephraser_config=RephraserConfig(
            context_tokens=section.context_tokens,
            max_output_tokens=section.max_output_tokens,
            temperature=section.temperature,
            seed=config.run.seed,
            budget_tokens=section.budget_tokens,
            allow_truncated=section.allow_truncated,
        ),
        selection=Selection(
            tuple(section.domains) if section.domains else None,
            section.min_quality,
            section.max_quality,
            ids_file=str(select_ids(run, REPHRASE_READS, section.where, "rephrase.where")) if section.where else None,
        ),
        batch_size=section.batch_size,
    )
    checks = [contamination_step(config, run, removed, "rephrase")] if client and config.classify.contamination else []
    pipeline = [ShardReader(run.stage_dir(REPHRASE_READS)), StageIntake(removed), step, *checks, ShardWriter(stage_dir)]
    return StagePlan(pipeline, tasks=section.tasks)


def plan_tokenize(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.tokenize
    source, stage_dir = run.stage_dir(TOKENIZE_READS), run.stage_dir("tokenize")
    info = prepare_tokenizer(section.tokenizer, stage_dir / "_tokenizer" / "tokenizer.json", source, config.run.seed)
    removed = RemovedSink(stage_dir)
    pipeline = [
        ShardReader(source),
        StageIntake(removed),
        DomainTokenizer(stage_dir / "_tokens", info.path, info.eos_token, section.validation_fraction, config.run.seed),
        ShardWriter(stage_dir),
    ]
    inputs = [section.tokenizer.path] if section.tokenizer.kind == "file" else []
    return StagePlan(pipeline, tasks=section.tasks, inputs=inputs)


def lazy_job(module: str, name: str) -> Callable:
    """A job imported when it runs: the mixing jobs load torch, seconds more for every curate command."""

    def job(config, run, client, console) -> dict:
        return getattr(importlib.import_module(module), name)(config, run, client, console)

    return job


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in [
        Stage("ingest", "ingest", None, "WARC/PDF records -> text (HTML extraction, OCR)", plan=plan_ingest),
        Stage("filter", "filter", "ingest", "URL, license, language and Gopher/C4/FineWeb heuristics", plan=plan_filter),
        Stage("dedup", "dedup", "filter", "exact and MinHash near-duplicate removal", plan=plan_dedup),
        Stage("classify", "classify", "dedup", "domain (scikit-learn), quality (fastText) and benchmark contamination",
              plan=plan_classify, describe=contamination_report),
        Stage("rephrase", "rephrase", REPHRASE_READS, "synthetic rewrites through an OpenAI-compatible LLM endpoint",
              plan=plan_rephrase),
        Stage("tokenize", "tokenize", TOKENIZE_READS, "per-domain token files and a held-out validation slice",
              plan=plan_tokenize, describe=token_counts),
        Stage("proxies", "proxies", "tokenize", "tiny proxy models on sampled mixtures, scored in bits per byte",
              job=lazy_job("pipelines.mixing", "run_proxies")),
        Stage("mix", "mix", "proxies", "regression over the proxies: the bounded optimal mix, validated against natural",
              job=lazy_job("pipelines.mixing", "run_mix")),
        Stage("anneal", "anneal", "tokenize", "mid-training mix over domain x quality-bucket units, from proxies continuing a base proxy",
              job=lazy_job("pipelines.anneal", "run_anneal")),
        Stage("export", "export", "tokenize", "the mixture for Megatron-LM and OLMo-core, with manifest and launch script",
              job=run_export, cheap=True),
    ]
}
