"""Common Crawl as an input: which files of a crawl to read, and reading them over HTTPS.

A crawl publishes one listing per file kind, ``crawl-data/<crawl>/<kind>.paths.gz``
(gzipped text, one path relative to the bucket root per line). :func:`crawl_files`
reads that listing from ``base_url`` -- ``https://data.commoncrawl.org/``,
``s3://commoncrawl/`` or a local mirror folder with the same layout -- and returns the
URLs of a deterministic selection of files.

:func:`open_input` opens any such URL for streaming. Over http(s) it returns a
:class:`RetryingHttpStream` that survives what long downloads meet (503 "slow down"
answers, connection resets, read timeouts, a response cut mid-body) by reconnecting
with a ``Range`` request from the byte already read, so a reader sees one unbroken
stream. Everything else goes through fsspec (:mod:`curation.storage`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

import httpx
from datatrove.utils.logging import logger

from curation.errors import UserError
from curation.storage import open_binary, require_package
from curation.http_retry import RetryPolicy, parse_retry_after_s, retryable_status

CRAWL_NAME = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")
KINDS = ("warc", "wet")
DEFAULT_BASE_URL = "https://data.commoncrawl.org/"
READ_CHUNK_BYTES = 1 << 20
CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")
DOWNLOAD_RETRY = RetryPolicy(max_retries=8, backoff_base_s=1.0, backoff_max_s=60.0)
# The listing is read in the driver before any work: a wrong address should fail in seconds, not minutes.
LISTING_RETRY = RetryPolicy(max_retries=2, backoff_base_s=1.0, backoff_max_s=4.0)


class ListingUnreadable(UserError, OSError):
    pass


class ListingMissing(ListingUnreadable, FileNotFoundError):
    pass


@dataclass(frozen=True)
class CommonCrawlConfig:
    """The ``commoncrawl:`` section of a pipeline config.

    ``files`` is how many files of the listing to read (a seeded sample) or ``"all"``.
    ``shard_seed`` picks the sample: the same seed always selects the same files.
    """

    crawl: str = "CC-MAIN-2024-51"
    kind: Literal["warc", "wet"] = "warc"
    files: int | Literal["all"] = 1
    shard_seed: int = 0
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        if not CRAWL_NAME.match(self.crawl):
            raise ValueError(f"commoncrawl.crawl: expected a crawl name like CC-MAIN-2024-51, got {self.crawl!r}")
        if self.kind not in KINDS:
            raise ValueError(f"commoncrawl.kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.files != "all" and (isinstance(self.files, bool) or not isinstance(self.files, int) or self.files < 1):
            raise ValueError(f"commoncrawl.files: expected a positive number or 'all', got {self.files!r}")
        if not self.base_url:
            raise ValueError("commoncrawl.base_url: expected a URL or a folder, got an empty value")


class DownloadError(OSError):
    """An HTTP download that failed for good (retries exhausted or a final answer)."""


def join_url(base_url: str, relative: str) -> str:
    """``base_url`` + a bucket-relative path, for URLs and local folders alike."""
    return base_url.rstrip("/") + "/" + relative.lstrip("/")


def listing_url(config: CommonCrawlConfig) -> str:
    return join_url(config.base_url, f"crawl-data/{config.crawl}/{config.kind}.paths.gz")


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def require_s3fs(url: str) -> None:
    require_package(url, f", or set commoncrawl.base_url to {DEFAULT_BASE_URL}")


def read_listing(config: CommonCrawlConfig, storage: Mapping | None = None) -> list[str]:
    """The bucket-relative paths in the crawl's ``<kind>.paths.gz``."""
    url = listing_url(config)
    try:
        with open_input(url, retry=LISTING_RETRY, timeout_s=30.0, storage=storage) as stream:
            text = gzip.decompress(stream.read()).decode("utf-8")
    except FileNotFoundError as err:
        raise ListingMissing(
            f"no Common Crawl listing at {url}: check commoncrawl.crawl ({config.crawl}), "
            f"commoncrawl.kind ({config.kind}) and commoncrawl.base_url"
        ) from err
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ListingUnreadable(
            f"cannot read the Common Crawl listing {url}: {err}; check commoncrawl.base_url and the network"
        ) from err
    return [line.strip() for line in text.splitlines() if line.strip()]


def sample_rank(seed: int, path: str) -> str:
    """A path's place in the seeded shuffle: a hash, so the choice never depends on the
    Python version, and adding files to a listing does not reshuffle the others."""
    return hashlib.sha256(f"{seed}\0{path}".encode()).hexdigest()


def select_files(paths: list[str], files: int | Literal["all"], seed: int) -> list[str]:
    """``files`` paths picked by ``seed`` (or all of them), in sorted order."""
    pool = sorted(set(paths))
    if files == "all":
        return pool
    if files > len(pool):
        raise ValueError(f"commoncrawl.files is {files} but the listing has only {len(pool)} files")
    return sorted(sorted(pool, key=lambda path: sample_rank(seed, path))[:files])


def crawl_files(config: CommonCrawlConfig, storage: Mapping | None = None) -> list[str]:
    """URLs (or local paths, for a mirror folder) of the selected files, sorted; ``storage``
    says how to reach a bucket (curation.storage)."""
    require_s3fs(config.base_url)
    selected = select_files(read_listing(config, storage), config.files, config.shard_seed)
    return [join_url(config.base_url, path) for path in selected]


