"""Run state: stale outputs are never reused silently, restarts are transactional, the ledger holds across stages.

Each test is a small real run (WARCs written with warcio, datatrove pipelines on the session's
2-worker LocalCluster) driven through the runner, as `curate <stage>` drives it.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from pipelines.config import ConfigError, parse_config
from pipelines.executor import DaskPipelineExecutor, StageFailed
from pipelines.ledger import LedgerError
from pipelines.run import RunDir, RunLock
from pipelines.runner import StageOrderError, run_stage
from pipelines.stages import STAGES
from pipelines.state import StageGraph
from tests.warcs import write_corpus, write_pages_warc

CURATE = [sys.executable, "-m", "pipelines.cli"]
PAGES = 6  # per WARC; each WARC also holds a 404, an image and a request record


def settings(tmp_path: Path, **sections) -> dict:
    base = {
        "run": {"name": "t", "root": str(tmp_path / "runs")},
        "ingest": {"sources": [web_source(str(tmp_path / "in" / "*.warc.gz"))], "tasks": 2},
        "filter": {"tasks": 2},
        "dedup": {"tasks": 2},
        "classify": {"tasks": 2},
        "rephrase": {"tasks": 2},
        "tokenize": {"tasks": 2, "tokenizer": {"vocab_size": 300, "sample_docs": 50}},
        "export": {"formats": ["olmo_core"], "sequence_length": 16},
    }
    for name, changes in sections.items():
        base[name] = base.get(name, {}) | changes
    return base


def web_source(*paths: str, **settings) -> dict:
    return {"name": "web", "kind": "warc", "paths": list(paths), "domain": "web"} | settings


def make_config(tmp_path: Path, **sections):
    return parse_config(settings(tmp_path, **sections))


def run(config, name: str, client, restart: bool = False):
    return run_stage(config, STAGES[name], client, Console(quiet=True), restart=restart)


def state(config, name: str):
    return StageGraph(config, RunDir(config.run_dir), STAGES).state(name)


def entry(config, name: str) -> dict:
    return RunDir(config.run_dir).read_manifest()["stages"][name]


def curate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "COLUMNS": "250"}
    return subprocess.run([*CURATE, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_added_input_file_makes_ingest_stale_and_a_rerun_reads_it(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=4, pages_per_file=PAGES)
    config = make_config(tmp_path)
    first = run(config, "ingest", client)
    assert first.counts["kept"] == 4 * PAGES and state(config, "ingest").state == "fresh"
    write_pages_warc(tmp_path / "in" / "part-new.warc.gz", PAGES, seed=50)
    stale = state(config, "ingest")
    assert stale.state == "stale"
    assert stale.reasons == [f"1 input file(s) added: {tmp_path / 'in' / 'part-new.warc.gz'}"]
    again = run(config, "ingest", client)
    assert again.counts["kept"] == 5 * PAGES and again.ranks_run == 2
    assert state(config, "ingest").state == "fresh"


def test_a_grown_upstream_makes_downstream_stale_and_flows_down(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=PAGES)
    config = make_config(tmp_path)
    run(config, "ingest", client)
    filtered = run(config, "filter", client)
    assert filtered.counts["in"] == 2 * PAGES
    write_pages_warc(tmp_path / "in" / "part-new.warc.gz", PAGES, seed=60)
    assert "upstream 'ingest' changed" in state(config, "filter").reasons
    with pytest.raises(StageOrderError, match=r"stage 'filter' reads 'ingest', which is stale \(1 input file\(s\) added"):
        run(config, "filter", client)
    run(config, "ingest", client)
    again = run(config, "filter", client)
    assert again.counts["in"] == 3 * PAGES == entry(config, "ingest")["counts"]["kept"]


def test_a_restarted_upstream_makes_downstream_stale_with_the_same_config(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=PAGES)
    config = make_config(tmp_path)
    run(config, "ingest", client)
    run(config, "filter", client)
    run(config, "ingest", client, restart=True)
    assert state(config, "filter").reasons == ["upstream 'ingest' was rebuilt since"]


def test_outputs_of_an_older_output_format_are_rebuilt_not_reused(tmp_path, client):
    """A curate that writes a stage's outputs differently (a new column) does not reuse what an older one wrote."""
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=PAGES)
    config = make_config(tmp_path)
    run(config, "ingest", client)
    newer = dataclasses.replace(STAGES["ingest"], output_format=STAGES["ingest"].output_format + 1)
    reasons = StageGraph(config, RunDir(config.run_dir), STAGES | {"ingest": newer}).state("ingest").reasons
    assert reasons == [f"its outputs were written by an earlier curate (output format {newer.output_format - 1}; "
                       f"this curate writes {newer.output_format})"]
    assert state(config, "ingest").state == "fresh"


