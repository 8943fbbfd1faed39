"""Runs stages in order on one Dask client and keeps the manifest and ledger current."""

import time
import uuid
from dataclasses import dataclass

from distributed import Client
from rich.console import Console
from rich.table import Table

from curation.errors import UserError
from pipelines.config import PipelineConfig, scoped_config
from pipelines.executor import DaskPipelineExecutor
from pipelines.ledger import (
    check_balanced,
    intake_count,
    ledger_rows_from_json,
    ledger_rows_to_json,
    stage_ledger,
    totals,
    write_ledger_table,
)
from pipelines.ledger import LedgerError
from pipelines.mirror import RunMirror, mirror_of
from pipelines.run import RunDir, now, package_versions
from pipelines.stages import STAGES, Stage, StagePlan
from pipelines.state import STALE, StageGraph


class StageOrderError(UserError):
    pass


@dataclass
class StageSummary:
    name: str
    counts: dict | None  # None for a job stage
    seconds: float
    ranks_run: int = 0
    ranks_skipped: int = 0
    note: str = ""


def progress_printer(console: Console, stage: str, mirror: RunMirror | None = None):
    """Prints each finished rank; for a run in a store, also sends what the rank wrote, so a
    run killed here resumes elsewhere from the ranks done."""

    def report(done: int, total: int, stats, seconds: float) -> None:
        docs = intake_count([step.to_dict() for step in stats.stats]) if stats.stats else 0
        rate = docs / seconds if seconds > 0 else 0.0
        eta = seconds / done * (total - done) if done else 0.0
        console.print(f"[dim]{stage}: {done}/{total} ranks · {docs:,} docs · {rate:,.0f} docs/s · ETA {eta:,.0f}s[/dim]")
        if mirror is not None:
            mirror.push(complete=False)

    return report


def check_upstream(graph: StageGraph, stage: Stage) -> None:
    for up in stage.upstream:
        state = graph.state(up)
        if not state.usable:
            raise StageOrderError(
                f"stage {stage.name!r} reads {up!r}, which is {state.describe()}: run `curate {up}` first (or `curate run`)"
            )


def resumable(previous: dict | None, identity: str, upstream_outputs: dict) -> bool:
    """An interrupted or failed run of this very identity: its finished ranks are kept. A failure while
    planning is not one: the outputs there are the earlier ones, put back."""
    return (
        previous is not None
        and previous.get("state") in ("running", "failed")
        and previous.get("failed_in") != "plan"
        and previous.get("identity") == identity
        and previous.get("upstream_outputs", {}) == upstream_outputs
    )


def cross_stage_check(stage: Stage, counts: dict, manifest: dict) -> None:
    """Docs in of a stage = what the stages it reads kept: nothing lost or invented between stages."""
    if not stage.upstream:
        return
    kept = {up: manifest["stages"][up]["counts"]["kept"] for up in stage.upstream}
    if counts["in"] != sum(kept.values()):
        raise LedgerError(
            f"stage {stage.name!r} read {counts['in']:,} documents but {', '.join(f'{u!r} kept {n:,}' for u, n in kept.items())}: "
            "documents were lost or invented between stages"
        )


