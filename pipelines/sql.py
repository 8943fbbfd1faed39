"""DuckDB over a run: one view per stage, ``removed`` (all stages) and ``ledger``."""

import csv
import io
import json
from pathlib import Path

import duckdb
import pyarrow as pa

from curation.shards import list_kept_shards, list_removed_shards, shard_schema
from pipelines.run import RunDir
from pipelines.tokens import QUALITY_BUCKET


def _file_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stage_names(run: RunDir) -> list[str]:
    recorded = list(run.read_manifest()["stages"])
    found = [p.name for p in sorted(run.path.iterdir()) if p.is_dir() and not p.name.startswith(("_", ".")) and p.name != "input"] if run.path.exists() else []
    return list(dict.fromkeys(recorded + found))


def connect(run_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the run's views defined."""
    run = RunDir(run_dir)
    if not run.path.exists():
        raise FileNotFoundError(f"{run.path}: no such run (run a stage first, or pass --run)")
    con = duckdb.connect()
    removed_parts = []
    for stage in stage_names(run):
        kept = list_kept_shards(run.stage_dir(stage))
        if kept:
            con.execute(f"CREATE VIEW {_quoted(stage)} AS SELECT * FROM read_parquet({_file_list(kept)}, union_by_name=true)")
        else:
            con.register(stage, shard_schema().empty_table())
        removed = list_removed_shards(run.stage_dir(stage))
        if removed:
            removed_parts.append(
                f"SELECT '{stage}' AS stage, * FROM read_parquet({_file_list(removed)}, union_by_name=true)"
            )
    if removed_parts:
        con.execute("CREATE VIEW removed AS " + " UNION ALL BY NAME ".join(removed_parts))
    else:
        empty = shard_schema(with_reason=True).insert(0, pa.field("stage", pa.string())).empty_table()
        con.register("removed", empty)
    if list_kept_shards(run.stage_dir("tokenize")):
        for view, split in (("tokens", "train"), ("validation", "valid")):
            con.execute(
                f"CREATE VIEW {view} AS SELECT id, domain, source, quality_score, {QUALITY_BUCKET} AS quality_bucket, "
                f"n_tokens FROM tokenize WHERE split = '{split}'"
            )
    for view, path in (("proxies", run.proxies_table()), ("mix", run.mix_weights)):
        if path.exists():
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({_file_list([path])})")
    benchmarks = run.contamination_benchmarks
    if benchmarks.exists() and benchmarks.stat().st_size:
        con.execute(f"CREATE VIEW contamination AS SELECT * FROM read_json_auto({_file_list([benchmarks])})")
    if run.ledger_path.exists():
        con.execute(f"CREATE VIEW ledger AS SELECT * FROM read_parquet('{run.ledger_path}')")
    return con


def query(run_dir: str | Path, sql: str) -> tuple[list[str], list[tuple]]:
    con = connect(run_dir)
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return columns, cursor.fetchall()
    finally:
        con.close()


def render(columns: list[str], rows: list[tuple], fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue()
    if fmt == "json":
        return json.dumps([dict(zip(columns, row)) for row in rows], default=str, indent=1, ensure_ascii=False)
    raise ValueError(f"unknown format {fmt!r}: expected table, csv or json")
