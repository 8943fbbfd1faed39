"""``curate``: run stages, inspect runs with SQL, make the demo corpus."""

import argparse
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from rich.console import Console
from rich.text import Text
from rich.table import Table

from curation.errors import UserError
from pipelines.config import ConfigError, PipelineConfig, load_config
from pipelines.executor import StageFailed, dask_client
from pipelines.ledger import LedgerError
from pipelines.mirror import run_folder
from pipelines.run import RunDir
from pipelines.runner import run_stage, summary_table
from pipelines.stages import STAGES
from pipelines.state import StageGraph

DEFAULT_CONFIG = "curate.yaml"  # in the directory curate runs in
console = Console(stderr=True)
stdout = Console()


def with_overrides(config: PipelineConfig, args) -> PipelineConfig:
    executor = config.executor.model_copy(
        update={k: v for k, v in (("cluster", args.cluster), ("workers", args.workers)) if v is not None}
    )
    update = {"executor": executor}
    export = {"mix": args.mix} if getattr(args, "mix", None) else {}
    if getattr(args, "force", False):
        export["not_recommended"] = "export"
    if export:
        update["export"] = config.export.model_copy(update=export)
    return config.model_copy(update=update)


def cmd_validate(args) -> int:
    from pipelines.validate import check_config

    config = load_config(args.config)
    notes = check_config(config)
    for note in notes:
        stdout.print(f"  note: {note}", markup=False, highlight=False)
    stdout.print(f"{args.config}: valid (run dir {config.run_dir}, config hash {config.config_hash()})")
    return 0


def cmd_demo_data(args) -> int:
    from demo import write_demo_corpus

    config = load_config(args.config)
    scale = args.scale if args.scale is not None else config.demo_data.scale
    seed = config.demo_data.seed if config.demo_data.seed is not None else config.run.seed
    with run_folder(config, "curate demo-data", console) as run:
        out = run.input_dir
        summary = write_demo_corpus(out, scale=scale, seed=seed)
        for path in map(Path, config.demo_data.benchmarks):
            if not path.exists():
                raise ConfigError(f"demo_data.benchmarks: {path} does not exist")
            shutil.copy(path, out / "benchmarks" / path.name)
            summary[f"benchmark {path.name}"] = str(out / "benchmarks" / path.name)
    stdout.print(f"demo corpus (scale {scale}, seed {seed}) written to {out}")
    for key, value in summary.items():
        if isinstance(value, (int, float, str)):
            stdout.print(f"  {key}: {value}")
    return 0


def run_stages(args, names: list[str]) -> int:
    """Runs ``names`` in order, skipping the fresh ones; ``--restart`` redoes them even when fresh."""
    config = with_overrides(load_config(args.config), args)
    summaries = []
    with run_folder(config, " ".join(["curate", *sys.argv[1:]]), console) as run:
        graph = StageGraph(config, run, STAGES)
        if not args.restart and all(graph.state(name).usable for name in names):
            console.print(f"every stage of {', '.join(names)} is fresh: nothing to do (--restart redoes them)")
            return 0
        with dask_client(config.executor.cluster, config.executor.workers) as client:
            for name in names:
                console.print(f"[bold]{name}[/bold]: {STAGES[name].about}")
                summaries.append(run_stage(config, STAGES[name], client, console, restart=args.restart))
    stdout.print(summary_table(summaries, run))
    stdout.print(f"outputs: {run.path}/<stage>/  ·  manifest: {run.manifest_path}  ·  query: curate sql \"select ...\"")
    return 0


def cmd_train_classifiers(args) -> int:
    import json

    from pipelines.classify import train_classifiers

    config = load_config(args.config)
    with run_folder(config, "curate classifiers train", console) as run:
        reports = train_classifiers(config, run)
    for report in reports:
        data = json.loads(report.read_text())
        metrics = data.get("heldout") or data.get("metrics") or {}
        shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        stdout.print(f"{report}: {shown}")
    return 0


@contextmanager
def inspected_run(args, only: tuple[str, ...] | None = None) -> Iterator[RunDir]:
    """The run folder a read-only command looks at: ``--run``, or the config's (for a run in a
    store, its local copy, brought up to date first: ``only`` some files)."""
    if getattr(args, "run", None):
        yield RunDir(args.run)
        return
    with run_folder(load_config(args.config), writes=False, only=only) as run:
        yield run


