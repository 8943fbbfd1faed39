"""WARC files of the demo crawl: request/response pairs for documents and for records a reader must skip."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from urllib.parse import urlsplit

import pymupdf
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from demo.layouts import render_html
from demo.pdfs import PDF_PRODUCER
from demo.sites import SITES
from demo.sources import scaled
from demo.web import WebDoc

SKIPPED_COUNTS = {"not_found": 40, "redirect": 40, "image": 30, "robots": 10}
CRAWL_START = datetime(2024, 3, 4, 6, 0, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Capture:
    """One HTTP exchange to write as a request + response record pair."""

    url: str
    status: str
    content_type: str
    body: bytes
    extra_headers: tuple[tuple[str, str], ...] = ()
    doc_key: str | None = None


@dataclass
class WarcLocation:
    warc_file: str
    record_id: str


def html_capture(doc: WebDoc) -> Capture:
    body = render_html(doc).encode(doc.charset, errors="xmlcharrefreplace")
    declared = doc.charset_declared_in in ("header", "both")
    content_type = f"text/html; charset={doc.charset}" if declared else "text/html"
    return Capture(doc.url, "200 OK", content_type, body, doc_key=doc.url)


def png_bytes(rng: random.Random) -> bytes:
    size = rng.randint(16, 64)
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, size, size), False)
    pixmap.set_rect(pixmap.irect, tuple(rng.randint(0, 255) for _ in range(3)))
    return pixmap.tobytes("png")


def skipped_captures(rng: random.Random, scale: float, targets: list[str]) -> list[Capture]:
    """Responses that are not documents: 404, 301, images and robots.txt."""
    captures = []
    for i in range(scaled(SKIPPED_COUNTS["not_found"], scale)):
        site = rng.choice(SITES["wiki"] + SITES["forum"])
        body = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
        captures.append(Capture(f"https://{site.host}/missing/{i}-{rng.randint(0, 10**6)}", "404 Not Found",
                                "text/html; charset=utf-8", body))
    for i in range(scaled(SKIPPED_COUNTS["redirect"], scale)):
        target = rng.choice(targets)
        captures.append(Capture(f"{target}/old-{i}", "301 Moved Permanently", "text/html; charset=utf-8",
                                b"<html><body>Moved Permanently</body></html>", (("Location", target),)))
    for i in range(scaled(SKIPPED_COUNTS["image"], scale)):
        site = rng.choice(SITES["code"] + SITES["docs"])
        captures.append(Capture(f"https://{site.host}/static/img/figure-{i}.png", "200 OK", "image/png",
                                png_bytes(rng)))
    for site in sorted({s for group in SITES.values() for s in group}, key=lambda s: s.host)[
        : scaled(SKIPPED_COUNTS["robots"], scale)
    ]:
        captures.append(Capture(f"https://{site.host}/robots.txt", "200 OK", "text/plain",
                                b"User-agent: *\nDisallow: /private/\n"))
    return captures


def record_id(seed: int, record_type: str, url: str) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'curate-demo/{seed}/{record_type}/{url}')}>"


def warc_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_capture(writer: WARCWriter, capture: Capture, seed: int, moment: datetime) -> str:
    """Writes the request and response records; returns the response's WARC-Record-ID."""
    parts = urlsplit(capture.url)
    response_id = record_id(seed, "response", capture.url)
    request_headers = StatusAndHeaders(
        f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        [("Host", parts.netloc), ("User-Agent", "curate-demo-crawler/1.0"), ("Accept", "text/html,*/*")],
        is_http_request=True,
    )
    common = {"WARC-Date": warc_date(moment)}
    writer.write_record(writer.create_warc_record(
        capture.url, "request", payload=BytesIO(b""), length=0, http_headers=request_headers,
        warc_headers_dict={**common, "WARC-Record-ID": record_id(seed, "request", capture.url),
                           "WARC-Concurrent-To": response_id}))
    response_headers = StatusAndHeaders(capture.status, [
        ("Date", moment.strftime("%a, %d %b %Y %H:%M:%S GMT")), ("Server", "nginx"),
        ("Content-Type", capture.content_type), ("Content-Length", str(len(capture.body))),
        *capture.extra_headers], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record(
        capture.url, "response", payload=BytesIO(capture.body), length=len(capture.body),
        http_headers=response_headers, warc_headers_dict={**common, "WARC-Record-ID": response_id}))
    return response_id


def write_warcinfo(writer: WARCWriter, name: str, seed: int, moment: datetime) -> None:
    fields = f"software: {PDF_PRODUCER}\r\nformat: WARC File Format 1.0\r\nseed: {seed}\r\n".encode()
    writer.write_record(writer.create_warc_record(
        "", "warcinfo", payload=BytesIO(fields), length=len(fields), warc_content_type="application/warc-fields",
        warc_headers_dict={"WARC-Record-ID": record_id(seed, "warcinfo", name), "WARC-Date": warc_date(moment),
                           "WARC-Filename": name}))


def write_warcs(out_dir: Path, captures: list[Capture], n_files: int, seed: int) -> dict[str, WarcLocation]:
    """Round-robin the (already shuffled) captures into n_files; returns doc_key -> location."""
    (out_dir / "warc").mkdir(parents=True, exist_ok=True)
    locations = {}
    for index in range(n_files):
        relative = f"warc/demo-{index:05d}.warc.gz"
        with open(out_dir / relative, "wb") as stream:
            writer = WARCWriter(stream, gzip=True)
            write_warcinfo(writer, Path(relative).name, seed, CRAWL_START)
            for position, capture in enumerate(captures[index::n_files]):
                moment = CRAWL_START + timedelta(seconds=7 * (position * n_files + index) + 1)
                response_id = write_capture(writer, capture, seed, moment)
                if capture.doc_key:
                    locations[capture.doc_key] = WarcLocation(relative, response_id)
    return locations