def open_input(path: str, retry: RetryPolicy = DOWNLOAD_RETRY, timeout_s: float = 60.0, storage: Mapping | None = None):
    """A context manager yielding a binary stream: retrying over http(s), fsspec otherwise."""
    if is_http(path):
        return open_with_retries(path, retry=retry, timeout_s=timeout_s)
    return open_binary(path, storage)


def open_with_retries(url: str, retry: RetryPolicy = DOWNLOAD_RETRY, timeout_s: float = 60.0) -> BinaryIO:
    """A buffered binary stream over ``url`` that resumes after failures (see the module doc)."""
    return io.BufferedReader(RetryingHttpStream(url, retry=retry, timeout_s=timeout_s), buffer_size=READ_CHUNK_BYTES)


class _Retry(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass
class _Download:
    """Where a download stands: ``position`` is the offset of the next byte to request."""

    position: int = 0
    size: int | None = None
    skip: int = 0  # bytes already delivered that a server ignoring Range sends again
    failures: int = 0  # consecutive failed attempts since the last byte received
    pending: bytes = b""
    done: bool = False
    response: httpx.Response | None = field(default=None, repr=False)
    chunks: Iterator[bytes] | None = field(default=None, repr=False)


class RetryingHttpStream(io.RawIOBase):
    """A raw, read-only, forward-only stream over an HTTP GET that resumes on failure.

    The retry budget counts consecutive failures without progress: a multi-gigabyte
    download may meet many hiccups, and each received byte proves the server alive.
    ``Accept-Encoding: identity`` keeps byte offsets those of the file itself.
    """

    def __init__(self, url: str, retry: RetryPolicy = DOWNLOAD_RETRY, timeout_s: float = 60.0) -> None:
        super().__init__()
        self.url = url
        self.retry = retry
        self.client = httpx.Client(timeout=timeout_s, follow_redirects=True, headers={"Accept-Encoding": "identity"})
        self.state = _Download()

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.state.position - len(self.state.pending)

    def readinto(self, buffer) -> int:
        state = self.state
        while not state.pending and not state.done:
            self._receive()
        n = min(len(buffer), len(state.pending))
        buffer[:n] = state.pending[:n]
        state.pending = state.pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._drop_response()
            self.client.close()
        super().close()

    def _receive(self) -> None:
        """Fetch the next chunk into ``pending`` (or learn the end); retry what fails."""
        state = self.state
        try:
            if state.chunks is None:
                self._connect()
                if state.done:
                    return
            chunk = next(state.chunks, None)
        except httpx.TransportError as err:  # timeouts, resets, refused connections, bodies cut short
            self._fail(_Retry(f"{type(err).__name__}: {err}"))
            return
        except _Retry as err:
            self._fail(err)
            return
        if chunk is None:
            self._end_of_body()
            return
        state.position += len(chunk)
        dropped = min(state.skip, len(chunk))
        state.skip -= dropped
        state.pending = chunk[dropped:]
        state.failures = 0

    def _end_of_body(self) -> None:
        state = self.state
        if state.size is not None and state.position < state.size:
            self._fail(_Retry(f"response ended at byte {state.position} of {state.size}"))
        else:
            self._drop_response()
            state.done = True

    def _connect(self) -> None:
        state = self.state
        headers = {"Range": f"bytes={state.position}-"} if state.position else {}
        response = self.client.send(self.client.build_request("GET", self.url, headers=headers), stream=True)
        state.response = response
        status = response.status_code
        if status == 416 and state.position > 0:  # asked from the end: nothing left to read
            self._drop_response()
            state.done = True
            return
        if status in (404, 410):
            self._drop_response()
            raise FileNotFoundError(f"{self.url}: HTTP {status}")
        if retryable_status(status):
            raise _Retry(f"HTTP {status}", parse_retry_after_s(response.headers.get("Retry-After")))
        if status == 206:
            self._accept_partial(response)
        elif status == 200:
            state.size = int(response.headers["Content-Length"]) if "Content-Length" in response.headers else None
            state.skip += state.position  # everything delivered so far comes again
            state.position = 0
        else:
            self._drop_response()
            raise DownloadError(f"{self.url}: HTTP {status}")
        state.chunks = response.iter_raw()  # as received: a fixed chunk size would lose a cut chunk's head

    def _accept_partial(self, response: httpx.Response) -> None:
        match = CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != self.state.position:
            self._drop_response()
            raise DownloadError(
                f"{self.url}: asked for bytes from {self.state.position}, got Content-Range "
                f"{response.headers.get('Content-Range')!r}"
            )
        if match.group(2) != "*":
            self.state.size = int(match.group(2))

    def _fail(self, err: _Retry) -> None:
        """Drop the connection; wait and let the next ``_receive`` reconnect, or give up."""
        state = self.state
        self._drop_response()
        state.failures += 1
        if state.failures > self.retry.max_retries:
            raise DownloadError(
                f"{self.url}: gave up at byte {state.position} after {state.failures} failed attempts: {err.reason}"
            )
        delay = self.retry.delay_s(state.failures, key=self.url, retry_after_s=err.retry_after_s)
        logger.warning(f"{self.url}: {err.reason} at byte {state.position}; retry {state.failures} in {delay:.1f}s")
        time.sleep(delay)

    def _drop_response(self) -> None:
        state = self.state
        if state.response is not None:
            state.response.close()
        state.response = None
        state.chunks = None
