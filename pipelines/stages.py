"""The stage graph: what each stage reads, which steps it runs, and what it depends on."""

import importlib
import os
from pathlib import Path

import duckdb
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters.base_filter import BaseFilter

from curation.dedup import DedupFilter, DocumentIndex, DuplicateClusters
from curation.drop_details import Measured
from curation.extract import HtmlExtractor
from curation.filters import HEURISTIC_FILTERS, ForSources, LanguageIdFilter, OfflineUrlFilter
from curation.text_kind import ByTextKind, TextKind
from curation.errors import UserError
from curation.intake import StageIntake
from curation.license import LicenseFilter
from curation.shards import LabelledSink, RemovedSink, ShardReader, ShardWriter
from curation.sources.commoncrawl import CommonCrawlConfig, crawl_files
from curation.sources.document_files import FieldMapping, HfDatasetSource, JsonlSource, ParquetSource
from curation.sources.names import glob_root, stable_names
from curation.sources.ocr import OcrConfig, VlmConfig
from curation.sources.pdf import PdfSource
from curation.rephrase.client import ClientConfig
from curation.rephrase.rephraser import RephraserConfig
from curation.rephrase.step import SYNTHETIC_COUNTER, FixedStyles, QualityRouting, RephraseStep, Selection
from curation.sources.warc import WarcSource
from curation.storage import expand, files_under
from curation.tokenize import DomainTokenizer
from pipelines.classify import classifier_steps, classify_report, contamination_step
from pipelines.export import EXPORT_READS, run_export
from pipelines.ledger import summed_stats
from pipelines.tokens import TOKENIZE_READS, prepare_tokenizer, token_counts
from pipelines.config import ConfigError, IngestSection, PipelineConfig, SourceSection, task_file
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
    before: list[SubPipeline] = field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """A document stage (``plan``: a datatrove pipeline per rank, checked by the ledger) or a
    job stage (``job``: works on what earlier stages made, returns a summary for the manifest).

    ``reads`` are the config keys its outputs depend on (a section, or ``section.key``), ``upstream``
    the stages whose outputs it reads, ``inputs`` the files from outside the run it reads: together
    they make its identity (pipelines.state). ``checks`` are keys it only validates early, for a
    later stage, without its outputs depending on them. It runs on a config that hides every other key.
    """

    name: str
    reads: tuple[str, ...]
    upstream: tuple[str, ...]
    about: str
    plan: Callable[[PipelineConfig, RunDir], StagePlan] | None = None
    job: Callable | None = None
    describe: Callable[[PipelineConfig, RunDir], dict] | None = None  # extra manifest facts after a document stage
    inputs: Callable[[PipelineConfig, RunDir], list[str]] | None = None
    checks: tuple[str, ...] = ()
    # what its outputs hold, raised when a new curate writes them differently (a column added,
    # drop reasons renamed), so that outputs an older curate wrote are rebuilt, not reused
    output_format: int = 1

    @property
    def is_document_stage(self) -> bool:
        return self.plan is not None


def matched_files(patterns: list[str], run: RunDir, key: str, storage: Mapping | None = None, folders: bool = False) -> dict[str, str]:
    """Every file (or with ``folders``, folder) the patterns match, local or in a store, each with
    its stable name (relative to its pattern's root, so a corpus that moves keeps its document ids)."""
    pairs: list[tuple[str, str]] = []
    for pattern in patterns:
        resolved = in_run(pattern, run)
        matches = listing(resolved, key, storage, folders)
        if not matches:
            raise ConfigError(f"{key}: no file matches {resolved!r}")
        pairs.extend((path, glob_root(resolved)) for path in matches)
    try:
        return stable_names(pairs)
    except ValueError as err:
        raise ConfigError(f"{key}: {err}") from None


def listing(pattern: str, key: str, storage: Mapping | None = None, folders: bool = False) -> list[str]:
    """What a pattern matches; a store that cannot be listed (no credentials, no such bucket,
    unreachable) is a config error naming the key and the store's answer."""
    try:
        return expand(pattern, storage, folders=folders)
    except UserError:
        raise
    except Exception as err:  # botocore, aiohttp and fsspec raise their own kinds
        raise ConfigError(f"{key}: cannot list {pattern!r}: {type(err).__name__}: {err}") from None


