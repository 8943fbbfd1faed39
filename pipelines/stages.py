"""The stage graph: what each stage reads, which steps it runs, and what it depends on."""

import glob
from collections.abc import Callable
from dataclasses import dataclass, field

from curation.extract import HtmlExtractor
from curation.intake import StageIntake
from curation.shards import RemovedSink, ShardWriter
from curation.sources.warc import WarcSource
from pipelines.config import ConfigError, PipelineConfig
from pipelines.run import RunDir


@dataclass(frozen=True)
class StagePlan:
    pipeline: list
    tasks: int
    inputs: list[str] = field(default_factory=list)  # files from outside the run, fingerprinted


@dataclass(frozen=True)
class Stage:
    name: str
    section: str  # the config section its outputs depend on
    depends: str | None
    plan: Callable[[PipelineConfig, RunDir], StagePlan]
    about: str


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


def plan_ingest(config: PipelineConfig, run: RunDir) -> StagePlan:
    section = config.ingest
    paths = expand_inputs(section.warc, run, "ingest.warc")
    stage_dir = run.stage_dir("ingest")
    removed = RemovedSink(stage_dir)
    pipeline = [
        WarcSource(paths, max_record_bytes=section.max_record_bytes, default_metadata={"domain": section.default_domain}),
        StageIntake(removed),
        HtmlExtractor(
            removed,
            timeout=section.extract.timeout_s,
            favor_precision=section.extract.favor_precision,
            include_tables=section.extract.include_tables,
        ),
        ShardWriter(stage_dir),
    ]
    return StagePlan(pipeline, tasks=min(section.tasks, len(paths)), inputs=paths)


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in [
        Stage("ingest", "ingest", None, plan_ingest, "WARC records -> HTML extracted to text"),
    ]
}
