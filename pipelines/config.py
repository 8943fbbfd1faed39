"""The pipeline config: one pydantic schema, read from YAML.

Relative paths are relative to the directory curate runs in; ``{run_dir}`` in an input
path stands for the run's folder (``<run.root>/<run.name>``). A bad config raises
``ConfigError`` naming the file, the key path and what was expected.
"""

import hashlib
import inspect
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from curation.errors import UserError
from curation.sources.ocr import DEFAULT_MIN_CONFIDENCE, DEFAULT_VLM_PROMPT, VLM_PRESETS
from curation.text_kind import CODE_LINES
from mixes.tasks import INSTALLED_FILES, installed_file

CLUSTER_ADDRESS = re.compile(r"^(local|tcp://[\w.\-\[\]:]+:\d+)$")


class ConfigError(UserError, ValueError):
    """A config the stage cannot run with: names the file or key and what was expected."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSection(Section):
    """Where a source's object store is and how to sign; credentials come from the environment only."""

    endpoint_url: str | None = None  # e.g. http://minio.internal:9000 for an S3-compatible store
    anonymous: bool = False  # unsigned requests, for public buckets
    profile: str | None = None  # a profile of ~/.aws/config


class RunSection(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    root: str = "runs"  # a folder, or a store's URL (s3://bucket/runs): the run then lives there, worked on in `cache`
    seed: int = 0
    cache: str | None = None  # the local copy of a run whose root is a URL; default ~/.cache/curate/runs
    storage: StorageSection = StorageSection()


class ExecutorSection(Section):
    cluster: str = Field("local", description="'local' for a LocalCluster, or tcp://host:port of a Dask scheduler")
    workers: Annotated[int, Field(ge=1)] | None = None

    @field_validator("cluster")
    @classmethod
    def _cluster_address(cls, value: str) -> str:
        if not CLUSTER_ADDRESS.match(value):
            raise ValueError("expected 'local' or a scheduler address like tcp://127.0.0.1:8786")
        return value


class DemoDataSection(Section):
    scale: Annotated[float, Field(gt=0, le=1.5)] = 1.0  # the text sources run out beyond 1.5
    seed: int | None = None
    benchmarks: list[str] = []  # real benchmark files copied into <run>/input/benchmarks/ beside the demo's own


class ExtractSection(Section):
    # HTML to text. resiliparse: ~15x trafilatura's docs/s at the same token F1 on the demo
    # ground truth (bench/extract.py); trafilatura: the slower reference
    engine: Literal["trafilatura", "resiliparse"] = "resiliparse"
    timeout_s: Annotated[float, Field(gt=0)] = 5.0
    favor_precision: bool = False  # favor_precision, include_tables: trafilatura only
    include_tables: bool = True


class VlmSection(Section):
    """An OpenAI-compatible vision endpoint (e.g. olmOCR served by vLLM); base_url includes /v1."""

    base_url: str
    model: str
    api_key_env: str | None = None
    preset: Literal["olmocr"] | None = None  # fills the settings below that are not given (curation.sources.ocr.VLM_PRESETS)
    prompt: Annotated[str, Field(min_length=1)] = DEFAULT_VLM_PROMPT
    longest_side_px: Annotated[int, Field(ge=64, le=10_000)] | None = None  # else the page renders at ocr.dpi
    max_tokens: Annotated[int, Field(ge=1)] = 4096
    temperatures: Annotated[list[Annotated[float, Field(ge=0, le=2)]], Field(min_length=1)] = [0.0]  # by attempt
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    max_retries: Annotated[int, Field(ge=0)] = 4

    @model_validator(mode="before")
    @classmethod
    def _fill_preset(cls, data: Any) -> Any:
        """A preset's settings go into the config itself, so they are part of the run's identity."""
        if isinstance(data, dict) and data.get("preset") in VLM_PRESETS:
            return VLM_PRESETS[data["preset"]] | data
        return data


class OcrSection(Section):
    engine: Literal["off", "tesseract", "vlm"] = "tesseract"
    dpi: Annotated[int, Field(ge=36, le=1200)] = 300
    languages: Annotated[list[str], Field(min_length=1)] = ["eng"]
    min_text_chars: Annotated[int, Field(ge=0)] = 50  # pages with less text-layer text are OCR'd
    # a page image larger than this is rendered at a lower dpi (a 6000 x 6000 px render took 2.1 GB)
    max_pixels: Annotated[int, Field(ge=1_000_000)] = 25_000_000
    # tesseract: a page whose mean word confidence (0-100) is lower is left out as low_confidence
    min_confidence: Annotated[float, Field(ge=0, le=100)] = DEFAULT_MIN_CONFIDENCE
    timeout_s: Annotated[float, Field(gt=0)] = 300.0  # tesseract: seconds one page may take
    vlm: VlmSection | None = None

    @model_validator(mode="after")
    def _vlm_needs_endpoint(self):
        if self.engine == "vlm" and self.vlm is None:
            raise ValueError("engine 'vlm' needs a vlm section (base_url, model)")
        return self


class CommonCrawlSection(Section):
    crawl: Annotated[str, Field(pattern=r"^CC-MAIN-\d{4}-\d{2}$")] = "CC-MAIN-2024-51"
    kind: Literal["warc", "wet"] = "warc"
    files: Annotated[int, Field(ge=1)] | Literal["all"] = 1
    shard_seed: int = 0
    base_url: str = "https://data.commoncrawl.org/"  # or s3://commoncrawl/ or a local mirror folder


SOURCE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"
SOURCE_KINDS = ("warc", "pdf", "jsonl", "parquet", "hf")
DOCUMENT_FILE_KINDS = ("jsonl", "parquet", "hf")
CLASSIFY_DOMAIN = "classify"  # a source's domain left to the domain classifier
BUILTIN_POLICIES = ("web", "trusted")


class SourceSection(Section):
    """One named input: its files, how to read them, its mixing domain and its filter policy."""

    name: Annotated[str, Field(pattern=SOURCE_NAME)]
    kind: Literal["warc", "pdf", "jsonl", "parquet", "hf"]
    paths: list[str] = []  # globs or fsspec URLs (s3://bucket/prefix/*.jsonl.gz); hf: save_to_disk folders
    commoncrawl: CommonCrawlSection | None = None  # kind warc: files chosen from a crawl's listing
    domain: str | None = None  # none: the source's name; "classify": the domain classifier decides
    filters: str = "web"  # web (every heuristic), trusted (language only), or a name in filter.policies
    text_key: str = "text"  # jsonl / parquet / hf: the field holding the text (e.g. content for code dumps)
    id_key: str | None = "id"  # the field holding the document's id; none: file name and line
    keep: list[str] | None = None  # fields kept in the document's metadata; none: every other field
    split: str = "train"  # hf: the split of a DatasetDict folder
    per_page: bool = False  # pdf: one document per page
    ocr: OcrSection = OcrSection()  # pdf
    storage: StorageSection = StorageSection()

    @model_validator(mode="after")
    def _fits_its_kind(self):
        if self.commoncrawl and self.kind != "warc":
            raise ValueError("commoncrawl is a listing of WARC files: it needs kind: warc")
        if not (self.paths or self.commoncrawl):
            raise ValueError("a source needs paths" + (" or commoncrawl" if self.kind == "warc" else ""))
        if self.domain is not None and self.domain != CLASSIFY_DOMAIN and not re.match(SOURCE_NAME, self.domain):
            raise ValueError(f"domain {self.domain!r}: letters, digits, _ and - only")
        return self

    @property
    def mixing_domain(self) -> str | None:
        """The domain its documents get at ingest; None when the domain classifier gives it."""
        if self.domain == CLASSIFY_DOMAIN:
            return None
        return self.domain or self.name


LEGACY_INGEST_KEYS = ("warc", "commoncrawl", "pdf", "default_domain")


def legacy_sources(data: dict) -> list[dict]:
    """The ``ingest.sources`` entries that say what the old ``warc`` / ``commoncrawl`` / ``pdf`` keys said."""
    domain = data.get("default_domain", "web")
    sources = []
    if data.get("warc") or data.get("commoncrawl"):
        entry = {"name": "web", "kind": "warc", "paths": data.get("warc") or [], "domain": domain}
        if data.get("commoncrawl"):
            entry["commoncrawl"] = data["commoncrawl"]
        sources.append({key: value for key, value in entry.items() if value != []})
    pdf = data.get("pdf") or {}
    if pdf.get("paths"):
        entry = {"name": "pdf", "kind": "pdf", "paths": pdf["paths"], "domain": pdf.get("domain", "papers")}
        sources.append(entry | {key: pdf[key] for key in ("per_page", "ocr") if key in pdf})
    return sources


class IngestSection(Section):
    sources: list[SourceSection] = []
    tasks: Annotated[int, Field(ge=1)] = 8
    max_record_bytes: Annotated[int, Field(ge=1024)] = 10 * 2**20
    extract: ExtractSection = ExtractSection()

    @model_validator(mode="before")
    @classmethod
    def _no_legacy_keys(cls, data):
        if isinstance(data, dict) and any(key in data for key in LEGACY_INGEST_KEYS):
            used = ", ".join(key for key in LEGACY_INGEST_KEYS if key in data)
            new = yaml.safe_dump({"sources": legacy_sources(data)}, sort_keys=False, default_flow_style=None).strip()
            raise ValueError(f"{used} became named sources; write instead:\n    " + new.replace("\n", "\n    "))
        return data

    @model_validator(mode="after")
    def _unique_names(self):
        names = [source.name for source in self.sources]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"source names must be unique: {', '.join(twice)} given twice")
        return self

    def require_sources(self) -> None:
        if not self.sources:
            raise ConfigError("ingest.sources: no source: declare at least one, each with a name, a kind and paths")