def test_an_edit_two_stages_up_is_detected_and_redone_in_order(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=PAGES)
    config = make_config(tmp_path)
    for name in ("ingest", "filter", "dedup"):
        run(config, name, client)
    edited = make_config(tmp_path, ingest={"sources": [web_source(str(tmp_path / "in" / "*.warc.gz"), domain="crawl")]})
    assert state(edited, "ingest").reasons == ['config \'ingest.sources[web].domain\': "web" -> "crawl"']
    assert state(edited, "dedup").reasons == ["upstream 'filter' changed"]
    with pytest.raises(StageOrderError, match="reads 'filter', which is stale"):
        run(edited, "dedup", client)
    for name in ("ingest", "filter", "dedup"):  # what `curate run` does
        run(edited, name, client)
    shards = list((RunDir(edited.run_dir).stage_dir("ingest")).glob("*/*.parquet"))
    assert {path.parent.name for path in shards} == {"crawl"}
    assert entry(edited, "dedup")["counts"]["in"] == entry(edited, "filter")["counts"]["kept"]
    assert all(state(edited, name).state == "fresh" for name in ("ingest", "filter", "dedup"))


def test_a_read_of_an_undeclared_config_key_is_refused(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=1, pages_per_file=2)
    config = make_config(tmp_path)
    sneaky = dataclasses.replace(STAGES["ingest"], describe=lambda cfg, run_dir: {"tasks": cfg.filter.tasks})
    with pytest.raises(Exception, match=r"stage 'ingest' reads config key 'filter.tasks' but does not declare it"):
        run_stage(config, sneaky, client, Console(quiet=True))


def test_a_failed_restart_keeps_the_outputs_and_leaves_the_stage_failed(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=PAGES)
    config = make_config(tmp_path)
    run(config, "ingest", client)
    shards = sorted(RunDir(config.run_dir).stage_dir("ingest").rglob("*.parquet"))
    broken = make_config(tmp_path, ingest={"sources": [web_source(str(tmp_path / "nowhere" / "*.warc.gz"))]})
    with pytest.raises(ConfigError, match="ingest.sources.0.paths: no file matches"):
        run(broken, "ingest", client, restart=True)
    recorded = entry(config, "ingest")
    assert recorded["state"] == "failed" and "no file matches" in recorded["error"]
    assert sorted(RunDir(config.run_dir).stage_dir("ingest").rglob("*.parquet")) == shards
    assert state(config, "ingest").state == "failed"
    with pytest.raises(StageOrderError, match="reads 'ingest', which is failed"):
        run(config, "filter", client)
    again = run(config, "ingest", client)  # the outputs put back are not taken for a finished attempt
    assert again.ranks_run == 2 and state(config, "ingest").state == "fresh"


def test_an_exception_after_the_ranks_leaves_failed_not_running(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=1, pages_per_file=2)
    config = make_config(tmp_path)
    exploding = dataclasses.replace(STAGES["ingest"], describe=lambda cfg, run_dir: {"x": 1 / 0})
    with pytest.raises(ZeroDivisionError):
        run_stage(config, exploding, client, Console(quiet=True))
    recorded = entry(config, "ingest")
    assert recorded["state"] == "failed" and recorded["error"].startswith("ZeroDivisionError")


def test_a_cross_stage_count_mismatch_fails_loudly(tmp_path, client):
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=PAGES)
    config = make_config(tmp_path)
    run(config, "ingest", client)
    lost = sorted(RunDir(config.run_dir).stage_dir("ingest").glob("*/*.parquet"))[0]
    lost.unlink()  # a shard lost after the stage finished
    with pytest.raises(LedgerError, match=r"stage 'filter' read \d+ documents but 'ingest' kept 12"):
        run(config, "filter", client)
    assert entry(config, "filter")["state"] == "unbalanced"


PROSE_RULES_OFF = {"gopher_quality": {"enabled": False}, "gopher_repetition": {"enabled": False}}  # the test pages have no stop words


@pytest.fixture(scope="module")
def chain(tmp_path_factory, client):
    """Every document stage and the export, on two WARCs."""
    tmp_path = tmp_path_factory.mktemp("chain")
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=PAGES)
    config = make_config(tmp_path, filter=PROSE_RULES_OFF)
    for name in ("ingest", "filter", "dedup", "classify", "rephrase", "tokenize", "export"):
        run(config, name, client)
    return tmp_path, config


