"""Common Crawl listing, file selection and retrying downloads, against a local mirror server.

The server serves a Common Crawl layout generated here (a gzipped ``warc.paths.gz``
listing and gzipped WARC files written with warcio) over plain HTTP on 127.0.0.1,
with ``Range`` support and injectable faults, so the http(s) code path is the real one.
"""

import gzip
import socket
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curation.drops import marked
from curation import storage
from curation.sources import warc
from curation.sources.commoncrawl import (
    CommonCrawlConfig,
    DownloadError,
    crawl_files,
    listing_url,
    open_input,
    open_with_retries,
    select_files,
)
from curation.http_retry import RetryPolicy
from curation.sources.warc import WarcSource
from tests.warcs import write_pages_warc

CRAWL = "CC-MAIN-2024-51"
FAST_RETRY = RetryPolicy(max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05)


class MirrorHandler(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=N-``; the next queued fault for a path changes the answer."""

    server: "MirrorServer"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        faults = set((self.server.next_fault(path) or "").split("+"))  # "ignore_range+cut": both
        self.server.requests.append((path, self.headers.get("Range")))
        file = self.server.root / path.lstrip("/")
        if ".." in path or not file.is_file():
            self.send_error(404)
            return
        if "503" in faults:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = file.read_bytes()
        start = 0 if "ignore_range" in faults else self.range_start()
        if start >= len(data) > 0:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        body = data[start:]
        if "stall" in faults:
            time.sleep(self.server.stall_s)
        if faults & {"cut", "reset"}:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_abruptly(reset="reset" in faults)
            return
        self.wfile.write(body)

    def range_start(self) -> int:
        value = self.headers.get("Range") or ""
        return int(value.removeprefix("bytes=").split("-")[0]) if value.startswith("bytes=") else 0

    def close_abruptly(self, reset: bool) -> None:
        """End the connection mid-body: a TCP reset (RST), or a clean close (FIN) short of Content-Length."""
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.rfile.close()
        self.wfile.close()
        self.connection.close()


class MirrorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), MirrorHandler)
        self.root = root
        self.faults: dict[str, deque[str]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.stall_s = 1.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def inject(self, relative_path: str, *faults: str) -> None:
        self.faults.setdefault("/" + relative_path, deque()).extend(faults)

    def next_fault(self, path: str) -> str | None:
        queue = self.faults.get(path)
        return queue.popleft() if queue else None

    def handle_error(self, request, client_address) -> None:  # the faults break connections on purpose
        pass


def warc_path(i: int) -> str:
    return f"crawl-data/{CRAWL}/segments/1733066035857.{i}/warc/{CRAWL}-20241201162023-{i:05d}.warc.gz"


@pytest.fixture
def mirror(tmp_path) -> Path:
    """A Common Crawl layout with five gzipped WARC files of five pages each."""
    root = tmp_path / "mirror"
    paths = [warc_path(i) for i in range(5)]
    for i, path in enumerate(paths):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        write_pages_warc(root / path, n_pages=5, seed=i)
    listing = root / f"crawl-data/{CRAWL}/warc.paths.gz"
    listing.write_bytes(gzip.compress("".join(f"{p}\n" for p in reversed(paths)).encode()))
    return root


@pytest.fixture
def server(mirror):
    with MirrorServer(mirror) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield httpd
        httpd.shutdown()
        thread.join()


def read_all(url: str, **kwargs) -> bytes:
    with open_with_retries(url, retry=FAST_RETRY, **kwargs) as stream:
        return stream.read()


def test_listing_selection_is_seeded_sorted_and_complete(server):
    two = CommonCrawlConfig(crawl=CRAWL, files=2, shard_seed=7, base_url=server.base_url)
    first = crawl_files(two)
    assert first == crawl_files(two) and first == sorted(first) and len(set(first)) == 2
    assert all(url.startswith(server.base_url + f"crawl-data/{CRAWL}/segments/") for url in first)
    everything = crawl_files(CommonCrawlConfig(crawl=CRAWL, files="all", base_url=server.base_url))
    assert everything == [server.base_url + warc_path(i) for i in range(5)]
    picks = {tuple(select_files([warc_path(i) for i in range(5)], 2, seed)) for seed in range(10)}
    assert len(picks) > 1  # the seed matters
    with pytest.raises(ValueError, match="files is 6 but the listing has only 5"):
        crawl_files(CommonCrawlConfig(crawl=CRAWL, files=6, base_url=server.base_url))


def test_selection_does_not_depend_on_listing_order_or_growth():
    paths = [warc_path(i) for i in range(20)]
    chosen = select_files(paths, 3, seed=1)
    assert select_files(list(reversed(paths)), 3, seed=1) == chosen
    grown = select_files(paths + [warc_path(i) for i in range(20, 40)], 40, seed=1)
    assert set(chosen) <= set(grown)


def test_local_mirror_folder_gives_paths_that_open(mirror):
    config = CommonCrawlConfig(crawl=CRAWL, files=2, shard_seed=7, base_url=str(mirror))
    files = crawl_files(config)
    assert files == [str(mirror / path) for path in select_files([warc_path(i) for i in range(5)], 2, seed=7)]
    with open_input(files[0]) as stream:
        assert stream.read() == Path(files[0]).read_bytes()


def test_missing_listing_names_the_url(server, mirror):
    for base in (server.base_url, str(mirror)):
        config = CommonCrawlConfig(crawl="CC-MAIN-2023-06", base_url=base)
        with pytest.raises(FileNotFoundError, match="no Common Crawl listing at .*CC-MAIN-2023-06/warc.paths.gz") as err:
            crawl_files(config)
        assert listing_url(config) in str(err.value)


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="commoncrawl.crawl"):
        CommonCrawlConfig(crawl="2024-51")
    with pytest.raises(ValueError, match="commoncrawl.kind"):
        CommonCrawlConfig(kind="wat")
    with pytest.raises(ValueError, match="commoncrawl.files"):
        CommonCrawlConfig(files=0)


def test_s3_urls_and_a_clear_error_without_s3fs(monkeypatch):
    config = CommonCrawlConfig(crawl=CRAWL, kind="wet", base_url="s3://commoncrawl/")
    assert listing_url(config) == f"s3://commoncrawl/crawl-data/{CRAWL}/wet.paths.gz"
    monkeypatch.setattr(storage, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"s3fs .*pip install s3fs.*https://data.commoncrawl.org/"):
        crawl_files(config)
    with pytest.raises(ImportError, match="s3fs"):
        open_input(f"s3://commoncrawl/{warc_path(0)}")


@pytest.mark.parametrize(
    "faults",
    [
        ("503", "503"),
        ("reset",),
        ("cut",),
        ("cut", "503", "cut"),
        ("cut", "ignore_range"),
        ("cut", "cut", "ignore_range+cut", "ignore_range"),
    ],
    ids=["503-twice", "connection-reset", "cut-mid-body", "cut-503-cut", "server-ignores-range", "ignored-range-cut-short"],
)
def test_download_survives_faults_and_resumes_from_the_byte_read(server, mirror, faults):
    server.inject(warc_path(0), *faults)
    assert read_all(server.base_url + warc_path(0)) == (mirror / warc_path(0)).read_bytes()
    ranges = [r for p, r in server.requests if p == "/" + warc_path(0)]
    assert len(ranges) == len([f for f in faults if f != "ignore_range"]) + 1  # ignoring Range is no failure
    if faults[0] in ("cut", "reset"):
        assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"


def test_stalled_response_times_out_and_is_retried(server, mirror):
    server.stall_s = 1.0
    server.inject(warc_path(1), "stall")
    assert read_all(server.base_url + warc_path(1), timeout_s=0.3) == (mirror / warc_path(1)).read_bytes()


def test_exhausted_retries_and_missing_files_are_final(server):
    url = server.base_url + warc_path(2)
    server.inject(warc_path(2), *["503"] * 4)
    with pytest.raises(DownloadError, match=rf"{url}: gave up at byte 0 after 4 failed attempts: HTTP 503"):
        read_all(url)
    with pytest.raises(FileNotFoundError, match="HTTP 404"):
        read_all(server.base_url + "crawl-data/nothing.warc.gz")


def test_warc_source_reads_a_crawl_through_the_retrying_stream(server, monkeypatch):
    """WarcSource opens paths with ``open_input``: faults mid-download are retried, not corrupt files."""
    monkeypatch.setattr(warc, "open_input", lambda path, storage: open_input(path, retry=FAST_RETRY, storage=storage))
    urls = crawl_files(CommonCrawlConfig(crawl=CRAWL, files=2, shard_seed=3, base_url=server.base_url))
    for url in urls:
        server.inject(url.removeprefix(server.base_url), "cut", "503", "reset")
    docs = list(WarcSource(urls).run(None, 0, 1))
    assert len(docs) == 10 and not any(marked(d) for d in docs)
    assert {d.metadata["warc_file"] for d in docs} == set(urls)


def test_backoff_is_seeded_capped_and_honours_retry_after():
    policy = RetryPolicy(max_retries=5, backoff_base_s=1.0, backoff_max_s=8.0, seed=3)
    delays = [policy.delay_s(attempt, key="u") for attempt in range(1, 7)]
    assert delays == [policy.delay_s(attempt, key="u") for attempt in range(1, 7)]
    assert 0.5 <= delays[0] <= 1.0 and all(4.0 <= d <= 8.0 for d in delays[3:])
    assert policy.delay_s(1, "u", retry_after_s=5) == 5 and policy.delay_s(1, "u", retry_after_s=100) == 8.0