class LanguageSection(Section):
    enabled: bool = True
    languages: Annotated[list[str], Field(min_length=1)] = ["en"]
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.65


class HeuristicSection(Section):
    """A datatrove heuristic filter: ``params`` are its constructor's keyword arguments;
    ``technical_params`` override them on technical text (see curation.text_kind)."""

    enabled: bool = True
    params: dict[str, Any] = {}
    technical_params: dict[str, Any] | None = None  # None: the shipped ones (curation.filters.TECHNICAL_PARAMS)
    prose_only: bool = True  # documents that read as code skip prose heuristics


class TextKindSection(Section):
    """How the filter stage tells code and technical text from prose (curation.text_kind)."""

    code_lines: Annotated[float, Field(gt=0, le=1)] = CODE_LINES  # this share of code-looking lines or more: code
    technical_lines: Annotated[float, Field(gt=0, le=1)] = 0.1  # or more: technical
    code_markup: Annotated[int, Field(ge=1)] = 2  # or this many <pre>/<code>/<kbd>/<samp> elements: technical


class UrlSection(Section):
    enabled: bool = True
    extra_domains: list[str] = []
    extra_urls: list[str] = []


class LicenseSection(Section):
    licensed_only: bool = False
    respect_opt_out: bool = True
    allow_domains: list[str] = []
    deny_domains: list[str] = []