def in_run(path: str, run: RunDir) -> str:
    return path.replace("{run_dir}", str(run.path))


def local_files(paths: list[str]) -> dict[str, dict]:
    """Input files on local disk: no storage settings."""
    return dict.fromkeys(paths, {})


def source_key(index: int) -> str:
    return f"ingest.sources.{index}.paths"


def listed_files(source: SourceSection, index: int, run: RunDir) -> dict[str, str]:
    """The files its ``paths`` match (datasets' folders for kind hf), with their stable names."""
    return matched_files(source.paths, run, source_key(index), source.storage.model_dump(), folders=source.kind == "hf")


def source_files(source: SourceSection, index: int, run: RunDir) -> dict[str, str]:
    """A source's files, and a Common Crawl listing's for a warc source that names a crawl."""
    files = listed_files(source, index, run)
    if source.commoncrawl:
        crawl = CommonCrawlConfig(**source.commoncrawl.model_dump())
        files |= stable_names((url, crawl.base_url) for url in crawl_files(crawl, source.storage.model_dump()))
    return files


def ingest_inputs(config: PipelineConfig, run: RunDir) -> dict[str, dict]:
    config.ingest.require_sources()
    inputs: dict[str, dict] = {}
    for index, source in enumerate(config.ingest.sources):
        storage = source.storage.model_dump()
        for path in listed_files(source, index, run):
            inputs |= dict.fromkeys(files_under(path, storage), storage)
    return inputs


def benchmark_inputs(config: PipelineConfig, run: RunDir) -> dict[str, dict]:
    contamination = config.classify.contamination
    return local_files([in_run(b.path, run) for b in contamination.benchmarks] if contamination else [])


def rephrase_inputs(config: PipelineConfig, run: RunDir) -> dict[str, dict]:
    return benchmark_inputs(config, run) if config.rephrase.endpoint else {}


def tokenize_inputs(config: PipelineConfig, run: RunDir) -> dict[str, dict]:
    tokenizer = config.tokenize.tokenizer
    return local_files([tokenizer.path] if tokenizer.kind == "file" else [])


def proxies_inputs(config: PipelineConfig, run: RunDir) -> dict[str, dict]:
    paths = [t.path for t in config.proxies.eval_texts]
    for index, task in enumerate(config.proxies.tasks):
        try:
            paths.append(task_file(task))
        except ValueError as err:
            raise ConfigError(f"proxies.tasks[{index}]: {err}") from None
    return local_files([in_run(path, run) for path in paths])


def export_inputs(config: PipelineConfig, run: RunDir) -> dict[str, dict]:
    return local_files([in_run(config.export.mix, run)] if config.export.mix else [])


def ocr_config(section) -> OcrConfig:
    vlm = VlmConfig(**section.vlm.model_dump(exclude={"preset"})) if section.vlm else None
    return OcrConfig(**section.model_dump(exclude={"vlm"}), vlm=vlm)


REPHRASE_READS = "classify"


def source_reader(source: SourceSection, files: Mapping[str, str], section: IngestSection):
    """The reader of one source: documents carry its name as ``source`` and its domain."""
    storage, domain = source.storage.model_dump(), source.mixing_domain
    labels = {"source": source.name} | ({"domain": domain} if domain else {})
    if source.kind == "warc":
        return WarcSource(list(files), max_record_bytes=section.max_record_bytes, default_metadata=labels,
                          pdf_domain=domain, names=files, storage=storage)
    if source.kind == "pdf":
        return PdfSource(list(files), per_page=source.per_page, ocr=ocr_config(source.ocr), domain=domain,
                         default_metadata=labels, names=files, storage=storage)
    fields = FieldMapping(source.name, domain, source.text_key, source.id_key, tuple(source.keep) if source.keep is not None else None)
    if source.kind == "hf":
        return HfDatasetSource(fields, list(files), files, storage, split=source.split)
    reader = JsonlSource if source.kind == "jsonl" else ParquetSource
    return reader(fields, list(files), files, storage)


