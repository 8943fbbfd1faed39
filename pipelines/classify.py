"""The classify stage's models: trained from SQL over the run, once, before the ranks run.

``curate classifiers train`` (``make train-classifiers``) trains them on their own;
``curate classify`` trains whatever is missing first. Models and their reports live in
``runs/<run>/classify/_models/{quality,domain}/``.
"""

from pathlib import Path

import json

from classifiers.benchmarks import parse_benchmark_config
from classifiers.contamination_step import ContaminationStep, build_index_file, merge_reports
from classifiers.domain import DomainParams, DomainStep, train_domain
from classifiers.quality import QualityParams, QualityStep, train_quality
from pipelines.config import ConfigError, PipelineConfig
from pipelines.run import RunDir
from pipelines.sql import connect

QUALITY_MODEL = "quality.ftz"
DOMAIN_MODEL = "domain.joblib"


def models_dir(run: RunDir) -> Path:
    return run.stage_dir("classify") / "_models"


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


def quality_model_path(config: PipelineConfig, run: RunDir) -> Path:
    section = config.classify.quality
    out = models_dir(run) / "quality"
    params = QualityParams(**({"quantize": True} | section.params))
    model = out / (QUALITY_MODEL if params.quantize else "quality.bin")
    if not model.exists():
        positives = [r[0] for r in rows_from_sql(run, section.positives, "classify.quality.positives", 1)]
        negatives = [r[0] for r in rows_from_sql(run, section.negatives, "classify.quality.negatives", 1)]
        train_quality(positives, negatives, out, params, seed=config.classify.seed)
    return model


def domain_model_path(config: PipelineConfig, run: RunDir) -> Path:
    section = config.classify.domain
    out = models_dir(run) / "domain"
    model = out / DOMAIN_MODEL
    if not model.exists():
        rows = rows_from_sql(run, section.training, "classify.domain.training", 2)
        train_domain([r[0] for r in rows], [str(r[1]) for r in rows], out, DomainParams(**section.params), seed=config.classify.seed)
    return model


def train_classifiers(config: PipelineConfig, run: RunDir) -> list[Path]:
    """Trains the configured models that are missing; returns the report files."""
    reports = []
    if config.classify.domain:
        reports.append(domain_model_path(config, run).with_name("domain.json"))
    if config.classify.quality:
        reports.append(quality_model_path(config, run).with_name("quality.json"))
    return reports


def contamination_dir(run: RunDir) -> Path:
    return run.stage_dir("classify") / "_contamination"


def benchmark_specs(config: PipelineConfig, run: RunDir) -> list:
    entries = [b.model_dump() | {"path": b.path.replace("{run_dir}", str(run.path))} for b in config.classify.contamination.benchmarks]
    return parse_benchmark_config(entries)


def contamination_step(config: PipelineConfig, run: RunDir, removed, stage: str = "classify") -> ContaminationStep:
    """The benchmark index is built once, in the driver, before the ranks load it; ``stage``
    is whose per-rank reports these are (rephrase checks its synthetic documents too)."""
    section = config.classify.contamination
    try:
        index = build_index_file(benchmark_specs(config, run), contamination_dir(run) / "index.npz", n=section.n)
    except (OSError, ValueError) as err:
        raise ConfigError(f"classify.contamination.benchmarks: {err}") from None
    return ContaminationStep(
        index, run.stage_dir(stage) / "_contamination" / "reports", action=section.action,
        removed=removed if section.action != "annotate" else None, threshold=section.threshold,
    )


def contamination_report(config: PipelineConfig, run: RunDir) -> dict:
    """After the stage: items of each benchmark found in the corpus, as a report and the `contamination` view's rows."""
    if not config.classify.contamination:
        return {}
    merged = merge_reports(contamination_dir(run) / "reports")
    (contamination_dir(run) / "report.json").write_text(json.dumps(merged, indent=1, sort_keys=True))
    with open(contamination_dir(run) / "benchmarks.jsonl", "w") as rows:
        for row in merged["benchmarks"]:
            rows.write(json.dumps(row) + "\n")
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
