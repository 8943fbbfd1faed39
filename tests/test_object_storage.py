"""Inputs and the run folder in object storage: moto's S3 server on 127.0.0.1, the real s3fs client.

The runs are `curate` command lines, as a team runs them; credentials come from the
environment only (moto takes any), the endpoint from each `storage:` section.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import s3fs

from tests.conftest import free_port
from tests.documents import dolma_record, varied_text, write_code_dump, write_dolma
from tests.test_runner import CURATE, settings, write_config
from tests.warcs import write_pages_warc

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait()


@pytest.fixture
def store(s3_endpoint, monkeypatch):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    for bucket in ("team-data", "team-runs"):
        if fs.exists(bucket):
            fs.rm(bucket, recursive=True)
        fs.mkdir(bucket)
    fs.invalidate_cache()
    return fs


def curate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "250"}
    return subprocess.run([*CURATE, *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def upload_corpus(fs: s3fs.S3FileSystem, local: Path, n_files: int = 2) -> None:
    for f in range(n_files):
        write_pages_warc(local / "crawl" / f"part-{f:03d}.warc.gz", 12, seed=f)
        write_dolma(local / "wiki" / f"wiki-{f:03d}.jsonl.gz", [dolma_record(100 * f + i, varied_text(100 * f + i)) for i in range(12)])
    write_code_dump(local / "code" / "dump.parquet", 24)
    fs.put(str(local) + "/", "team-data/corpus/", recursive=True)


def sources(endpoint: str) -> list[dict]:
    storage = {"endpoint_url": endpoint}
    return [
        {"name": "crawl", "kind": "warc", "paths": ["s3://team-data/corpus/crawl/*.warc.gz"], "domain": "web", "storage": storage},
        {"name": "wiki", "kind": "jsonl", "paths": ["s3://team-data/corpus/wiki/*.jsonl.gz"], "filters": "trusted", "storage": storage},
        {"name": "code", "kind": "parquet", "paths": ["s3://team-data/corpus/code/*.parquet"], "text_key": "content",
         "id_key": "path", "filters": "trusted", "storage": storage},
    ]


def s3_settings(tmp_path: Path, endpoint: str, **sections) -> dict:
    data = settings(tmp_path, run={"name": "t", "root": "s3://team-runs/curate", "cache": str(tmp_path / "cache"),
                                   "storage": {"endpoint_url": endpoint}},
                    ingest={"sources": sources(endpoint), "tasks": 4}, **sections)
    return data


def test_a_run_with_inputs_and_root_in_s3_goes_from_ingest_to_export(tmp_path, store, s3_endpoint):
    upload_corpus(store, tmp_path / "corpus")
    data = s3_settings(
        tmp_path, s3_endpoint,
        filter={"tasks": 2, "fineweb": {"enabled": False}},
        tokenize={"tasks": 2, "tokenizer": {"vocab_size": 300, "sample_docs": 50}, "validation_fraction": 0.25},
        proxies={"model": {"n_layers": 1, "d_model": 16, "n_heads": 2, "context": 16, "batch_size": 4},
                 "token_budget": 2000, "count": 4},
        mix={"candidates": 200, "top_k": 10, "folds": 2, "validation_seeds": [101]},
        anneal={"enabled": False},
    )
    config = write_config(tmp_path, data)
    result = curate("run", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    store.invalidate_cache()
    run = "team-runs/curate/t"
    assert store.exists(f"{run}/manifest.json") and not store.exists(f"{run}/.lock")
    assert store.glob(f"{run}/export/megatron/*.bin") or store.glob(f"{run}/export/olmo-core/*.npy")
    assert store.glob(f"{run}/ingest/wiki/*.parquet") and store.glob(f"{run}/tokenize/*/*.parquet")
    assert not (tmp_path / "s3:").exists()

    elsewhere = tmp_path / "elsewhere"  # another machine: an empty cache, the same store
    elsewhere.mkdir()
    data["run"]["cache"] = str(elsewhere / "cache")
    other = write_config(elsewhere, data)
    counts = curate("sql", "-c", str(other), "--format", "csv", "select source, count(*) from ingest group by 1 order by 1", cwd=elsewhere)
    assert counts.returncode == 0, counts.stderr
    assert counts.stdout.splitlines()[1:] == ["code,24", "crawl,24", "wiki,24"]
    status = curate("status", "-c", str(other), cwd=elsewhere)
    assert status.returncode == 0 and status.stdout.count("fresh") >= 9, status.stdout


def test_a_run_root_in_s3_survives_kill_and_resume_on_another_machine(tmp_path, store, s3_endpoint):
    local = tmp_path / "corpus"
    for f in range(12):
        write_dolma(local / "wiki" / f"wiki-{f:03d}.jsonl.gz", [dolma_record(1000 * f + i, varied_text(1000 * f + i)) for i in range(300)])
    store.put(str(local) + "/", "team-data/corpus/", recursive=True)
    data = s3_settings(tmp_path, s3_endpoint)
    data["ingest"] = {"tasks": 12, "sources": [sources(s3_endpoint)[1]]}
    data["executor"] = {"workers": 1}
    config = write_config(tmp_path, data)
    completions = "team-runs/curate/t/_logs/ingest/completions"
    proc = subprocess.Popen([*CURATE, "ingest", "-c", str(config)], cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        store.invalidate_cache()
        if len(store.glob(f"{completions}/*")) >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    store.invalidate_cache()
    done_before = sorted(int(path.rsplit("/", 1)[1]) for path in store.glob(f"{completions}/*"))
    assert 3 <= len(done_before) < 12, "the run must be killed part-way"
    store.rm("team-runs/curate/t/.lock")  # a lock left by a killed run on another machine: removed by hand

    data["run"]["cache"] = str(tmp_path / "second-machine")
    resumed = curate("ingest", "-c", str(write_config(tmp_path, data)), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    manifest = __import__("json").loads(store.cat("team-runs/curate/t/manifest.json"))
    stage = manifest["stages"]["ingest"]
    assert stage["ranks_skipped"] == done_before
    assert sorted(stage["ranks_run"]) == sorted(set(range(12)) - set(done_before))
    assert stage["counts"] == {"in": 3600, "created": 0, "kept": 3600, "removed": {}}
    ids = curate("sql", "-c", str(write_config(tmp_path, data)), "--format", "csv", "select count(*), count(distinct id) from ingest", cwd=tmp_path)
    assert ids.stdout.splitlines()[1] == "3600,3600"


def test_a_run_in_s3_held_elsewhere_is_refused(tmp_path, store, s3_endpoint):
    store.pipe("team-runs/curate/t/.lock", b'{"host": "gpu-node-7", "pid": 4242, "since": "2026-12-01T10:00:00+00:00", "command": "curate run"}')
    upload_corpus(store, tmp_path / "corpus", n_files=1)
    result = curate("ingest", "-c", str(write_config(tmp_path, s3_settings(tmp_path, s3_endpoint))), cwd=tmp_path)
    assert result.returncode == 2 and "s3://team-runs/curate/t is in use by pid 4242 on gpu-node-7" in result.stderr


def test_a_common_crawl_mirror_in_a_bucket_is_read_through_its_listing(tmp_path, store, s3_endpoint):
    crawl = "CC-MAIN-2024-51"
    paths = [f"crawl-data/{crawl}/segments/1/warc/part-{f:03d}.warc.gz" for f in range(3)]
    for f, path in enumerate(paths):
        write_pages_warc(tmp_path / "mirror" / path, 5, seed=f)
    listing = tmp_path / "mirror" / "crawl-data" / crawl / "warc.paths.gz"
    listing.write_bytes(__import__("gzip").compress("\n".join(paths).encode()))
    store.put(str(tmp_path / "mirror") + "/", "team-data/cc/", recursive=True)
    source = {"name": "cc", "kind": "warc", "domain": "web", "storage": {"endpoint_url": s3_endpoint},
              "commoncrawl": {"crawl": crawl, "files": 2, "base_url": "s3://team-data/cc/"}}
    data = settings(tmp_path, ingest={"sources": [source], "tasks": 2})
    result = curate("ingest", "-c", str(write_config(tmp_path, data)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    files = curate("sql", "-c", str(write_config(tmp_path, data)), "--format", "csv",
                   "select count(distinct warc_file), count(*) from ingest", cwd=tmp_path)
    assert files.stdout.splitlines()[1] == "2,10"
