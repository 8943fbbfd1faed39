"""A team's own document files as named sources: JSONL (Dolma), Parquet, Hugging Face datasets.

Each test is a real ingest (and filter) run on the session's 2-worker LocalCluster, as
`curate ingest` runs it, queried back through the run's DuckDB views.
"""

import json

import zstandard
from datatrove.utils.logging import logger

from curation.drops import marked
from curation.sources.document_files import FieldMapping, HfDatasetSource, JsonlSource, ParquetSource
from pipelines.sql import query
from tests.documents import PROSE, dolma_record, varied_text, write_code_dump, write_dolma, write_qa_dataset
from tests.test_runner import make_config, run, web_source
from tests.warcs import write_pages_warc


def sql(config, text: str) -> list[tuple]:
    return query(config.run_dir, text)[1]


def test_every_kind_is_read_with_its_source_name_and_domain(tmp_path, client):
    write_pages_warc(tmp_path / "crawl" / "part-000.warc.gz", 4, seed=3)
    write_dolma(tmp_path / "wiki" / "a.jsonl.gz", [dolma_record(i) for i in range(5)])
    write_code_dump(tmp_path / "code" / "dump.parquet", 4)
    write_qa_dataset(tmp_path / "qa", 3)
    sources = [
        web_source(str(tmp_path / "crawl" / "*.warc.gz"), name="crawl"),
        {"name": "wiki", "kind": "jsonl", "paths": [str(tmp_path / "wiki" / "*.jsonl.gz")], "filters": "trusted"},
        {"name": "code", "kind": "parquet", "paths": [str(tmp_path / "code" / "*.parquet")], "text_key": "content",
         "id_key": "path", "domain": "software"},
        {"name": "qa", "kind": "hf", "paths": [str(tmp_path / "qa")], "id_key": "question_id", "domain": "forum"},
    ]
    config = make_config(tmp_path, ingest={"sources": sources})
    summary = run(config, "ingest", client)
    assert summary.counts["removed"] == {}
    assert sql(config, "select source, domain, count(*) from ingest group by all order by 1") == [
        ("code", "software", 4), ("crawl", "web", 4), ("qa", "forum", 3), ("wiki", "wiki", 5)]
    assert sql(config, "select id from ingest where source <> 'crawl' order by id")[:3] == [
        ("code/lib/scale_0.py",), ("code/lib/scale_1.py",), ("code/lib/scale_2.py",)]
    rows = sql(config, "select id, source_row, title from ingest where source = 'qa' order by source_row")
    assert [(r[0], r[1]) for r in rows] == [("qa/q0", 0), ("qa/q1", 1), ("qa/q2", 2)]  # ranks share the rows
    assert rows[0][2].startswith("How do I keep sheep number 0")  # a title field fills the title column


def test_a_dolma_file_round_trips_its_fields(tmp_path, client):
    records = [dolma_record(i) for i in range(3)]
    write_dolma(tmp_path / "wiki" / "a.jsonl.gz", records)
    source = {"name": "wiki", "kind": "jsonl", "paths": [str(tmp_path / "wiki" / "*.jsonl.gz")], "domain": "wiki"}
    config = make_config(tmp_path, ingest={"sources": [source]})
    run(config, "ingest", client)
    rows = sql(config, "select id, text, source, source_file, extra from ingest order by id")
    for record, (doc_id, text, source_name, source_file, extra) in zip(records, rows):
        fields = json.loads(extra)
        assert (doc_id, text, source_name) == (f"wiki/{record['id']}", record["text"], "wiki")
        assert source_file == str(tmp_path / "wiki" / "a.jsonl.gz")
        assert fields == {"original_source": "wikipedia", "added": record["added"], "created": record["created"],
                          "metadata": record["metadata"]}
    title = sql(config, "select extra->>'$.metadata.title' from ingest where id = 'wiki/doc-0001'")
    assert title == [("Valley 1",)]


def test_bad_lines_and_files_of_another_kind_are_ledger_rows(tmp_path, client):
    write_dolma(tmp_path / "docs" / "a.jsonl.gz", [dolma_record(i) for i in range(4)],
                extra_lines=('{"id": "cut-off", "text": "The river', json.dumps({"id": "empty", "text": ""}),
                             json.dumps({"id": "code", "content": "print(1)"})))
    write_code_dump(tmp_path / "docs" / "b.jsonl", 3)  # a Parquet file under a .jsonl name
    write_pages_warc(tmp_path / "docs" / "c.jsonl.gz", 2, seed=1)  # a WARC under a JSONL source
    (tmp_path / "docs" / "d.jsonl").write_text("just some notes\nabout nothing\n")
    rows = tmp_path / "crawl" / "rows.warc.gz"
    write_dolma(rows, [dolma_record(9)])  # JSON lines under a WARC source
    sources = [
        {"name": "docs", "kind": "jsonl", "paths": [str(tmp_path / "docs" / "*")], "domain": "wiki"},
        web_source(str(rows), name="crawl"),
    ]
    config = make_config(tmp_path, ingest={"sources": sources})
    summary = run(config, "ingest", client)
    drops = dict(sql(config, "select id, reason || ': ' || detail from removed where stage = 'ingest'"))
    assert summary.counts["kept"] == 4 and summary.counts["in"] == 4 + len(drops) == 4 + 7
    assert drops["docs/a.jsonl.gz#4"].startswith("jsonl/bad_json: ") and "line 4: not JSON" in drops["docs/a.jsonl.gz#4"]
    assert "field 'text' is empty" in drops["docs/a.jsonl.gz#5"]
    assert "field 'text' is missing (fields: content, id); set text_key" in drops["docs/a.jsonl.gz#6"]
    assert drops["docs/b.jsonl"].endswith("looks like a Parquet file, not JSON lines: declare kind: parquet")
    assert drops["docs/c.jsonl.gz"].endswith("looks like gzip'd a WARC, not JSON lines: declare kind: warc")
    assert drops["docs/d.jsonl"].startswith("jsonl/not_jsonl: ") and "looks like plain text" in drops["docs/d.jsonl"]
    assert "looks like JSON lines, not a WARC: declare kind: jsonl" in drops["rows.warc.gz@0"]
    assert sql(config, "select count(*) from removed where source = 'docs'") == [(6,)]  # drops keep their source