class FilterSection(Section):
    tasks: Annotated[int, Field(ge=1)] = 8
    language: LanguageSection = LanguageSection()
    url: UrlSection = UrlSection()
    gopher_repetition: HeuristicSection = HeuristicSection()
    gopher_quality: HeuristicSection = HeuristicSection()
    c4: HeuristicSection = HeuristicSection(params={"filter_no_terminal_punct": False})
    fineweb: HeuristicSection = HeuristicSection()
    license: LicenseSection = LicenseSection()
    text_kind: TextKindSection = TextKindSection()
    # filter policies besides web (every step) and trusted (language only): name -> the steps it runs
    policies: dict[str, list[Literal["url", "license", "language", "gopher_repetition", "gopher_quality", "c4", "fineweb"]]] = {}

    @model_validator(mode="after")
    def _policy_names(self):
        taken = sorted(set(self.policies) & set(BUILTIN_POLICIES))
        if taken:
            raise ValueError(f"policies: {', '.join(taken)} is built in and cannot be redefined")
        return self

    @model_validator(mode="before")
    @classmethod
    def _shipped_technical_params(cls, data):
        """A heuristic without ``technical_params`` gets the shipped ones, so they are part of
        the config a run is identified by."""
        from curation.filters import TECHNICAL_PARAMS

        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, shipped in TECHNICAL_PARAMS.items():
            given = data.get(name, cls.model_fields[name].default)
            if isinstance(given, HeuristicSection):
                given = given.model_dump()
            if isinstance(given, dict) and given.get("technical_params") is None:
                data[name] = {**given, "technical_params": dict(shipped)}
        return data

    @model_validator(mode="after")
    def _params_fit_the_filters(self):
        from curation.filters import HEURISTIC_FILTERS

        for name, filter_class in HEURISTIC_FILTERS.items():
            heuristic = getattr(self, name)
            accepted = set(inspect.signature(filter_class.__init__).parameters) - {"self", "exclusion_writer"}
            for key in ("params", "technical_params"):
                unknown = sorted(set(getattr(heuristic, key)) - accepted)
                if unknown:
                    raise ValueError(f"{name}.{key}: unknown {unknown}; {filter_class.__name__} takes {sorted(accepted)}")
        return self


