"""Document ids come from stable names of the input files, never from where they lie."""

import glob
import shutil
from pathlib import Path

import pytest

from curation.drops import marked
from curation.sources.names import default_names, glob_root, stable_names
from curation.sources.pdf import PdfSource
from curation.sources.warc import WarcSource
from tests.pdfs import single_column, two_column_paper
from tests.warcs import write_pages_warc


def write_cut_warc(path: Path) -> None:
    """A WARC cut short: its break becomes an error document, named by where it sits."""
    write_pages_warc(path, 3, seed=1)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 3])


def write_corpus(root: Path) -> None:
    """A WARC, a WARC cut short and a PDF, in subfolders."""
    (root / "cc").mkdir(parents=True)
    (root / "papers").mkdir()
    write_pages_warc(root / "cc" / "part-000.warc.gz", 3, seed=1)
    write_cut_warc(root / "cc" / "cut.warc.gz")
    (root / "papers" / "paper.pdf").write_bytes(two_column_paper(n_pages=2))


def named_files(pattern: str) -> dict[str, str]:
    """What a stage planner does: the files a pattern matches, named relative to its root."""
    return stable_names((path, glob_root(pattern)) for path in sorted(glob.glob(pattern, recursive=True)))


def real_path(doc) -> str:
    return doc.metadata.get("warc_file") or doc.metadata["pdf_path"]


def read_corpus(root) -> list:
    warcs, pdfs = named_files(f"{root}/**/*.warc.gz"), named_files(f"{root}/**/*.pdf")
    sources = [WarcSource(list(warcs), names=warcs), PdfSource(list(pdfs), per_page=True, names=pdfs)]
    return [doc for source in sources for doc in source.run(None, 0, 1)]


def test_ids_survive_moving_the_corpus(tmp_path):
    write_corpus(tmp_path / "here" / "corpus")
    shutil.copytree(tmp_path / "here" / "corpus", tmp_path / "there" / "moved")
    here, there = read_corpus(tmp_path / "here" / "corpus"), read_corpus(tmp_path / "there" / "moved")
    assert [d.id for d in here] == [d.id for d in there]
    assert "cc/cut.warc.gz@" in " ".join(d.id for d in here if marked(d))
    assert {d.id for d in here if "pdf_path" in d.metadata} == {"papers/paper.pdf#page=1", "papers/paper.pdf#page=2"}
    assert any(d.id.startswith("<urn:uuid:") for d in here)  # records keep their WARC-Record-ID
    for root, docs in ((tmp_path / "here" / "corpus", here), (tmp_path / "there" / "moved", there)):
        assert all(real_path(doc).startswith(f"{root}/") for doc in docs)


def test_default_names_survive_a_move_too(tmp_path):
    for folder in ("a", "b/c"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "paper.pdf").write_bytes(single_column([["Moved or not, the same paper."]]))
    [first] = PdfSource([str(tmp_path / "a" / "paper.pdf")]).run(None, 0, 1)
    [second] = PdfSource([str(tmp_path / "b" / "c" / "paper.pdf")]).run(None, 0, 1)
    assert first.id == second.id == "paper.pdf"
    assert first.metadata["pdf_path"] != second.metadata["pdf_path"]


@pytest.mark.parametrize("with_names", [True, False])
def test_same_named_files_in_different_subfolders_get_different_ids(tmp_path, with_names):
    pdfs, warcs = [], []
    for folder in ("x", "y/z"):
        (tmp_path / folder).mkdir(parents=True)
        pdfs.append(str(tmp_path / folder / "paper.pdf"))
        (tmp_path / folder / "paper.pdf").write_bytes(single_column([[f"The paper in {folder}."]]))
        warcs.append(str(tmp_path / folder / "cut.warc.gz"))
        write_cut_warc(tmp_path / folder / "cut.warc.gz")
    pdf_names = stable_names((path, str(tmp_path)) for path in pdfs) if with_names else None
    warc_names = stable_names((path, str(tmp_path)) for path in warcs) if with_names else None
    pdf_ids = [d.id for d in PdfSource(pdfs, names=pdf_names).run(None, 0, 1)]
    warc_ids = [d.id for d in WarcSource(warcs, names=warc_names).run(None, 0, 1) if marked(d)]
    assert pdf_ids == ["x/paper.pdf", "y/z/paper.pdf"]
    assert [warc_id.split("@")[0] for warc_id in warc_ids] == ["x/cut.warc.gz", "y/z/cut.warc.gz"]


