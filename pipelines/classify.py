"""The classify stage's models: trained from SQL over the run, once, before the ranks run.

``curate classifiers train`` (``make train-classifiers``) trains them on their own;
``curate classify`` trains whatever is missing first. Models and their reports live in
``runs/<run>/classify/_models/{quality,domain}/``. A model kept from an earlier run is
checked against its report and loaded in the driver before the ranks load it; one that
is damaged is trained again, with a note.
"""

import dataclasses
import difflib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from classifiers.benchmarks import BenchmarkFileError, parse_benchmark_config
from classifiers.contamination_step import ContaminationStep, build_index_file, merge_reports
from curation.atomic import write_text_atomic
from classifiers.domain import DomainClassifier, DomainDataError, DomainParams, DomainStep, train_domain
from classifiers.quality import (
    QualityDataError,
    QualityParams,
    QualityScorer,
    QualityStep,
    report_path_for,
    train_quality,
)
from classifiers.reports import read_json
from pipelines.config import ConfigError, DomainClassifierSection, PipelineConfig, QualityClassifierSection
from pipelines.run import RunDir
from pipelines.sql import connect

QUALITY_MODEL = "quality.ftz"
DOMAIN_MODEL = "domain.joblib"

logger = logging.getLogger(__name__)
Params = TypeVar("Params")


def rows_from_sql(run: RunDir, sql: str, key: str, columns: int) -> list[tuple]:
    con = connect(run.path)
    try:
        cursor = con.execute(sql.replace("{run_dir}", str(run.path)))
        rows = cursor.fetchall()
    except Exception as err:
        raise ConfigError(f"{key}: the query failed: {err}") from None
    finally:
        con.close()
    if not rows or len(rows[0]) != columns:
        raise ConfigError(f"{key}: expected {columns} column(s) and at least one row, got {len(rows)} rows")
    return rows


def check_classifier_params(config: PipelineConfig) -> None:
    """Raises ConfigError for a key or value in classify.quality.params or classify.domain.params that the classifier rejects."""
    if config.classify.quality:
        quality_params(config.classify.quality)
    if config.classify.domain:
        domain_params(config.classify.domain)


def quality_params(section: QualityClassifierSection) -> QualityParams:
    """The section's fastText settings; the stage quantizes unless told otherwise."""
    return classifier_params(QualityParams, {"quantize": True} | section.params, "classify.quality.params")


def domain_params(section: DomainClassifierSection) -> DomainParams:
    return classifier_params(DomainParams, section.params, "classify.domain.params")


def classifier_params(kind: type[Params], params: dict, key: str) -> Params:
    """``kind(**params)``, its field types checked; a ConfigError naming ``key`` for an unknown key or a bad value."""
    names = [field.name for field in dataclasses.fields(kind)]
    unknown = [suggested(name, names) for name in params if name not in names]
    if unknown:
        keys = "key" if len(unknown) == 1 else "keys"
        raise ConfigError(f"{key}: unknown {keys} {', '.join(unknown)}; {kind.__name__} takes [{', '.join(names)}]")
    try:
        return TypeAdapter(kind).validate_python(params)
    except ValidationError as err:
        raise ConfigError("; ".join(params_problem(key, problem) for problem in err.errors())) from None


