"""A user's mistake is one line naming the file / key / record and what to do, with exit code 2.

Each case runs the real `curate` command line; `--debug` brings the traceback back.
"""

import json
import time
from pathlib import Path

import yaml

from curation.tokenizer import train_bpe
from tests.conftest import free_port
from tests.runs import record_complete
from tests.test_runner import curate, settings, write_config
from pipelines.config import parse_config

REPO = Path(__file__).resolve().parents[1]


def one_line_error(result) -> str:
    """The error: the last line curate printed, and the only one saying `error:` (progress lines may precede it)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert [line for line in lines if "error:" in line] == lines[-1:], result.stderr
    return lines[-1]


def validate(tmp_path: Path, data: dict | str):
    path = tmp_path / "config.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return curate("validate", "-c", str(path))


def test_a_key_given_twice_is_refused(tmp_path):
    line = one_line_error(validate(tmp_path, "filter:\n  tasks: 2\nrun:\n  name: x\nfilter:\n  tasks: 3\n"))
    assert "key 'filter' appears twice (first on line 1)" in line and "line 5" in line


def test_no_validation_slice_is_refused(tmp_path):
    line = one_line_error(validate(tmp_path, settings(tmp_path, tokenize={"validation_fraction": 0})))
    assert "tokenize.validation_fraction: Input should be greater than 0 (got 0)" in line


def test_benchmark_fields_that_match_nothing_are_refused(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": "What is two plus two?", "answer": "4"}) + "\n")
    data = settings(tmp_path, classify={"contamination": {"benchmarks": [{"name": "b", "path": str(bench), "fields": ["problem"]}]}})
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc.gz").write_bytes(b"")
    line = one_line_error(validate(tmp_path, data))
    assert line.startswith("error: classify.contamination.benchmarks[0] (b): benchmark 'b': no item of") and "['problem']" in line


def test_a_tokenizer_without_the_eos_token_is_refused(tmp_path):
    tokenizer = tmp_path / "tok" / "tokenizer.json"
    train_bpe(["some words to train on, again and again"] * 20, 300, tokenizer, "<|endoftext|>")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc.gz").write_bytes(b"")
    data = settings(tmp_path, tokenize={"tokenizer": {"kind": "file", "path": str(tokenizer), "eos_token": "</s>"}})
    line = one_line_error(validate(tmp_path, data))
    assert line.startswith("error: tokenize.tokenizer:") and "'</s>'" in line and str(tokenizer) in line


def test_bounds_that_no_mix_fits_are_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc.gz").write_bytes(b"")
    data = settings(tmp_path, mix={"bounds": {"web": [0.7, 0.9], "wiki": [0.5, 0.6]}})
    assert "mix.bounds: the minimum weights sum to 1.2 > 1" in one_line_error(validate(tmp_path, data))
    data = settings(tmp_path, mix={"bounds": {"web": [0.7, 0.2]}})
    assert "mix.bounds.web: expected 0 <= min <= max <= 1" in one_line_error(validate(tmp_path, data))


def test_sql_that_does_not_parse_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc.gz").write_bytes(b"")
    data = settings(tmp_path, rephrase={"where": "quality_score <"})
    assert one_line_error(validate(tmp_path, data)).startswith("error: rephrase.where: not valid SQL")


def test_validate_names_a_missing_input_and_runs_from_any_directory(tmp_path):
    data = settings(tmp_path)
    assert "ingest.sources.0.paths: no file matches" in one_line_error(validate(tmp_path, data))
    result = curate("validate", "-c", str(REPO / "demo" / "demo.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "demo.yaml: valid" in result.stdout and "note: ingest.sources.0.paths: nothing matches" in result.stdout
    assert "curate.yaml: no such config file (pass one with -c FILE)" in one_line_error(curate("validate", cwd=tmp_path))


def test_the_old_source_keys_are_refused_showing_the_new_spelling(tmp_path):
    result = validate(tmp_path, {"run": {"name": "t"}, "ingest": {"warc": ["crawl/*.warc.gz"], "pdf": {"paths": ["papers/*.pdf"]}}})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    shown = result.stderr[result.stderr.index("write instead:"):]
    new = yaml.safe_load(shown.split("\n", 1)[1])
    assert [(s["name"], s["kind"], s["domain"]) for s in new["sources"]] == [("web", "warc", "web"), ("pdf", "pdf", "papers")]
    assert new["sources"][0]["paths"] == ["crawl/*.warc.gz"]  # as the user wrote it


def test_a_bucket_that_cannot_be_listed_is_one_line(tmp_path):
    source = {"name": "docs", "kind": "jsonl", "paths": ["s3://no-such-bucket/docs/*.jsonl.gz"],
              "storage": {"endpoint_url": f"http://127.0.0.1:{free_port()}"}}
    line = one_line_error(validate(tmp_path, settings(tmp_path, ingest={"sources": [source]})))
    assert "ingest.sources.0.paths: cannot list 's3://no-such-bucket/docs/*.jsonl.gz'" in line


def test_an_unreachable_listing_fails_in_seconds(tmp_path):
    listing = {"commoncrawl": {"base_url": f"http://127.0.0.1:{free_port()}/"}}
    data = settings(tmp_path, ingest={"sources": [{"name": "cc", "kind": "warc"} | listing]})
    start = time.monotonic()
    line = one_line_error(curate("ingest", "-c", str(write_config(tmp_path, data))))
    assert "cannot read the Common Crawl listing" in line and "commoncrawl.base_url" in line
    assert time.monotonic() - start < 60


def test_export_with_no_tokens_is_one_line(tmp_path):
    data = settings(tmp_path)
    config = parse_config(data)
    record_complete(config, "tokenize", 0)
    result = curate("export", "-c", str(write_config(tmp_path, data)))
    assert "no tokenized documents to export" in one_line_error(result)
    debug = curate("--debug", "export", "-c", str(write_config(tmp_path, data)))
    assert "Traceback" in debug.stderr


def test_a_domain_training_query_with_one_label_is_one_line(tmp_path):
    training = "select 'a page about rivers and towns, long enough to count' || i as text, 'web' as label from range(40) t(i)"
    data = settings(tmp_path, classify={"domain": {"training": training}})
    (tmp_path / "runs" / "t").mkdir(parents=True)
    line = one_line_error(curate("classifiers", "train", "-c", str(write_config(tmp_path, data))))
    assert line.startswith("error: classify.domain.training: the query returned only label 'web'")