class MinhashSection(Section):
    n_grams: Annotated[int, Field(ge=1)] = 5
    buckets: Annotated[int, Field(ge=1)] = 14
    hashes_per_bucket: Annotated[int, Field(ge=1)] = 8
    seed: int = 1


class DedupSection(Section):
    tasks: Annotated[int, Field(ge=1)] = 8
    minhash: MinhashSection = MinhashSection()


class QualityClassifierSection(Section):
    """fastText quality classifier; training sets are SQL over the run's views (or files), DCLM-style:
    positives from a reference source the team names, negatives a random sample of the crawl."""

    positives: str  # SQL with a `text` column, e.g. select text from dedup where source = 'wiki'
    negatives: str  # e.g. select text from dedup where source = 'cc' using sample reservoir(5000 rows) repeatable (1)
    min_examples: Annotated[int, Field(ge=5)] = 30  # per class, below which training is refused
    min_roc_auc: Annotated[float, Field(ge=0, le=1)] = 0.8  # held-out floor; a weaker model is refused
    allow_weak: bool = False  # use a model under the floor anyway, with a warning in the manifest and summary
    params: dict[str, Any] = {}  # classifiers.quality.QualityParams
    keep: Literal["annotate", "threshold", "top_fraction"] = "annotate"
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5
    top_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    sample: Annotated[int, Field(ge=10)] = 5000  # documents scored to find the top-fraction cut-off


DEFAULT_URL_RULES = {  # host glob -> domain: weak labels for crawled pages
    "github.com": "code", "gitlab.com": "code", "bitbucket.org": "code",
    "stackoverflow.com": "forum", "*.stackexchange.com": "forum", "superuser.com": "forum", "serverfault.com": "forum",
    "*.wikipedia.org": "wiki", "*.wikibooks.org": "wiki",
    "arxiv.org": "papers", "*.biorxiv.org": "papers", "aclanthology.org": "papers",
    "docs.*": "docs", "*.readthedocs.io": "docs", "developer.mozilla.org": "docs",
}


class DomainClassifierSection(Section):
    """scikit-learn domain classifier; fills `domain` where the source does not say it.

    Without ``training`` SQL it learns from weak labels: documents of sources that declare their
    domain, and crawled pages whose URL host matches one of ``url_rules`` (host glob -> domain)."""

    training: str | None = None  # SQL with `text` and `label` columns; none: weak labels (below)
    url_rules: dict[str, str] = DEFAULT_URL_RULES
    max_per_label: Annotated[int, Field(ge=10)] = 5000  # weak-labelled examples kept per domain (a seeded sample)
    min_per_label: Annotated[int, Field(ge=2)] = 30  # a domain with fewer weak-labelled examples is not learnt
    params: dict[str, Any] = {}  # classifiers.domain.DomainParams
    unassigned: list[str] = ["web", "unknown"]  # domains the classifier may overwrite
    min_probability: Annotated[float, Field(ge=0, le=1)] | None = None
    fallback: str = "web"