def cmd_status(args) -> int:
    config = load_config(args.config)
    with inspected_run(args, only=("manifest.json",)) as run:
        if args.run:
            config = config.model_copy(update={"run": config.run.model_copy(update={"root": str(run.path.parent), "name": run.path.name})})
        show_status(config, run)
    return 0


def show_status(config: PipelineConfig, run: RunDir) -> None:
    manifest = run.read_manifest()
    graph = StageGraph(config, run, STAGES, manifest)
    live = run.lock_holder() is not None
    table = Table(title=f"{run.path}")
    for column in ("stage", "state", "why", "docs in", "kept", "removed", "seconds", "finished"):
        table.add_column(column, overflow="fold")
    for name in STAGES:
        entry = manifest["stages"].get(name, {})
        try:
            state = graph.state(name, live_lock=live)
            shown, why = state.state, "; ".join(state.reasons)
        except UserError as err:  # an input glob that matches nothing, say
            shown, why = "stale", str(err)
        counts = entry.get("counts") or {}
        removed = sum(counts.get("removed", {}).values()) if counts else ""
        style = {"fresh": "green", "stale": "yellow", "failed": "red"}.get(shown, "")
        table.add_row(
            name, f"[{style}]{shown}[/{style}]" if style else shown, why, str(counts.get("in", "")), str(counts.get("kept", "")),
            str(removed), str(entry.get("seconds", "")), entry.get("finished", ""),
        )
    stdout.print(table)


def cmd_demo_eval(args) -> int:
    from demo.eval import demo_scores

    with inspected_run(args) as run:
        scores = demo_scores(run.path)
    table = Table(title=f"{run.path}: scores against the demo ground truth")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in scores.items():
        table.add_row(name, f"{value:.4f}")
    stdout.print(table)
    return 0


def cmd_sql(args) -> int:
    from pipelines.sql import query, render

    with inspected_run(args) as run:
        columns, rows = query(run.path, args.query)
    if args.format != "table":
        sys.stdout.write(render(columns, rows, args.format))
        return 0
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(value, args.max_width) for value in row])
    stdout.print(table)
    return 0


def _cell(value, width: int) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="curate", description=__doc__)
    top.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = top.add_subparsers(dest="command", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"pipeline config (default {DEFAULT_CONFIG})")
        p.set_defaults(handler=handler)
        return p

    def add_executor_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cluster", help="override executor.cluster: local or tcp://host:port")
        p.add_argument("--workers", type=int, help="override executor.workers (local cluster)")
        p.add_argument("--restart", action="store_true", help="discard the stage's earlier outputs first")

    add("validate", cmd_validate, "check a config file")
    demo = add("demo-data", cmd_demo_data, "write the seeded demo corpus into the run's input folder")
    demo.add_argument("--scale", type=float)
    for name, stage in STAGES.items():
        p = add(name, lambda a, n=name: run_stages(a, [n]), stage.about)
        add_executor_flags(p)
        if name == "export":
            p.add_argument("--mix", help="a mixture YAML (weights: {domain: weight}) instead of export.mix")
            p.add_argument("--force", action="store_true", help="export a mix the mixer did not recommend (mix.yaml recommended: false)")
    classifiers = sub.add_parser("classifiers", help="the classify stage's models")
    classifiers_sub = classifiers.add_subparsers(dest="action", required=True)
    train = classifiers_sub.add_parser("train", help="train the configured quality and domain classifiers (those missing)")
    train.add_argument("-c", "--config", default=DEFAULT_CONFIG)
    train.set_defaults(handler=cmd_train_classifiers)
    run = add("run", lambda a: run_stages(a, list(STAGES)), "run every stage in order")
    add_executor_flags(run)
    demo_eval = add("demo-eval", cmd_demo_eval, "score a demo run against the demo corpus's ground truth")
    demo_eval.add_argument("--run", help="run folder (default: from the config)")
    status = add("status", cmd_status, "the run's stages and counts")
    status.add_argument("--run", help="run folder (default: from the config)")
    sql = add("sql", cmd_sql, "query the run with DuckDB")
    sql.add_argument("query")
    sql.add_argument("--run", help="run folder (default: from the config)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument("--max-width", type=int, default=80, help="longest cell shown in table format")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UserError, FileNotFoundError, StageFailed, LedgerError, duckdb.Error) as err:
        if args.debug:
            raise
        console.print(Text.assemble(("error:", "red"), f" {err}"), highlight=False, soft_wrap=True)
        user_caused = isinstance(err, (UserError, FileNotFoundError)) or getattr(err, "user_caused", False)
        return 2 if user_caused else 1


if __name__ == "__main__":
    sys.exit(main())
