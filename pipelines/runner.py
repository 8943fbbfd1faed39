"""Runs stages in order on one Dask client and keeps the manifest and ledger current."""

import time
from dataclasses import dataclass

from distributed import Client
from rich.console import Console
from rich.table import Table

from pipelines.config import PipelineConfig
from pipelines.executor import DaskPipelineExecutor, StageFailed
from pipelines.ledger import (
    check_balanced,
    intake_count,
    ledger_rows_from_json,
    ledger_rows_to_json,
    stage_ledger,
    totals,
    write_ledger_table,
)
from pipelines.run import RunDir, fingerprint, now, package_versions
from pipelines.stages import Stage


class StageOrderError(RuntimeError):
    pass


@dataclass
class StageSummary:
    name: str
    counts: dict | None  # None for a job stage
    seconds: float
    ranks_run: int = 0
    ranks_skipped: int = 0
    note: str = ""


def stage_hash(config: PipelineConfig, stage: Stage, manifest: dict) -> str:
    """The stage's config section hash chained with its dependency's, so upstream edits show."""
    upstream = manifest["stages"].get(stage.depends, {}).get("config_hash", "") if stage.depends else ""
    return f"{config.section_hash(stage.section)}:{upstream[:16]}"


def progress_printer(console: Console, stage: str):
    def report(done: int, total: int, stats, seconds: float) -> None:
        docs = intake_count([step.to_dict() for step in stats.stats]) if stats.stats else 0
        rate = docs / seconds if seconds > 0 else 0.0
        eta = seconds / done * (total - done) if done else 0.0
        console.print(f"[dim]{stage}: {done}/{total} ranks · {docs:,} docs · {rate:,.0f} docs/s · ETA {eta:,.0f}s[/dim]")

    return report


def run_stage(
    config: PipelineConfig, stage: Stage, client: Client, console: Console, restart: bool = False
) -> StageSummary:
    run = RunDir(config.run_dir)
    manifest = run.read_manifest()
    if stage.depends and manifest["stages"].get(stage.depends, {}).get("state") != "complete":
        raise StageOrderError(f"stage {stage.name!r} needs {stage.depends!r} first: run `curate {stage.depends}`")
    wanted = stage_hash(config, stage, manifest)
    previous = manifest["stages"].get(stage.name)
    if previous and previous.get("config_hash") != wanted:
        restart = restart or stage.cheap
        if not restart:
            raise StageOrderError(
                f"{run.path}: stage {stage.name!r} was run with another config "
                f"(section '{stage.section}' or an upstream stage changed); rerun with --restart to redo it"
            )
    if restart:
        run.clear_stage(stage.name)
    if stage.job is not None:
        return run_job(config, stage, client, console, run, manifest, wanted)
    plan = stage.plan(config, run)
    executor = DaskPipelineExecutor(
        plan.pipeline,
        tasks=plan.tasks,
        logging_dir=str(run.logs_dir(stage.name)),
        client=client,
        name=stage.name,
        on_progress=progress_printer(console, stage.name),
    )
    entry = {"state": "running", "config_hash": wanted, "tasks": plan.tasks, "started": now()}
    manifest.setdefault("inputs", {}).update({path: fingerprint(path) for path in plan.inputs})
    manifest.update(run=config.run.name, config_hash=config.config_hash(), packages=package_versions())
    manifest["stages"][stage.name] = entry
    run.write_manifest(manifest)
    start = time.monotonic()
    try:
        for sub in plan.before:
            console.print(f"[dim]{stage.name}: {sub.name} ({sub.tasks} tasks)[/dim]")
            DaskPipelineExecutor(
                sub.pipeline,
                tasks=sub.tasks,
                logging_dir=str(run.logs_dir(stage.name) / f"before-{sub.name}"),
                client=client,
                name=f"{stage.name}-{sub.name}",
            ).run()
        executor.run()
    except StageFailed as err:
        entry.update(state="failed", error=str(err), finished=now())
        run.write_manifest(manifest)
        raise
    rows = stage_ledger(stage.name, run.stage_dir(stage.name), run.logs_dir(stage.name), plan.tasks)
    seconds = time.monotonic() - start
    entry.update(
        ranks=ledger_rows_to_json(rows),
        counts=totals(rows),
        seconds=round(seconds, 3),
        ranks_run=executor.ranks_run,
        ranks_skipped=executor.ranks_skipped,
        finished=now(),
    )
    try:
        check_balanced(rows)
    except Exception as err:
        entry.update(state="unbalanced", error=str(err))
        raise
    finally:
        run.write_manifest(manifest)
        write_ledger_table(run.ledger_path, [r for e in manifest["stages"].values() for r in ledger_rows_from_json(e.get("ranks", []))])
    if stage.describe is not None:
        entry.update(stage.describe(config, run))
    entry["state"] = "complete"
    run.write_manifest(manifest)
    return StageSummary(stage.name, entry["counts"], seconds, len(executor.ranks_run), len(executor.ranks_skipped))


def run_job(config: PipelineConfig, stage: Stage, client: Client, console: Console, run: RunDir, manifest: dict, wanted: str) -> StageSummary:
    entry = {"state": "running", "config_hash": wanted, "started": now()}
    manifest["stages"][stage.name] = entry
    run.write_manifest(manifest)
    start = time.monotonic()
    try:
        result = stage.job(config, run, client, console)
    except Exception as err:
        entry.update(state="failed", error=f"{type(err).__name__}: {err}", finished=now())
        run.write_manifest(manifest)
        raise
    seconds = time.monotonic() - start
    entry.update(state="complete", result=result, seconds=round(seconds, 3), finished=now())
    run.write_manifest(manifest)
    note = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items() if isinstance(v, (int, float, str)))
    return StageSummary(stage.name, None, seconds, note=note)


def removed_summary(removed: dict[str, int], shown: int = 6) -> str:
    """The largest drop reasons; the rest are one `curate sql` away."""
    ranked = sorted(removed.items(), key=lambda item: -item[1])
    text = ", ".join(f"{reason} {n:,}" for reason, n in ranked[:shown]) or "-"
    if len(ranked) > shown:
        text += f", +{len(ranked) - shown} more reasons ({sum(n for _, n in ranked[shown:]):,} docs)"
    return text


def summary_table(summaries: list[StageSummary], run: RunDir) -> Table:
    table = Table(title=f"curate run: {run.path}")
    for column in ("stage", "docs in", "created", "kept", "removed by reason / result", "seconds"):
        table.add_column(column, justify="left" if column.startswith(("stage", "removed")) else "right")
    for s in summaries:
        if s.counts is None:
            table.add_row(s.name, "-", "-", "-", s.note, f"{s.seconds:.1f}")
            continue
        removed = removed_summary(s.counts["removed"])
        created = f"{s.counts['created']:,}" if s.counts["created"] else "-"
        table.add_row(s.name, f"{s.counts['in']:,}", created, f"{s.counts['kept']:,}", removed, f"{s.seconds:.1f}")
    return table
