from pathlib import Path

import pytest
import yaml

from pipelines.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[1]


def test_shipped_demo_config_is_valid():
    config = load_config(REPO / "demo" / "demo.yaml")
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
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")


MINIMAL = {"run": {"name": "t"}, "ingest": {"sources": [{"name": "docs", "kind": "jsonl", "paths": ["docs/*.jsonl"]}]}}


def test_section_hash_ignores_the_executor():
    a = parse_config(MINIMAL | {"executor": {"workers": 1}})
    b = parse_config(MINIMAL | {"executor": {"workers": 4}})
    c = parse_config(MINIMAL | {"ingest": MINIMAL["ingest"] | {"tasks": 3}})
    assert a.config_hash() == b.config_hash() != c.config_hash()
    assert a.section_hash("ingest") == b.section_hash("ingest") != c.section_hash("ingest")


def test_a_source_is_named_with_its_domain_and_policy_checked():
    config = parse_config(MINIMAL, base=Path("/data"))
    source = config.ingest.sources[0]
    assert (source.paths, source.mixing_domain, source.filters) == (["/data/docs/*.jsonl"], "docs", "web")
    twice = {"sources": MINIMAL["ingest"]["sources"] * 2}
    with pytest.raises(ConfigError, match="source names must be unique: docs given twice"):
        parse_config(MINIMAL | {"ingest": twice})
    unknown = {"sources": [MINIMAL["ingest"]["sources"][0] | {"filters": "strict"}]}
    with pytest.raises(ConfigError, match=r"filters 'strict' is no policy; expected one of \['trusted', 'web'\]"):
        parse_config(MINIMAL | {"ingest": unknown})
    assert parse_config(MINIMAL | {"ingest": unknown, "filter": {"policies": {"strict": ["language", "c4"]}}})
    classified = {"sources": [MINIMAL["ingest"]["sources"][0] | {"domain": "classify"}]}
    with pytest.raises(ConfigError, match="domain: classify needs a domain classifier"):
        parse_config(MINIMAL | {"ingest": classified})
    with pytest.raises(ConfigError, match="commoncrawl is a listing of WARC files"):
        parse_config(MINIMAL | {"ingest": {"sources": [MINIMAL["ingest"]["sources"][0] | {"commoncrawl": {}}]}})
    with pytest.raises(ConfigError, match="ingest.sources: no source: declare at least one"):
        parse_config({"run": {"name": "t"}, "ingest": {}}).ingest.require_sources()


def test_the_readme_config_for_a_teams_own_data_is_valid():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Your own data"):]
    block = section[section.index("```yaml") + len("```yaml"):section.index("```", section.index("```yaml") + 7)]
    config = parse_config(yaml.safe_load(block), "README.md", base=Path("/work"))
    assert [(s.name, s.kind, s.mixing_domain, s.filters) for s in config.ingest.sources] == [
        ("cc", "warc", "web", "web"), ("wiki", "jsonl", "wiki", "trusted"), ("code", "parquet", "code", "trusted")]
    assert config.ingest.sources[2].storage.profile == "data-team"
