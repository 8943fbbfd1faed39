"""Real technical HTML: Python's documentation from Debian's ``python3-doc``, as a crawl.

``apt-get install python3-doc`` installs it under /usr/share/doc/python3-dev/html (``make
setup`` does, where it can). Content pages only: the generated indexes (genindex, search,
module index) and the chapter contents pages, whose body is mostly a table of contents
(Sphinx's ``toctree-wrapper``), are lists of links, not text. The pages are split by a
fixed shuffle into two halves: ``tuning`` (where curate's technical settings were chosen)
and ``held_out`` (where they are checked).
"""

import io
import os
import random
from pathlib import Path

import pytest
from resiliparse.parse.html import HTMLTree
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

DOCS = Path("/usr/share/doc/python3-dev/html")
GENERATED = ("genindex", "search.html", "py-modindex.html")
HALVES = ("tuning", "held_out")


def is_contents_page(html: str) -> bool:
    body = HTMLTree.parse(html).body
    main = body.query_selector("div.body") if body else None
    if main is None:
        return False
    toc = sum(len(element.text) for element in main.query_selector_all(".toctree-wrapper"))
    return toc > 0.5 * len(main.text)


def content_pages() -> list[Path]:
    found = sorted(DOCS.rglob("*.html"))
    found = [p for p in found if "/_" not in p.relative_to(DOCS).as_posix() and not p.name.startswith(GENERATED)]
    return [p for p in found if not is_contents_page(p.read_text(errors="replace"))]


def documentation_half(half: str, limit: int | None = None) -> list[Path]:
    """One half of the content pages, the same on every machine with the same package."""
    pages = content_pages()
    random.Random(1).shuffle(pages)
    middle = len(pages) // 2
    chosen = pages[:middle] if half == "tuning" else pages[middle:]
    return sorted(chosen)[:limit] if limit else sorted(chosen)


def page_url(page: Path) -> str:
    return f"https://docs.python.org/3/{page.relative_to(DOCS).as_posix()}"


def write_documentation_warc(pages: list[Path], out: Path) -> Path:
    """The pages as one gzipped WARC of HTTP responses, as served from docs.python.org."""
    with out.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        for page in pages:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            record = writer.create_warc_record(page_url(page), "response", payload=io.BytesIO(page.read_bytes()), http_headers=headers)
            writer.write_record(record)
    return out


def require_python_docs() -> None:
    """Skip where python3-doc is not installed; under CI (``CI=true``) its absence fails."""
    if DOCS.is_dir():
        return
    reason = f"{DOCS} is missing: install Debian's python3-doc (apt-get install python3-doc; make setup does as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)
