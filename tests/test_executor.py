import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml
from datatrove.executor import LocalPipelineExecutor

from curation.extract import HtmlExtractor
from curation.intake import StageIntake
from curation.shards import RemovedSink, ShardWriter
from curation.sources.warc import WarcSource
from pipelines.executor import DaskPipelineExecutor
from tests.warcs import write_corpus

CURATE = [sys.executable, "-m", "pipelines.cli"]


def ingest_pipeline(paths, out: Path) -> list:
    removed = RemovedSink(out)
    return [WarcSource(paths), StageIntake(removed), HtmlExtractor(removed), ShardWriter(out)]


def rows(folder: Path) -> list[tuple]:
    return duckdb.sql(f"SELECT id, url, text FROM read_parquet('{folder}/*/*.parquet') ORDER BY id").fetchall()


def test_dask_executor_writes_the_same_rows_as_datatroves_local_executor(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=4, pages_per_file=6)
    paths = sorted(str(p) for p in (tmp_path / "in").glob("*.warc.gz"))
    LocalPipelineExecutor(ingest_pipeline(paths, tmp_path / "local"), tasks=4, workers=1, logging_dir=str(tmp_path / "l-logs")).run()
    stats = DaskPipelineExecutor(ingest_pipeline(paths, tmp_path / "dask"), 4, str(tmp_path / "d-logs"), client, name="t").run()
    local, dask = rows(tmp_path / "local"), rows(tmp_path / "dask")
    assert len(dask) == 24 and dask == local
    assert sorted(os.listdir(tmp_path / "d-logs" / "completions")) == ["00000", "00001", "00002", "00003"]
    intake = next(s for s in stats.stats if "intake" in s.name)
    assert intake["documents"].total == 24


def write_config(tmp_path: Path, warc_glob: str, tasks: int, workers: int = 2, cluster: str = "local") -> Path:
    config = {
        "run": {"name": "t", "root": str(tmp_path / "runs")},
        "executor": {"cluster": cluster, "workers": workers},
        "ingest": {"sources": [{"name": "web", "kind": "warc", "paths": [warc_glob]}], "tasks": tasks},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def curate(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CURATE, *args], capture_output=True, text=True, timeout=300, **kwargs)


def test_killed_run_resumes_with_only_the_unfinished_ranks(tmp_path):
    write_corpus(tmp_path / "in", n_files=12, pages_per_file=40)
    config = write_config(tmp_path, str(tmp_path / "in" / "*.warc.gz"), tasks=12, workers=1)
    completions = tmp_path / "runs" / "t" / "_logs" / "ingest" / "completions"
    proc = subprocess.Popen([*CURATE, "ingest", "-c", str(config)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if completions.is_dir() and len(os.listdir(completions)) >= 3:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sorted(int(name) for name in os.listdir(completions))
    assert 3 <= len(done_before) < 12, "the run must be killed part-way"

    result = curate("ingest", "-c", str(config))
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((tmp_path / "runs" / "t" / "manifest.json").read_text())
    stage = manifest["stages"]["ingest"]
    assert stage["ranks_skipped"] == done_before
    assert sorted(stage["ranks_run"]) == sorted(set(range(12)) - set(done_before))
    ids = [r[0] for r in rows(tmp_path / "runs" / "t" / "ingest")]
    assert len(ids) == len(set(ids)) == 12 * 40
    assert stage["counts"] == {"in": 480, "created": 0, "kept": 480, "removed": {}}
    assert not list((tmp_path / "runs" / "t" / "ingest").rglob(".*.tmp-*"))


def test_stage_runs_on_an_existing_dask_cluster(tmp_path, tcp_cluster):
    write_corpus(tmp_path / "in", n_files=4, pages_per_file=5)
    config = write_config(tmp_path, str(tmp_path / "in" / "*.warc.gz"), tasks=4, cluster=tcp_cluster)
    result = curate("ingest", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert len(rows(tmp_path / "runs" / "t" / "ingest")) == 20
    result = curate("sql", "-c", str(config), "--format", "csv", "select sum(docs_in), sum(kept), bool_and(balanced) from ledger")
    assert result.stdout.splitlines()[1] == "20,20,True"
