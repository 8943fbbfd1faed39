from pathlib import Path

import pytest

from pipelines.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_demo_config_is_valid():
    config = load_config(REPO / "pipelines" / "demo.yaml")
    assert config.run_dir == Path.cwd() / "runs" / "demo"  # relative paths: from where curate runs
    assert config.executor.cluster == "local"


def test_bad_values_name_the_file_the_key_path_and_the_expectation(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("ingest:\n  tasks: 0\n  extract:\n    timeout_s: fast\nexecutor:\n  cluster: http://x\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "ingest.tasks: Input should be greater than or equal to 1 (got 0)" in message
    assert "ingest.extract.timeout_s" in message and "'fast'" in message
    assert "executor.cluster" in message and "tcp://" in message


def test_unknown_keys_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"ingest.taks: Extra inputs are not permitted"):
        parse_config({"ingest": {"taks": 3}}, "x.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("run:\n  name: demo\n ingest: [\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: not valid YAML"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_section_hash_ignores_the_executor():
    a = parse_config({"executor": {"workers": 1}})
    b = parse_config({"executor": {"workers": 4}})
    c = parse_config({"ingest": {"tasks": 3}})
    assert a.config_hash() == b.config_hash() != c.config_hash()
    assert a.section_hash("ingest") == b.section_hash("ingest") != c.section_hash("ingest")