class BenchmarkSection(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    path: str  # JSONL, JSONL.gz or Parquet
    fields: Annotated[list[str], Field(min_length=1)]


class ContaminationSection(Section):
    benchmarks: Annotated[list[BenchmarkSection], Field(min_length=1)]
    n: Annotated[int, Field(ge=3)] = 13
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.05  # fraction of an item's n-grams found
    action: Literal["drop", "redact", "annotate"] = "drop"


class ClassifySection(Section):
    tasks: Annotated[int, Field(ge=1)] = 8
    seed: int = 0
    domain: DomainClassifierSection | None = None
    quality: QualityClassifierSection | None = None
    contamination: ContaminationSection | None = None


class QualityBandSection(Section):
    low: Annotated[float, Field(ge=0, le=1)] = 0.3  # below: rewritten as wiki-style prose
    high: Annotated[float, Field(ge=0, le=1)] = 0.8  # at or above: turned into qa and knowledge_list


class RephraseSection(Section):
    """LLM rephrasing through an OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp server, Ollama)."""

    tasks: Annotated[int, Field(ge=1)] = 8
    endpoint: str | None = None  # base URL including /v1, e.g. http://gpu-node:8000/v1; none: documents pass through
    model: str = ""
    api_key_env: str | None = None  # the NAME of the environment variable holding the key
    styles: list[Literal["wiki", "qa", "distill", "knowledge_list"]] = ["wiki", "qa"]
    route_by_quality: QualityBandSection | None = None  # Nemotron-CC routing instead of fixed styles
    domains: list[str] | None = None  # which domains to rephrase; none: all
    where: str | None = None  # a SQL predicate over the input stage's columns, e.g. "quality_score < 0.3 and lang = 'en'"
    min_quality: float | None = None
    max_quality: float | None = None
    max_concurrency: Annotated[int, Field(ge=1)] = 16
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    max_retries: Annotated[int, Field(ge=0)] = 5
    temperature: Annotated[float, Field(ge=0)] | None = None
    max_output_tokens: Annotated[int, Field(ge=16)] = 2048
    context_tokens: Annotated[int, Field(ge=256)] = 8192
    budget_tokens: Annotated[int, Field(ge=1)] | None = None  # per rank
    allow_truncated: bool = False
    batch_size: Annotated[int, Field(ge=1)] = 256
    fail_fast_requests: Annotated[int, Field(ge=0)] = 8  # a rank stops when its first N requests all fail alike; 0: never

    @model_validator(mode="after")
    def _endpoint_needs_model(self):
        if self.endpoint and not self.model:
            raise ValueError("an endpoint needs model: the model name the server serves")
        return self


class TokenizerSection(Section):
    kind: Literal["train", "file", "gpt2"] = "train"  # train a byte-level BPE on the run's documents, a local tokenizer.json, or GPT-2's BPE
    path: str | None = None  # the tokenizer.json, for kind: file (the target model's tokenizer)
    vocab_size: Annotated[int, Field(ge=300, le=2**20)] = 8192
    sample_docs: Annotated[int, Field(ge=10)] = 5000
    eos_token: str = "<|endoftext|>"

    @model_validator(mode="after")
    def _file_needs_path(self):
        if self.kind == "file" and not self.path:
            raise ValueError("kind 'file' needs path: the tokenizer.json to use")
        return self


class TokenizeSection(Section):
    tasks: Annotated[int, Field(ge=1)] = 8
    tokenizer: TokenizerSection = TokenizerSection()
    validation_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.05  # each domain's held-out slice: the proxies' targets


class ExportSection(Section):
    mix: str | None = None  # a mix.yaml (weights: {domain: weight}); default: the natural, token-proportional mix
    token_budget: Annotated[int, Field(ge=1)] | None = None  # default: every training token once
    formats: Annotated[list[Literal["megatron", "olmo_core"]], Field(min_length=1)] = ["megatron", "olmo_core"]
    sequence_length: Annotated[int, Field(ge=8)] = 2048
    global_batch_size: Annotated[int, Field(ge=1)] = 64  # sequences per step: the budget is trained in whole batches
    max_repetition_ratio: Annotated[float, Field(gt=0)] = 4.0
    out: str = "{run_dir}/export"
    # a mix.yaml the mixer did not recommend: refuse it, export the natural mix instead, or export it anyway (--force)
    not_recommended: Literal["refuse", "natural", "export"] = "refuse"


class ProxyModelSection(Section):
    n_layers: Annotated[int, Field(ge=1)] = 2
    d_model: Annotated[int, Field(ge=8)] = 64
    n_heads: Annotated[int, Field(ge=1)] = 4
    context: Annotated[int, Field(ge=8)] = 128
    batch_size: Annotated[int, Field(ge=1)] = 16
    learning_rate: Annotated[float, Field(gt=0)] = 3e-3


class EvalTextSection(Section):
    """An evaluation text set: one text per JSONL row (e.g. benchmark questions)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    path: str
    fields: Annotated[list[str], Field(min_length=1)] = ["question"]


class TaskSection(Section):
    """An evaluation task: bits per byte of the gold answer given the prompt (mixes.tasks).

    ``preset`` (gsm8k, humaneval, mmlu) fills the format keys left unset; ``prompt`` and
    ``answer`` are templates over the row's fields (``answer`` may name a field), ``choices``
    the field(s) holding a choice task's options.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    path: str | None = None  # may be left out for a preset whose file installs with a package (mmlu)
    preset: str | None = None
    kind: Literal["answer", "choice"] | None = None
    prompt: str | None = None
    answer: str | None = None
    choices: str | list[str] | None = None
    few_shot: Annotated[int, Field(ge=0)] | None = None
    limit: Annotated[int, Field(ge=1)] | None = None  # items scored (a fixed sample); default: all
    separator: str | None = None


def task_file(section: TaskSection) -> str:
    """A task's file: its path, or where its preset's file installed (a ValueError if it did not)."""
    if section.path is not None:
        return section.path
    if section.preset not in INSTALLED_FILES:
        raise ValueError(f"task {section.name!r}: key 'path' is missing (the preset {section.preset!r} installs no file)")
    return str(installed_file(section.name, *INSTALLED_FILES[section.preset]))


class ProxiesSection(Section):
    model: ProxyModelSection = ProxyModelSection()
    token_budget: Annotated[int, Field(ge=1000)] = 200_000  # training tokens per proxy
    count: Annotated[int, Field(ge=4)] = 24  # mixtures: natural + one corner per domain + Dirichlet samples
    seeds: Annotated[list[int], Field(min_length=1)] = [0]
    strength_range: tuple[float, float] = (0.1, 5.0)  # Dirichlet concentration, spread on a log scale
    target_budget: Annotated[int, Field(ge=1)] | None = None  # the real run's tokens, for the repetition cap; default: all tokens once
    max_epochs: Annotated[float, Field(gt=0)] = 4.0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    eval_texts: list[EvalTextSection] = []
    tasks: list[TaskSection] = []


class TransferSection(Section):
    """Larger models on the chosen, the natural and sampled mixes: do the proxies' rankings hold?"""

    enabled: bool = False
    parameter_factor: Annotated[float, Field(gt=1)] = 4.0  # non-embedding parameters, times the proxy's
    token_factor: Annotated[float, Field(gt=1)] = 10.0  # training tokens, times proxies.token_budget
    sampled: Annotated[int, Field(ge=0)] = 2  # sampled mixes besides the chosen and the natural one


class MixSection(Section):
    target_weights: dict[str, float] = {}  # target -> weight in the objective; default: equal weights
    folds: Annotated[int, Field(ge=2)] = 5
    bounds: dict[str, tuple[float, float]] = {}  # domain -> (min weight, max weight)
    kl_weight: Annotated[float, Field(ge=0)] = 0.0  # pull toward the natural mix
    candidates: Annotated[int, Field(ge=100)] = 100_000  # RegMix: sampled mixtures scored by the regressor
    top_k: Annotated[int, Field(ge=1)] = 100
    validation_seeds: Annotated[list[int], Field(min_length=1)] = [101, 102, 103]
    min_cv_spearman: Annotated[float, Field(ge=-1, le=1)] = 0.5  # below it a mix is not recommended
    transfer: TransferSection = TransferSection()


class AnnealSection(Section):
    """The anneal (mid-training) mix over (domain, quality bucket) units, continuing a base proxy."""

    enabled: bool = True
    quality_edges: list[float] = [0.4, 0.8]  # quality_score buckets: q0 < 0.4 <= q1 < 0.8 <= q2; no score: unscored
    token_budget: Annotated[int, Field(ge=1000)] = 50_000  # anneal tokens per proxy, after the base's proxies.token_budget
    count: Annotated[int, Field(ge=4)] | None = None  # anneal mixtures: natural + one corner per unit + samples; default 2 x (units + 1)
    seeds: Annotated[list[int], Field(min_length=1)] = [0]
    target_budget: Annotated[int, Field(ge=1)] | None = None  # the real anneal's tokens (cap, mix.yaml token_budget); default: a tenth of the pre-training budget
    max_epochs: Annotated[float, Field(gt=0)] = 4.0  # repetitions of a unit within the anneal
    target_weights: dict[str, float] = {}  # target -> weight; default: mix.target_weights, else equal weights
    bounds: dict[str, tuple[float, float]] = {}  # unit (e.g. wiki/q2) -> (min weight, max weight)
    learning_rate: Annotated[float, Field(gt=0)] | None = None  # start of the linear decay to 0; default: the base run's last rate
    validation_seeds: Annotated[list[int], Field(min_length=1)] = [101, 102]

    @field_validator("quality_edges")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        # no mixes import here: config.py must not load torch
        if any(not math.isfinite(edge) for edge in value) or any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError(f"quality edges must be finite and strictly increasing, got {value}")
        return value


class PipelineConfig(Section):
    run: RunSection
    executor: ExecutorSection = ExecutorSection()
    demo_data: DemoDataSection = DemoDataSection()
    ingest: IngestSection = IngestSection()
    filter: FilterSection = FilterSection()
    dedup: DedupSection = DedupSection()
    classify: ClassifySection = ClassifySection()
    rephrase: RephraseSection = RephraseSection()
    tokenize: TokenizeSection = TokenizeSection()
    proxies: ProxiesSection = ProxiesSection()
    mix: MixSection = MixSection()
    anneal: AnnealSection = AnnealSection()
    export: ExportSection = ExportSection()

    @model_validator(mode="after")
    def _sources_fit_the_stages(self):
        policies = {*BUILTIN_POLICIES, *self.filter.policies}
        for index, source in enumerate(self.ingest.sources):
            where = f"ingest.sources.{index} ({source.name})"
            if source.filters not in policies:
                raise ValueError(f"{where}: filters {source.filters!r} is no policy; expected one of {sorted(policies)} (custom ones go in filter.policies)")
            if source.domain == CLASSIFY_DOMAIN and self.classify.domain is None:
                raise ValueError(f"{where}: domain: classify needs a domain classifier (classify.domain); or give the source a fixed domain")
        return self

    @property
    def run_dir(self) -> Path:
        """The run folder stages work in: for a root in a store, the run's local copy (pipelines.mirror)."""
        if self.run_remote is None:
            return Path(self.run.root) / self.run.name
        cache = Path(self.run.cache) if self.run.cache else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "curate" / "runs"
        return cache / re.sub(r"[^A-Za-z0-9_.\-]+", "_", self.run.root.rstrip("/")) / self.run.name

    @property
    def run_remote(self) -> str | None:
        """The run's URL when ``run.root`` is in object storage."""
        return f"{self.run.root.rstrip('/')}/{self.run.name}" if "://" in self.run.root else None

    def section_hash(self, section: str) -> str:
        """Hash of one section: a stage's outputs depend on it, not on where it ran."""
        payload = json.dumps(getattr(self, section).model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def config_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json", exclude={"executor"}), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def config_value(config: PipelineConfig, key: str):
    """The JSON value at a dotted key (``run.seed``, ``classify.contamination``)."""
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    return as_json(value)


def as_json(value):
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return [as_json(item) for item in value] if isinstance(value, (list, tuple)) else value


# Config fields that name files or folders; ``[]`` marks a list. Made absolute in the driver so
# that a worker started in another directory writes and reads the same places.
PATH_FIELDS = (
    "run.root", "run.cache", "demo_data.benchmarks[]", "ingest.sources[].paths[]", "ingest.sources[].commoncrawl.base_url", "tokenize.tokenizer.path",
    "classify.contamination.benchmarks[].path", "proxies.eval_texts[].path",
    "proxies.tasks[].path", "export.mix", "export.out",
)


def absolute_path(value: str, base: Path) -> str:
    """``value`` made absolute against ``base``; URLs and paths under ``{run_dir}`` stay as they are."""
    if "://" in value or value.startswith("{run_dir}"):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _resolve(node, parts: list[str], base: Path):
    if node is None:
        return None
    if not parts:
        return absolute_path(node, base) if isinstance(node, str) else node
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = node.get(head[:-2]) if isinstance(node, dict) else None
        if isinstance(items, list):
            node[head[:-2]] = [_resolve(item, rest, base) for item in items]
        return node
    if isinstance(node, dict) and head in node:
        node[head] = _resolve(node[head], rest, base)
    return node


def resolve_paths(data: dict, base: Path) -> dict:
    for spec in PATH_FIELDS:
        _resolve(data, spec.split("."), base)
    return data


def _describe(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"] and error["type"] == "value_error":  # a check across sections names its keys itself
        return message
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    got = error.get("input")
    shown = "" if error["type"] == "missing" or isinstance(got, (dict, list)) else f" (got {got!r})"
    return f"{key}: {message}{shown}"


def parse_config(data: object, source: str = "<config>", base: Path | None = None) -> PipelineConfig:
    """Validates a config mapping; relative paths in it are made absolute against ``base`` (the cwd)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level, got {type(data).__name__}")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as err:
        problems = [_describe(e) for e in err.errors()]
        shown = problems[0] if len(problems) == 1 else "invalid config\n  " + "\n  ".join(problems)
        raise ConfigError(f"{source}: {shown}") from None
    return PipelineConfig.model_validate(resolve_paths(config.model_dump(mode="json"), base or Path.cwd()))


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (the second would silently win)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def load_config(path: str | Path) -> PipelineConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (pass one with -c FILE)") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    return parse_config(data, str(path))


class UndeclaredConfigRead(RuntimeError):
    """A stage read a config key it does not declare: its identity would miss that key's edits."""


LOCATION_KEYS = {"run": {"name", "root", "cache", "storage"}}  # where a run lives, not what its outputs are
UNSCOPED_SECTIONS = {"executor", "demo_data"}  # how and on what machines it runs


class SectionView:
    """A config section as one stage may see it: only the keys that stage declares it reads."""

    def __init__(self, stage: str, name: str, section: Section, keys: set[str]):
        self._stage, self._name, self._section, self._keys = stage, name, section, keys

    def __getattr__(self, key: str):
        if key.startswith("_") or key not in self._keys:
            raise UndeclaredConfigRead(
                f"stage {self._stage!r} reads config key '{self._name}.{key}' but does not declare it in its `reads`"
            )
        return getattr(self._section, key)


def scoped_config(config: PipelineConfig, stage: str, reads: tuple[str, ...]) -> PipelineConfig:
    """``config`` with every key ``stage`` does not declare hidden behind a ``SectionView``."""
    views = {}
    for name in PipelineConfig.model_fields:
        if name in UNSCOPED_SECTIONS or name in reads:
            continue
        keys = {key.split(".", 1)[1] for key in reads if key.startswith(name + ".")} | LOCATION_KEYS.get(name, set())
        views[name] = SectionView(stage, name, getattr(config, name), keys)
    return config.model_copy(update=views)