def test_a_drop_never_shows_the_files_content(tmp_path):
    secret = "PATIENT-RECORD-7731"
    logged: list[str] = []
    sink = logger.add(lambda message: logged.append(str(message)))
    write_dolma(tmp_path / "a.jsonl.gz", [dolma_record(0)], extra_lines=(f'{{"id": "x", "text": "{secret}',))
    (tmp_path / "b.jsonl").write_text(f"{secret} is not JSON\n")
    drops = [doc for doc in read_all(JsonlSource(FieldMapping("d", "wiki"), [str(tmp_path / "a.jsonl.gz"), str(tmp_path / "b.jsonl")]))
             if marked(doc)]
    logger.remove(sink)
    assert [marked(doc).label for doc in drops] == ["jsonl/bad_json", "jsonl/not_jsonl"]
    assert any("a.jsonl.gz: line 1: not JSON" in line for line in logged)  # warned, naming the file and line
    assert not any(secret in line for line in logged) and not any(secret in marked(doc).detail for doc in drops)


def test_a_trusted_source_skips_the_web_heuristics_but_not_language_id(tmp_path, client):
    terse = ["build log", "step 1 ok", "step 2 ok", "step 3 ok", "done"] * 4  # short lines Gopher and C4 drop
    records = [{"id": f"log-{i}", "text": "\n".join(terse)} for i in range(3)]
    records.append({"id": "fr", "text": "Le village se trouve au bord de la rivière, et les habitants y cultivent la vigne depuis des siècles."})
    records.append({"id": "prose", "text": PROSE})
    for name in ("strict", "trusted"):
        write_dolma(tmp_path / name / "logs.jsonl.gz", records)
    sources = [{"name": name, "kind": "jsonl", "paths": [str(tmp_path / name / "*.jsonl.gz")], "filters": name}
               for name in ("strict", "trusted")]
    config = make_config(tmp_path, ingest={"sources": [sources[0] | {"filters": "web"}, sources[1]]})
    run(config, "ingest", client)
    run(config, "filter", client)
    kept = sql(config, "select source, string_agg(id, ',' order by id) from filter group by 1 order by 1")
    assert kept == [("strict", "strict/prose"), ("trusted", "trusted/log-0,trusted/log-1,trusted/log-2,trusted/prose")]
    assert sql(config, "select reason from removed where stage = 'filter' and id = 'trusted/fr'") == [("language/fr",)]


def read_all(reader) -> list:
    return [doc for rank in range(2) for doc in reader.run(rank=rank, world_size=2)]


def test_a_parquet_file_without_the_text_column_is_one_row_naming_its_columns(tmp_path):
    path = write_code_dump(tmp_path / "dump.parquet", 5)
    [drop] = read_all(ParquetSource(FieldMapping("code", "code"), [str(path)]))  # text_key left at "text"
    assert marked(drop).label == "parquet/no_text_column"
    assert marked(drop).detail.endswith("no column 'text' for its 5 rows (columns: path, repo, license, content); set text_key")


def test_zstd_lines_and_a_dataset_dict_split_are_read(tmp_path):
    import datasets

    lines = "\n".join(json.dumps(dolma_record(i, varied_text(i))) for i in range(4)).encode()
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    docs = read_all(JsonlSource(FieldMapping("z", "wiki"), [str(tmp_path / "a.jsonl.zst")]))
    assert sorted(doc.id for doc in docs) == [f"z/doc-{i:04d}" for i in range(4)]
    splits = {name: datasets.Dataset.from_dict({"text": [f"{name} {varied_text(i)}" for i in range(3)]}) for name in ("train", "test")}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "qa"))
    test = read_all(HfDatasetSource(FieldMapping("qa", "forum", id_key=None), [str(tmp_path / "qa")], split="test"))
    assert sorted(doc.id for doc in test) == ["qa/qa#0", "qa/qa#1", "qa/qa#2"] and all(d.text.startswith("test ") for d in test)
    [drop] = read_all(HfDatasetSource(FieldMapping("qa", "forum"), [str(tmp_path / "qa")], split="validation"))
    assert marked(drop).detail.endswith("no split 'validation' (splits: train, test); set split")