def test_export_lineage_names_the_identities_that_made_its_inputs(chain):
    _, config = chain
    manifest = json.loads((RunDir(config.run_dir).stage_dir("export") / "manifest.json").read_text())
    lineage = manifest["lineage"]["stages"]
    assert sorted(lineage) == ["classify", "dedup", "filter", "ingest", "rephrase", "tokenize"]
    assert entry(config, "tokenize")["counts"]["kept"] == 2 * PAGES
    for name, recorded in lineage.items():
        assert recorded["identity"] == entry(config, name)["identity"] == state(config, name).identity.digest
        assert recorded["output_id"] == entry(config, name)["output_id"]


def test_an_edit_far_up_makes_the_export_stale(chain, client):
    tmp_path, config = chain
    edited = make_config(tmp_path, filter=PROSE_RULES_OFF | {"language": {"threshold": 0.5}})
    assert state(edited, "export").state == "stale"
    with pytest.raises(StageOrderError, match="stage 'export' reads 'tokenize', which is stale"):
        run(edited, "export", client)
    assert state(config, "export").state == "fresh"


def test_status_shows_each_stage_and_why(chain):
    tmp_path, _ = chain
    data = settings(tmp_path, filter=PROSE_RULES_OFF | {"language": {"threshold": 0.5}})
    result = curate("status", "-c", str(write_config(tmp_path, data)))
    assert result.returncode == 0, result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert "fresh" in lines["ingest"]
    assert "stale" in lines["filter"] and "config 'filter.language.threshold': 0.65 -> 0.5" in lines["filter"]
    assert "stale" in lines["dedup"] and "upstream 'filter' changed" in lines["dedup"]
    assert "missing" in lines["proxies"]


def test_a_second_curate_on_a_locked_run_refuses_naming_the_holder(tmp_path):
    write_corpus(tmp_path / "in", n_files=1, pages_per_file=2)
    path = write_config(tmp_path, settings(tmp_path))
    run_dir = RunDir(tmp_path / "runs" / "t")
    with RunLock(run_dir, "curate run (test)"):
        result = curate("ingest", "-c", str(path))
    assert result.returncode == 2
    assert f"in use by pid {os.getpid()}" in result.stderr and "curate run (test)" in result.stderr
    assert not run_dir.manifest_path.exists(), "nothing ran"


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = {"host": os.uname().nodename, "pid": int(dead.stdout), "since": "earlier", "command": "curate run"}
    run_dir.lock_path.write_text(json.dumps(holder))
    with RunLock(run_dir, "curate ingest") as lock:
        assert lock.held and json.loads(run_dir.lock_path.read_text())["pid"] == os.getpid()
    assert not run_dir.lock_path.exists()


def test_a_worker_that_cannot_see_the_run_folder_says_so(tmp_path, client):
    executor = DaskPipelineExecutor([], tasks=1, logging_dir=str(tmp_path / "logs"), client=client, run_dir=tmp_path / "elsewhere")
    with pytest.raises(StageFailed, match="cannot see the run folder .*elsewhere") as err:
        executor.run()
    assert err.value.user_caused


def test_relative_paths_are_resolved_in_the_driver_for_a_worker_in_another_directory(tmp_path, tcp_cluster_elsewhere):
    write_corpus(tmp_path / "in", n_files=2, pages_per_file=3)
    data = settings(tmp_path, run={"root": "runs"}, ingest={"sources": [web_source("in/*.warc.gz")]}, executor={"cluster": tcp_cluster_elsewhere})
    result = curate("ingest", "-c", str(write_config(tmp_path, data)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "runs" / "t" / "ingest").glob("*/*.parquet"))) == 2


def test_a_second_curate_on_a_fresh_run_does_nothing(tmp_path):
    write_corpus(tmp_path / "in", n_files=1, pages_per_file=2)
    path = write_config(tmp_path, settings(tmp_path))
    assert curate("ingest", "-c", str(path)).returncode == 0
    finished = json.loads((tmp_path / "runs" / "t" / "manifest.json").read_text())["stages"]["ingest"]["finished"]
    again = curate("ingest", "-c", str(path))
    assert again.returncode == 0 and "every stage of ingest is fresh: nothing to do" in again.stderr
    assert json.loads((tmp_path / "runs" / "t" / "manifest.json").read_text())["stages"]["ingest"]["finished"] == finished
