"""Damaged WARC files, written with warcio and then broken byte by byte: a corrupt gzip
member costs only its own record, a cut record is dropped, a file that is no WARC says so."""

import gzip
import json

from warcio.archiveiterator import ArchiveIterator

from curation.drops import marked
from curation.sources.warc import WarcSource
from tests.warcs import write_pages_warc


def read(paths, **kwargs):
    source = WarcSource([str(p) for p in paths], **kwargs)
    return list(source.run(None, 0, 1)), source.stats.stats


def record_spans(path):
    with open(path, "rb") as stream:
        records = ArchiveIterator(stream)
        return [(records.get_record_offset(), records.get_record_length()) for _ in records]


def split(docs):
    return [d for d in docs if not marked(d)], [d for d in docs if marked(d)]


def test_flipped_bytes_in_one_member_cost_only_that_record(tmp_path):
    path = tmp_path / "pages.warc.gz"
    urls = write_pages_warc(path, 40, seed=7, extras=False)
    whole, _ = read([path])
    spans = record_spans(path)
    start, length = spans[17]
    data = bytearray(path.read_bytes())
    middle = start + length // 2
    for i in range(middle, middle + 16):
        data[i] ^= 0xFF
    (tmp_path / "flipped.warc.gz").write_bytes(bytes(data))
    docs, stats = read([tmp_path / "flipped.warc.gz"])
    good, broken = split(docs)
    assert [d.metadata["url"] for d in good] == urls[:17] + urls[18:]
    assert [d.id for d in good] == [d.id for i, d in enumerate(whole) if i != 17]  # the usual ids
    assert [d.metadata["warc_offset"] for d in good] == [d.metadata["warc_offset"] for i, d in enumerate(whole) if i != 17]
    assert len(broken) == 1 and marked(broken[0]).label == "warc/corrupt"
    assert broken[0].metadata["skipped_bytes"] == length and broken[0].metadata["warc_offset"] == start
    detail = marked(broken[0]).detail
    assert "flipped.warc.gz" in detail and f"skipped bytes {start}-{start + length} ({length} bytes)" in detail
    assert stats["skipped_bytes"].total == length


def test_damage_spanning_members_resyncs_at_the_next_good_one(tmp_path):
    path = tmp_path / "pages.warc.gz"
    urls = write_pages_warc(path, 10, seed=8, extras=False)
    spans = record_spans(path)
    data = bytearray(path.read_bytes())
    data[spans[3][0] + 20: spans[5][0] + 20] = b"\x00" * (spans[5][0] - spans[3][0])  # records 4 to 6 wiped
    (tmp_path / "wiped.warc.gz").write_bytes(bytes(data))
    good, broken = split(read([tmp_path / "wiped.warc.gz"])[0])
    assert [d.metadata["url"] for d in good] == urls[:3] + urls[6:]
    assert len(broken) == 1 and broken[0].metadata["skipped_bytes"] == spans[6][0] - spans[3][0]


def test_a_record_cut_by_truncation_is_dropped(tmp_path):
    path = tmp_path / "pages.warc.gz"
    urls = write_pages_warc(path, 8, seed=9, extras=False)
    spans = record_spans(path)
    cut = spans[5][0] + spans[5][1] // 2
    (tmp_path / "cut.warc.gz").write_bytes(path.read_bytes()[:cut])
    good, broken = split(read([tmp_path / "cut.warc.gz"])[0])
    assert [d.metadata["url"] for d in good] == urls[:5]
    assert [marked(d).label for d in broken] == ["warc/truncated"]
    assert broken[0].metadata["warc_offset"] == spans[5][0]
    assert f"cut.warc.gz: the record at byte {spans[5][0]}" in marked(broken[0]).detail

    plain = tmp_path / "cut.warc"  # the same, uncompressed
    with gzip.open(path) as src:
        whole = src.read()
    plain.write_bytes(whole[: len(whole) * 3 // 4])
    good, broken = split(read([plain])[0])
    assert len(good) == 5 and [marked(d).label for d in broken] == ["warc/truncated"]
    assert "cut.warc" in marked(broken[0]).detail and "file truncated" in marked(broken[0]).detail


def test_files_that_are_no_warc_say_what_they_look_like(tmp_path, capfd):
    rows = [{"text": f"secret line {i}", "id": i} for i in range(50)]
    (tmp_path / "rows.warc.gz").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "notes.warc").write_text("Some notes, secret line and all.\nNothing like a WARC here.\n" * 30)
    with gzip.open(tmp_path / "packed.warc.gz", "wt") as out:
        out.write("secret line in a gzip\n" * 30)
    details = {}
    for name in ("rows.warc.gz", "notes.warc", "packed.warc.gz"):
        docs, _ = read([tmp_path / name])
        assert len(docs) == 1 and marked(docs[0]).label == "warc/not_a_warc" and docs[0].text == ""
        assert docs[0].id.endswith(f"{name}@0") and name in marked(docs[0]).detail
        details[name] = marked(docs[0]).detail
    assert "looks like JSON lines, not a WARC: declare kind: jsonl" in details["rows.warc.gz"]
    assert "not gzip though named .gz" in details["rows.warc.gz"]
    assert "looks like plain text, not a WARC" in details["notes.warc"] and ".gz" not in details["notes.warc"]
    assert "(gzip): looks like plain text, not a WARC" in details["packed.warc.gz"]
    captured = capfd.readouterr()
    assert "secret line" not in captured.out + captured.err + " ".join(details.values())