def test_a_path_missing_from_names_stands_for_itself(tmp_path):
    paths = [str(tmp_path / "named.pdf"), str(tmp_path / "unnamed.pdf")]
    for path in paths:
        Path(path).write_bytes(single_column([["Some text."]]))
    docs = PdfSource(paths, names={paths[0]: "papers/named.pdf"}).run(None, 0, 1)
    assert [d.id for d in docs] == ["papers/named.pdf", paths[1]]


def test_sources_refuse_names_that_would_make_ids_collide():
    with pytest.raises(ValueError, match="would both be named 'same.warc.gz'"):
        WarcSource(["/a/1.warc.gz", "/b/2.warc.gz"], names=dict.fromkeys(["/a/1.warc.gz", "/b/2.warc.gz"], "same.warc.gz"))
    with pytest.raises(ValueError, match="would both be named 'part.pdf'"):
        stable_names([("/data/a/part.pdf", "/data/a"), ("/other/b/part.pdf", "/other/b")])


def test_arc_records_get_the_same_id_on_every_read_and_in_any_folder(shared_data, tmp_path):
    """warcio makes up a random WARC-Record-ID for ARC records; they are named by place instead."""
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        shutil.copy(shared_data / "warc" / "example.arc.gz", tmp_path / folder)
    reads = [WarcSource([str(tmp_path / folder / "example.arc.gz")]) for folder in ("one", "two", "two")]
    ids = [[d.id for d in source.run(None, 0, 1)] for source in reads]
    assert ids[0] == ids[1] == ids[2] and ids[0][0].startswith("example.arc.gz@")


def test_stable_names():
    assert stable_names([("/data/cc/2024/a.warc.gz", "/data"), ("/data/cc/2024/a.warc.gz", "/data/cc")]) == {
        "/data/cc/2024/a.warc.gz": "cc/2024/a.warc.gz"  # a path listed twice keeps its first name
    }
    crawl = "https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-51/segments/1/warc/x.warc.gz"
    named = stable_names([(crawl, "https://data.commoncrawl.org/")])
    assert named == {crawl: "crawl-data/CC-MAIN-2024-51/segments/1/warc/x.warc.gz"}
    outside = (("/data/x.pdf", "/other"), ("/data", "/data"), ("https://a.example/x.pdf", "https://b.example"))
    for path, root in outside:
        with pytest.raises(ValueError, match="is not inside its source root"):
            stable_names([(path, root)])


def test_default_names_use_url_paths_and_the_common_folder():
    mirror, bucket = "https://data.commoncrawl.org/crawl-data/C/a.warc.gz", "s3://commoncrawl/crawl-data/C/b.warc.gz"
    assert default_names([mirror, bucket, "/data/cc/x.warc.gz", "/data/more/y.warc.gz"]) == {
        mirror: "crawl-data/C/a.warc.gz",
        bucket: "crawl-data/C/b.warc.gz",
        "/data/cc/x.warc.gz": "cc/x.warc.gz",
        "/data/more/y.warc.gz": "more/y.warc.gz",
    }


@pytest.mark.parametrize(
    "pattern, root",
    [
        ("/data/cc/**/*.warc.gz", "/data/cc"),
        ("/data/x.warc.gz", "/data"),
        ("/data/cc/part-*.warc.gz", "/data/cc"),
        ("/data/cc/2024-[01]?/x.warc.gz", "/data/cc"),
        ("/x.pdf", "/"),
        ("/*/x.pdf", "/"),
        ("papers/*.pdf", "papers"),
        ("*.pdf", "."),
        ("https://data.commoncrawl.org/crawl-data/*.warc.gz", "https://data.commoncrawl.org/crawl-data"),
    ],
)
def test_glob_root(pattern, root):
    assert glob_root(pattern) == root
