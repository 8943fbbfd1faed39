import gzip
import shutil

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from curation.drops import marked
from curation.sources.warc import WarcSource, detect_charset
from tests.warcs import page_html, response, write_pages_warc


def read(paths, **kwargs):
    source = WarcSource([str(p) for p in paths], **kwargs)
    return list(source.run(None, 0, 1)), source.stats.stats


def test_only_http_200_html_responses_become_documents(tmp_path):
    urls = write_pages_warc(tmp_path / "a.warc.gz", 5, seed=1)
    docs, stats = read([tmp_path / "a.warc.gz"])
    assert [d.metadata["url"] for d in docs] == urls
    assert stats["skipped_status_not_200"].total == 1
    assert stats["skipped_payload_image_png"].total == 1
    assert stats["skipped_request"].total == 1
    first = docs[0]
    assert first.id.startswith("<urn:uuid:") and first.metadata["warc_record_id"] == first.id
    assert first.metadata["source"] == "web" and first.metadata["charset"] == "utf-8"
    assert first.metadata["warc_offset"] == 0 and docs[1].metadata["warc_offset"] > 0
    assert "<article>" in first.text


def test_declared_and_undeclared_charsets_are_decoded(tmp_path):
    text = "Déjà vu à l'été, où naïveté et façade se côtoient."
    with open(tmp_path / "enc.warc.gz", "wb") as out:
        writer = WARCWriter(out, gzip=True)
        response(writer, "https://fr.example/a", page_html("a", text, "windows-1252").encode("cp1252"), content_type="text/html")
        response(writer, "https://fr.example/b", page_html("b", text, "iso-8859-1").encode("latin-1"), content_type="text/html; charset=iso-8859-1")
    docs, _ = read([tmp_path / "enc.warc.gz"])
    assert [d.metadata["charset"] for d in docs] == ["windows-1252", "iso-8859-1"]
    assert all(text in d.text for d in docs)
    assert detect_charset("żółć gęślą jaźń".encode("utf-8") * 20, None) == "utf-8"


def test_oversized_record_is_marked_for_the_ledger(tmp_path):
    write_pages_warc(tmp_path / "a.warc.gz", 2, seed=2, extras=False)
    docs, _ = read([tmp_path / "a.warc.gz"], max_record_bytes=300)
    assert [marked(d).label for d in docs] == ["warc/oversized_record"] * 2
    assert "a.warc.gz" in marked(docs[0]).detail and "exceeds 300 bytes" in marked(docs[0]).detail


def test_broken_gzip_keeps_the_records_before_the_break(tmp_path):
    write_pages_warc(tmp_path / "full.warc.gz", 6, seed=3, extras=False)
    data = (tmp_path / "full.warc.gz").read_bytes()
    with open(tmp_path / "full.warc.gz", "rb") as stream:
        records = ArchiveIterator(stream)
        offsets = [records.get_record_offset() for _ in records]
    cut = offsets[4] + (offsets[5] - offsets[4]) * 2 // 3  # in the 5th record's payload, mid gzip member
    (tmp_path / "cut.warc.gz").write_bytes(data[:cut])
    docs, stats = read([tmp_path / "cut.warc.gz"])
    good = [d for d in docs if not marked(d)]
    broken = [d for d in docs if marked(d)]
    assert len(good) == 4 and [d.metadata["truncated"] for d in good] == [False] * 4
    assert len(broken) == 1 and marked(broken[0]).label == "warc/truncated"  # the partial 5th record
    assert broken[0].metadata["warc_offset"] == offsets[4] and broken[0].id.endswith(f"cut.warc.gz@{offsets[4]}")
    assert f"cut.warc.gz: the record at byte {offsets[4]}" in marked(broken[0]).detail
    assert "file truncated" in marked(broken[0]).detail
    assert stats["truncated_records"].total == 1


def test_real_broken_and_odd_warcs(shared_data, tmp_path):
    warcs = shared_data / "warc"
    docs, _ = read([warcs / "example-bad-non-chunked.warc.gz"])
    assert [(marked(d) and marked(d).label) for d in docs] == ["warc/corrupt"]
    assert "example-bad-non-chunked.warc.gz" in marked(docs[0]).detail
    assert "non-chunked gzip" in marked(docs[0]).detail
    docs, _ = read([warcs / "example-wrong-chunks.warc.gz"])
    assert marked(docs[-1]).label == "warc/corrupt"
    docs, _ = read([warcs / "example.arc.gz"])
    assert len(docs) == 1 and docs[0].metadata["url"] == "http://example.com/"
    docs, _ = read([warcs / "cc-whirlwind.warc.gz"])
    assert len(docs) == 1 and docs[0].metadata["url"].startswith("https://") and docs[0].metadata["charset"] == "utf-8"
    docs, _ = read([warcs / "example-trunc.warc"])
    assert len(docs) == 1 and not marked(docs[0])
    plain = tmp_path / "plain.warc"
    with gzip.open(warcs / "example.warc.gz") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    docs, _ = read([plain])
    assert len(docs) == 1