def run_stage(
    config: PipelineConfig, stage: Stage, client: Client, console: Console, restart: bool = False
) -> StageSummary:
    """Runs one stage unless it is fresh: refuses a stale upstream, resumes an interrupted attempt,
    otherwise sets the old outputs aside, plans (which validates), then runs; the manifest says
    ``failed`` with the error whatever goes wrong, and ``complete`` only when the ledger balanced."""
    run = RunDir(config.run_dir)
    manifest = run.read_manifest()
    graph = StageGraph(config, run, STAGES, manifest)
    check_upstream(graph, stage)
    current = graph.state(stage.name)
    previous = manifest["stages"].get(stage.name)
    if current.usable and not restart:
        console.print(f"[dim]{stage.name}: fresh, nothing to do (--restart redoes it)[/dim]")
        return StageSummary(stage.name, previous.get("counts"), 0.0, note="fresh")
    if current.state == STALE:
        console.print(f"[yellow]{stage.name}: stale ({'; '.join(current.reasons)}): redoing it[/yellow]")
    identity = current.identity
    upstream_outputs = {up: manifest["stages"][up].get("output_id") for up in stage.upstream}
    entry = {**identity.to_json(), "upstream_outputs": upstream_outputs, "started": now()}
    manifest.setdefault("inputs", {}).update(graph.fingerprints.seen)
    manifest.update(run=config.run.name, packages=package_versions())
    scoped = scoped_config(config, stage.name, stage.reads + stage.checks)
    resume = not restart and resumable(previous, identity.digest, upstream_outputs)
    parked = None
    if not resume:
        manifest["stages"][stage.name] = entry | {"state": "clearing"}
        run.write_manifest(manifest)
        parked = run.set_aside(stage.name)
    start = time.monotonic()
    try:
        plan = stage.plan(scoped, run) if stage.is_document_stage else None
    except BaseException as err:
        run.restore(stage.name, parked)
        mark_failed(run, manifest, stage.name, entry | {"failed_in": "plan"}, err)
        raise
    run.discard(parked)
    entry["state"] = "running"
    manifest["stages"][stage.name] = entry
    run.write_manifest(manifest)
    try:
        if plan is None:
            summary = run_job(scoped, stage, client, console, run, entry)
        else:
            summary = run_plan(scoped, stage, plan, client, console, run, manifest, entry)
    except BaseException as err:
        mark_failed(run, manifest, stage.name, entry, err)
        raise
    summary.seconds = time.monotonic() - start
    entry.update(state="complete", output_id=uuid.uuid4().hex[:16], seconds=round(summary.seconds, 3), finished=now())
    run.write_manifest(manifest)
    mirror = mirror_of(config)
    if mirror is not None:  # the store holds each stage as it completes
        mirror.push(complete=True)
    return summary


def mark_failed(run: RunDir, manifest: dict, name: str, entry: dict, err: BaseException) -> None:
    state = "unbalanced" if isinstance(err, LedgerError) else "failed"
    message = "interrupted" if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {err}"
    manifest["stages"][name] = entry | {"state": state, "error": message, "finished": now()}
    run.write_manifest(manifest)


def run_plan(
    config: PipelineConfig, stage: Stage, plan: StagePlan, client: Client, console: Console, run: RunDir, manifest: dict, entry: dict
) -> StageSummary:
    mirror = mirror_of(config)
    for sub in plan.before:
        console.print(f"[dim]{stage.name}: {sub.name} ({sub.tasks} tasks)[/dim]")
        DaskPipelineExecutor(
            sub.pipeline,
            tasks=sub.tasks,
            logging_dir=str(run.logs_dir(stage.name) / f"before-{sub.name}"),
            client=client,
            name=f"{stage.name}-{sub.name}",
            run_dir=run.path,
        ).run()
    executor = DaskPipelineExecutor(
        plan.pipeline,
        tasks=plan.tasks,
        logging_dir=str(run.logs_dir(stage.name)),
        client=client,
        name=stage.name,
        on_progress=progress_printer(console, stage.name, mirror),
        run_dir=run.path,
    )
    entry["tasks"] = plan.tasks
    executor.run()
    rows = stage_ledger(stage.name, run.stage_dir(stage.name), run.logs_dir(stage.name), plan.tasks)
    entry.update(ranks=ledger_rows_to_json(rows), counts=totals(rows), ranks_run=executor.ranks_run, ranks_skipped=executor.ranks_skipped)
    write_ledger_table(run.ledger_path, [r for e in manifest["stages"].values() for r in ledger_rows_from_json(e.get("ranks", []))])
    check_balanced(rows)
    cross_stage_check(stage, entry["counts"], manifest)
    if stage.describe is not None:
        entry.update(stage.describe(config, run))
    return StageSummary(stage.name, entry["counts"], 0.0, len(executor.ranks_run), len(executor.ranks_skipped), entry.get("note", ""))


def run_job(config: PipelineConfig, stage: Stage, client: Client, console: Console, run: RunDir, entry: dict) -> StageSummary:
    result = stage.job(config, run, client, console)
    entry["result"] = result
    note = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items() if isinstance(v, (int, float, str)))
    return StageSummary(stage.name, None, 0.0, note=note)


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
        removed = removed_summary(s.counts["removed"]) + (f"; {s.note}" if s.note else "")
        created = f"{s.counts['created']:,}" if s.counts["created"] else "-"
        table.add_row(s.name, f"{s.counts['in']:,}", created, f"{s.counts['kept']:,}", removed, f"{s.seconds:.1f}")
    return table
