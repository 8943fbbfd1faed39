"""Small real WARC files for tests, written with warcio."""

import hashlib
import io
import random
import uuid
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

WORDS = (
    "river mountain history language science city music energy market system theory village "
    "network garden library season harbor engine climate forest bridge council painting"
).split()


def article(rng: random.Random, n_sentences: int = 10) -> str:
    sentences = []
    for _ in range(n_sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def page_html(title: str, body: str, charset: str = "utf-8") -> str:
    return (
        f'<html><head><meta charset="{charset}"><title>{title}</title></head><body>'
        "<nav><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
        f"<article><h1>{title}</h1><p>{body}</p></article>"
        "<footer>Contact us</footer></body></html>"
    )


def fixed_warc_headers(url: str) -> dict:
    """A date and record id derived from the URL, so the same pages make the same bytes."""
    record_id = uuid.UUID(bytes=hashlib.md5(url.encode()).digest())
    return {"WARC-Date": "2024-12-01T00:00:00Z", "WARC-Record-ID": f"<urn:uuid:{record_id}>"}


def response(writer: WARCWriter, url: str, body: bytes, status: str = "200 OK", content_type: str = "text/html; charset=utf-8"):
    headers = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
    writer.write_record(
        writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers, warc_headers_dict=fixed_warc_headers(url))
    )


def write_pages_warc(path: Path, n_pages: int, seed: int, extras: bool = True) -> list[str]:
    """A gzipped WARC of ``n_pages`` HTML pages (plus non-document records); returns the page URLs."""
    rng = random.Random(seed)
    urls = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for i in range(n_pages):
            url = f"https://site{seed}.example/page/{i}"
            response(writer, url, page_html(f"Page {seed}-{i}", article(rng)).encode())
            urls.append(url)
        if extras:
            response(writer, f"https://site{seed}.example/missing", b"gone", status="404 Not Found")
            response(writer, f"https://site{seed}.example/logo.png", b"\x89PNG\r\n", content_type="image/png")
            request_url = f"https://site{seed}.example/"
            writer.write_record(writer.create_warc_record(request_url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"), warc_headers_dict=fixed_warc_headers(request_url + "#request")))
    return urls


def write_corpus(folder: Path, n_files: int, pages_per_file: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for f in range(n_files):
        urls += write_pages_warc(folder / f"part-{f:03d}.warc.gz", pages_per_file, seed=f)
    return urls