def suggested(name: str, names: list[str]) -> str:
    """``'epochz'``, and the field it is probably a typo of: ``'epochz' (did you mean 'epoch'?)``."""
    close = difflib.get_close_matches(name, names, n=1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


def params_problem(key: str, problem: dict) -> str:
    """One pydantic error as ``key.field: what is wrong (got value)``; a check of the whole (``__post_init__``) as ``key: why``."""
    where = ".".join([key, *map(str, problem["loc"])])
    if "error" in problem.get("ctx", {}):
        return f"{where}: {problem['ctx']['error']}"
    return f"{where}: {problem['msg']} (got {problem['input']!r})"


def reusable_model(model: Path, report: Path, load: Callable[[Path], object]) -> bool:
    """Whether ``model``, trained earlier, can be used as it is; if it is there but damaged, says so in one line."""
    if not model.exists():
        return False
    problem = saved_model_problem(model, report, load)
    if problem:
        logger.warning("%s: %s; retraining it", model, problem)
    return problem is None


def saved_model_problem(model: Path, report: Path, load: Callable[[Path], object]) -> str | None:
    """Why ``model`` cannot be used, or None.

    The report is written last, with the model's size: a model without one is what an
    unfinished training left, and one of another size is cut short. The size is checked
    before loading, since fastText loads a short file without complaint (or crashes).
    """
    if not report.exists():
        return f"it has no report {report.name}: its training did not finish"
    try:
        recorded = read_json(report).get("model_bytes")
    except (OSError, ValueError) as err:
        return f"its report {report.name} does not read ({one_line(err)})"
    if recorded is None:
        return f"its report {report.name} records no model size (written before curate checked one)"
    size = model.stat().st_size
    if size != recorded:
        return f"it holds {size} bytes where its report records {recorded}"
    try:
        load(model)
    except Exception as err:  # whatever stops it loading, a retraining replaces the file
        return f"it does not load ({one_line(err)})"
    return None


def one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def quality_model_file(config: PipelineConfig, run: RunDir) -> Path:
    """Where the quality model is kept (``.ftz`` when quantized)."""
    return run.models_dir("quality") / (QUALITY_MODEL if quality_params(config.classify.quality).quantize else "quality.bin")


def quality_model_path(config: PipelineConfig, run: RunDir) -> Path:
    """The quality model, checked in the driver (see ``reusable_model``); trained first when missing or damaged."""
    section = config.classify.quality
    params = quality_params(section)
    out = run.models_dir("quality")
    model = quality_model_file(config, run)
    if not reusable_model(model, report_path_for(model), lambda path: QualityScorer(path).model):
        examples = {}
        for key in ("positives", "negatives"):
            examples[key] = [r[0] for r in rows_from_sql(run, getattr(section, key), f"classify.quality.{key}", 1)]
            if len(examples[key]) < section.min_examples:
                raise ConfigError(
                    f"classify.quality.{key}: the query returned {len(examples[key])} examples, fewer than "
                    f"min_examples ({section.min_examples}): widen the query or name a larger reference source"
                )
        try:
            train_quality(examples["positives"], examples["negatives"], out, params, seed=config.classify.seed)
        except QualityDataError as err:
            raise ConfigError(f"classify.quality.{err.examples}: the query returned {err}") from None
    weak = quality_weakness(section, read_json(report_path_for(model)))
    if weak and not section.allow_weak:
        raise ConfigError(f"classify.quality: {weak}: add examples or sharpen the queries, or set classify.quality.allow_weak: true to use it anyway")
    if weak:
        logger.warning("classify.quality: %s; used because allow_weak is set", weak)
    return model


def quality_weakness(section: QualityClassifierSection, report: dict) -> str | None:
    """Why the trained quality model is too weak to use (held-out ROC-AUC under the floor), or None."""
    heldout = report.get("heldout", {})
    roc_auc = heldout.get("roc_auc")
    if roc_auc is None or roc_auc >= section.min_roc_auc:
        return None
    size = sum(report.get("data", {}).get("heldout", {}).values())
    return f"the model is weak: held-out ROC-AUC {roc_auc:.3f} < min_roc_auc {section.min_roc_auc} on {size} held-out examples"


def classify_report(config: PipelineConfig, run: RunDir) -> dict:
    """After the stage: contamination found, the domain model's held-out figures, and a warning
    for a weak model used on purpose."""
    facts = contamination_report(config, run)
    domain_report = run.models_dir("domain") / "domain.json"
    if config.classify.domain and domain_report.is_file():
        heldout = read_json(domain_report)["heldout"]
        facts["domain_model"] = {"heldout_macro_f1": heldout["macro_f1"]} | (
            {"heldout_agreement": heldout["agreement_by_origin"]} if "agreement_by_origin" in heldout else {}
        )
    section = config.classify.quality
    weak = quality_weakness(section, read_json(report_path_for(quality_model_file(config, run)))) if section else None
    if weak:
        facts |= {"warnings": [f"quality model used although {weak.removeprefix('the model is ')}"], "note": f"WARNING: quality {weak}"}
    return facts


def domain_model_path(config: PipelineConfig, run: RunDir) -> Path:
    """The domain model, checked in the driver (see ``reusable_model``); trained first when missing or damaged."""
    section = config.classify.domain
    params = domain_params(section)
    out = run.models_dir("domain")
    model = out / DOMAIN_MODEL
    if reusable_model(model, model.with_name("domain.json"), lambda path: DomainClassifier(path).model):
        return model
    query = section.training or weak_label_sql(section, config.classify.seed)
    key = "classify.domain.training" if section.training else "classify.domain.url_rules"
    rows = rows_from_sql(run, query, key, 2 if section.training else 3)
    origins = None if section.training else [r[2] for r in rows]
    try:
        train_domain([r[0] for r in rows], [str(r[1]) for r in rows], out, params, seed=config.classify.seed, origins=origins)
    except DomainDataError as err:
        raise ConfigError(f"{key}: the query returned {err}") from None
    return model


HOST = r"regexp_replace(lower(regexp_extract(url, '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#]+)', 1)), '^www\.', '')"


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def weak_label_sql(section: DomainClassifierSection, seed: int) -> str:
    """Training examples without ground truth: documents whose source declared their domain, and
    crawled pages whose URL host matches a rule (the first rule that matches), at most
    ``max_per_label`` a domain, a seeded sample; a domain with fewer than ``min_per_label`` is
    left out (the classifier never predicts it)."""
    unassigned = ", ".join(sql_literal(domain) for domain in section.unassigned) or "NULL"
    rules = " ".join(f"WHEN {HOST} GLOB {sql_literal(glob)} THEN {sql_literal(domain)}" for glob, domain in section.url_rules.items())
    by_rule = f"CASE {rules} END" if rules else "NULL"
    declared = f"(domain IS NOT NULL AND domain NOT IN ({unassigned}))"
    return f"""
        SELECT text, label, origin FROM (
            SELECT text, label, origin, row_number() OVER (PARTITION BY label ORDER BY hash(id || {sql_literal(str(seed))})) AS n,
                   count(*) OVER (PARTITION BY label) AS examples
            FROM (SELECT id, text, CASE WHEN {declared} THEN domain WHEN url IS NOT NULL THEN {by_rule} END AS label,
                         CASE WHEN {declared} THEN 'source' ELSE 'url_rule' END AS origin FROM dedup)
            WHERE label IS NOT NULL)
        WHERE n <= {section.max_per_label} AND examples >= {section.min_per_label} ORDER BY label, n"""


def train_classifiers(config: PipelineConfig, run: RunDir) -> list[Path]:
    """Trains the configured models that are missing or damaged; returns the report files."""
    reports = []
    if config.classify.domain:
        reports.append(domain_model_path(config, run).with_name("domain.json"))
    if config.classify.quality:
        reports.append(quality_model_path(config, run).with_name("quality.json"))
    return reports


def benchmark_specs(config: PipelineConfig, run: RunDir) -> list:
    entries = [b.model_dump() | {"path": b.path.replace("{run_dir}", str(run.path))} for b in config.classify.contamination.benchmarks]
    return parse_benchmark_config(entries)


def contamination_step(config: PipelineConfig, run: RunDir, removed, stage: str = "classify") -> ContaminationStep:
    """The benchmark index is built once, in the driver, before the ranks load it; ``stage``
    is whose per-rank reports these are (rephrase checks its synthetic documents too)."""
    section = config.classify.contamination
    try:
        index = build_index_file(benchmark_specs(config, run), run.contamination_dir() / "index.npz", n=section.n)
    except (BenchmarkFileError, OSError, ValueError) as err:
        raise ConfigError(f"classify.contamination.benchmarks: {err}") from None
    return ContaminationStep(
        index, run.contamination_dir(stage) / "reports", action=section.action,
        removed=removed if section.action != "annotate" else None, threshold=section.threshold,
    )


def contamination_report(config: PipelineConfig, run: RunDir) -> dict:
    """After the stage: items of each benchmark found in the corpus, as a report and the `contamination` view's rows."""
    if not config.classify.contamination:
        return {}
    merged = merge_reports(run.contamination_dir() / "reports")
    write_text_atomic(run.contamination_dir() / "report.json", json.dumps(merged, indent=1, sort_keys=True))
    write_text_atomic(run.contamination_benchmarks, "".join(json.dumps(row) + "\n" for row in merged["benchmarks"]))
    summary = {row["benchmark"]: {k: row[k] for k in ("items", "items_found", "documents")} for row in merged["benchmarks"]}
    return {"contamination": summary, "benchmark_row_problems": len(merged["row_problems"])}


def classifier_steps(config: PipelineConfig, run: RunDir, removed) -> list:
    section = config.classify
    steps = []
    if section.domain:
        d = section.domain
        steps.append(DomainStep(domain_model_path(config, run), d.unassigned, d.min_probability, d.fallback))
    if section.quality:
        q = section.quality
        model = quality_model_path(config, run)
        if q.keep == "annotate":
            steps.append(QualityStep(model))
        elif q.keep == "threshold":
            steps.append(QualityStep(model, removed, q.threshold))
        else:
            sample = [r[0] for r in rows_from_sql(run, f"SELECT text FROM dedup USING SAMPLE reservoir({q.sample} ROWS) REPEATABLE ({section.seed})", "classify.quality.sample", 1)]
            steps.append(QualityStep.keeping_top_fraction(model, q.top_fraction, sample, removed))
    if section.contamination:
        steps.append(contamination_step(config, run, removed))
    return steps
