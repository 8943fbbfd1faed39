import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from curation.drops import Drop
from curation.shards import (
    LabelledSink,
    RemovedSink,
    ShardReader,
    ShardWriter,
    document_row,
    list_kept_shards,
    list_removed_shards,
    row_document,
    safe_segment,
)


def docs(n, domain="wiki"):
    return [Document(text=f"text {i}", id=f"d{i}", metadata={"domain": domain, "url": f"u{i}", "custom": [i]}) for i in range(n)]


def test_row_round_trip_keeps_known_and_extra_metadata():
    doc = Document(text="hello", id="x", metadata={"lang": "en", "lang_score": 0.9, "tags": [1, 3]})
    row = document_row(doc)
    assert row["lang"] == "en" and row["extra"] == '{"tags": [1, 3]}'
    back = row_document(row | {"url": None})
    assert back.metadata == doc.metadata and back.text == "hello"


def test_writer_partitions_by_domain_and_reader_reads_back(tmp_path):
    writer = ShardWriter(tmp_path / "stage")
    list(writer.run(iter(docs(3, "wiki") + docs(2, "code")), rank=4))
    files = list_kept_shards(tmp_path / "stage")
    assert [f.relative_to(tmp_path / "stage").as_posix() for f in files] == ["code/00004.parquet", "wiki/00004.parquet"]
    table = pq.read_table(files[1])
    assert table.column_names[:2] == ["id", "text"] and "quality_score" in table.column_names
    read = list(ShardReader(tmp_path / "stage").run(rank=0, world_size=1))
    assert sorted(d.id for d in read) == ["d0", "d0", "d1", "d1", "d2"]
    assert read[0].metadata["custom"] == [0]


def test_writer_leaves_no_file_when_the_rank_fails(tmp_path):
    def exploding():
        yield from docs(2)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        list(ShardWriter(tmp_path / "s").run(exploding(), rank=0))
    assert [p for p in (tmp_path / "s").rglob("*") if p.is_file()] == []


def test_rerun_of_a_rank_replaces_its_earlier_outputs(tmp_path):
    list(ShardWriter(tmp_path / "s").run(iter(docs(3, "a")), rank=1))
    list(ShardWriter(tmp_path / "s").run(iter(docs(2, "b")), rank=1))
    assert [p.parent.name for p in list_kept_shards(tmp_path / "s")] == ["b"]


def test_removed_sink_is_shared_by_nested_steps_and_finishes_on_last_exit(tmp_path):
    sink = RemovedSink(tmp_path / "s")
    with sink:
        with sink:
            doc = docs(1)[0]
            doc.metadata["filter_reason"] = "gopher_short"
            LabelledSink(sink, "gopher_quality").write(doc, rank=2)  # a datatrove filter's exclusion writer
        assert list_removed_shards(tmp_path / "s") == []  # still open: an outer step holds it
        sink.write(docs(1)[0], rank=2, drop=Drop("extract", "empty", "no text"))
    files = list_removed_shards(tmp_path / "s")
    assert [f.parent.relative_to(tmp_path / "s" / "_removed").as_posix() for f in files] == ["extract/empty", "gopher_quality/gopher_short"]
    row = pq.read_table(files[0]).to_pylist()[0]
    assert row["reason"] == "extract/empty" and row["detail"] == "no text"
    with pytest.raises(RuntimeError, match="already finished"):
        with sink:
            sink.write(docs(1)[0], rank=2, drop=Drop("extract", "empty"))


def test_bad_metadata_type_names_the_column(tmp_path):
    bad = Document(text="t", id="x", metadata={"lang_score": "high"})
    with pytest.raises(ValueError, match="column 'lang_score' expects double"):
        list(ShardWriter(tmp_path / "s").run(iter([bad]), rank=0))


@pytest.mark.parametrize("raw,clean", [("wiki", "wiki"), ("../etc", "etc"), ("synthetic/qa", "synthetic/qa"), ("_removed", "removed"), ("a b", "a_b"), ("", "unknown")])
def test_safe_segment(raw, clean):
    assert safe_segment(raw) == clean