def plan_ingest(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.ingest
    section.require_sources()
    stage_dir = run.stage_dir("ingest")
    removed = RemovedSink(stage_dir)
    readers, most_files = [], 1
    for index, source in enumerate(section.sources):
        files = source_files(source, index, run)
        readers.append(source_reader(source, files, section))
        most_files = max(most_files, section.tasks if source.kind == "hf" else len(files))
    pipeline = [
        *readers,
        StageIntake(removed),
        HtmlExtractor(
            removed,
            timeout=section.extract.timeout_s,
            favor_precision=section.extract.favor_precision,
            include_tables=section.extract.include_tables,
            engine=section.extract.engine,
        ),
        ShardWriter(stage_dir),
    ]
    return StagePlan(pipeline, tasks=min(section.tasks, most_files))


POLICY_STEPS = ("url", "license", "language", *HEURISTIC_FILTERS)
TRUSTED_STEPS = ("language",)  # trusted sources: language here, then dedup and contamination like every source


def policy_steps(config: PipelineConfig, policy: str) -> tuple[str, ...]:
    if policy == "web":
        return POLICY_STEPS
    return TRUSTED_STEPS if policy == "trusted" else tuple(config.filter.policies[policy])


def for_policies(config: PipelineConfig, step: str, make: Callable[[LabelledSink], BaseFilter], removed: RemovedSink) -> list:
    """The filter step ``step`` for the sources whose policy runs it: [] when none does, gated
    by source when only some do."""
    sources = config.ingest.sources
    runs_it = frozenset(source.name for source in sources if step in policy_steps(config, source.filters))
    if not runs_it:
        return []
    writer = LabelledSink(removed, step)
    inner = make(writer)
    return [inner if len(runs_it) == len(sources) else ForSources(inner, runs_it, exclusion_writer=writer)]


def plan_filter(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.filter
    stage_dir = run.stage_dir("filter")
    removed = RemovedSink(stage_dir)
    makers: dict[str, Callable] = {
        "license": lambda writer: LicenseFilter(
            writer,
            licensed_only=section.license.licensed_only,
            respect_opt_out=section.license.respect_opt_out,
            allow_domains=section.license.allow_domains,
            deny_domains=section.license.deny_domains,
        ),
    }
    if section.url.enabled:
        makers["url"] = lambda writer: OfflineUrlFilter(writer, section.url.extra_domains, section.url.extra_urls)
    if section.language.enabled:
        makers["language"] = lambda writer: LanguageIdFilter(section.language.languages, section.language.threshold, writer)
    for name, filter_class in HEURISTIC_FILTERS.items():
        heuristic = getattr(section, name)
        if heuristic.enabled:
            makers[name] = heuristic_maker(filter_class, heuristic)
    kinds = section.text_kind
    steps: list = [ShardReader(run.stage_dir("ingest")), StageIntake(removed), TextKind(kinds.code_lines, kinds.technical_lines, kinds.code_markup)]
    for step in POLICY_STEPS:
        if step in makers:
            steps += for_policies(config, step, makers[step], removed)
    steps.append(ShardWriter(stage_dir))
    return StagePlan(steps, tasks=section.tasks)


def heuristic_maker(filter_class: type, heuristic) -> Callable:
    def make(writer):
        web, technical = (
            Measured(filter_class(exclusion_writer=writer, **params), exclusion_writer=writer)
            for params in (heuristic.params, heuristic.params | heuristic.technical_params)
        )
        return ByTextKind(web, technical, heuristic.prose_only, exclusion_writer=writer)

    return make


def plan_dedup(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.dedup
    source, stage_dir = run.stage_dir("filter"), run.stage_dir("dedup")
    work = run.dedup_work
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
    out = run.rephrase_selection
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
        cache_dir=run.rephrase_cache,
        styles=styles,
        rephraser_config=RephraserConfig(
            context_tokens=section.context_tokens,
            max_output_tokens=section.max_output_tokens,
            temperature=section.temperature,
            seed=config.run.seed,
            budget_tokens=section.budget_tokens,
            allow_truncated=section.allow_truncated,
            fail_fast_requests=section.fail_fast_requests,
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


def request_report(config: PipelineConfig, run: RunDir) -> dict:
    """LLM requests and failures by reason over every rank: a partial failure rate is never silent,
    and a stage whose every request failed, making nothing, fails (however few requests a rank made)."""
    if not config.rephrase.endpoint:
        return {}
    logs, tasks = run.logs_dir("rephrase"), config.rephrase.tasks
    counts = summed_stats(logs, tasks, "llm_")
    failed = {key.removeprefix("llm_failed_"): n for key, n in counts.items() if key.startswith("llm_failed_") and key != "llm_failed_requests" and n}
    requests, failures = counts.get("llm_requests", 0), counts.get("llm_failed_requests", 0)
    if requests and failures == requests and not summed_stats(logs, tasks, SYNTHETIC_COUNTER):
        raise UserError(
            f"rephrase: all {requests} requests to {config.rephrase.endpoint} failed ({', '.join(sorted(failed))}) "
            "and no synthetic document was made: check rephrase.endpoint, rephrase.model and rephrase.api_key_env"
        )
    note = f"LLM requests: {requests:,}, failed {failures:,}" + (f" ({', '.join(f'{r} {n:,}' for r, n in sorted(failed.items()))})" if failed else "")
    return {"llm_requests": requests, "llm_failed": failed, "note": note}


def plan_tokenize(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.tokenize
    source, stage_dir = run.stage_dir(TOKENIZE_READS), run.stage_dir("tokenize")
    try:
        info = prepare_tokenizer(section.tokenizer, run.tokenizer_path, source, config.run.seed)
    except (ValueError, OSError) as err:  # a tokenizer file without the EOS token, unreadable, or no documents
        raise ConfigError(f"tokenize.tokenizer: {err}") from None
    removed = RemovedSink(stage_dir)
    pipeline = [
        ShardReader(source),
        StageIntake(removed),
        DomainTokenizer(run.token_root, info.path, info.eos_token, section.validation_fraction, config.run.seed),
        ShardWriter(stage_dir),
    ]
    return StagePlan(pipeline, tasks=section.tasks)


def lazy_job(module: str, name: str) -> Callable:
    """A job imported when it runs: the mixing jobs load torch, seconds more for every curate command."""

    def job(config, run, client, console) -> dict:
        return getattr(importlib.import_module(module), name)(config, run, client, console)

    return job


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in [
        Stage("ingest", ("ingest",), (), "named sources (WARC, PDF, JSONL, Parquet, HF datasets) -> text",
              plan=plan_ingest, inputs=ingest_inputs, output_format=2),  # 2: code_markup, failed_pages, <step>/<reason> drops
        Stage("filter", ("filter", "ingest.sources"), ("ingest",), "URL, license, language and Gopher/C4/FineWeb heuristics", plan=plan_filter),
        Stage("dedup", ("dedup",), ("filter",), "exact and MinHash near-duplicate removal", plan=plan_dedup),
        Stage("classify", ("classify",), ("dedup",), "domain (scikit-learn), quality (fastText) and benchmark contamination",
              plan=plan_classify, describe=classify_report, inputs=benchmark_inputs),
        Stage("rephrase", ("rephrase", "run.seed", "classify.contamination"), (REPHRASE_READS,),
              "synthetic rewrites through an OpenAI-compatible LLM endpoint", plan=plan_rephrase, inputs=rephrase_inputs,
              describe=request_report),
        Stage("tokenize", ("tokenize", "run.seed"), (TOKENIZE_READS,), "per-domain token files and a held-out validation slice",
              plan=plan_tokenize, describe=token_counts, inputs=tokenize_inputs),
        Stage("proxies", ("proxies", "run.seed", "tokenize.tokenizer"), ("tokenize",),
              "tiny proxy models on sampled mixtures, scored in bits per byte",
              job=lazy_job("pipelines.mixing", "run_proxies"), inputs=proxies_inputs, checks=("mix.target_weights",)),
        Stage("mix", ("mix", "proxies", "run.seed", "tokenize.tokenizer", "export.sequence_length"), ("proxies",),
              "regression over the proxies: the bounded optimal mix, validated against natural",
              job=lazy_job("pipelines.mixing", "run_mix")),
        Stage("anneal", ("anneal", "proxies", "mix", "run.seed", "tokenize.tokenizer", "export.sequence_length"),
              ("tokenize", "mix"),
              "mid-training mix over domain x quality-bucket units, from proxies continuing a base proxy",
              job=lazy_job("pipelines.anneal", "run_anneal")),
        Stage("export", ("export", "tokenize.tokenizer"), EXPORT_READS,
              "the mixture for Megatron-LM and OLMo-core, with manifest and launch script",
              job=run_export, inputs=export_inputs),
    ]
}
