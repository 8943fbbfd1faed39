"""How much real technical text the web filters keep: Python's HTML documentation as a crawl.

Debian's ``python3-doc`` (``apt-get install python3-doc``) installs the Python documentation
as HTML: tutorials, library reference pages full of signatures and code, the C API, the FAQ.
This writes a sample of those pages into a WARC (as served from docs.python.org), runs
ingest and filter with the demo's filter settings under each extraction engine, and prints
the kept fraction and the drops by reason. Every page is worth keeping, so the kept
fraction is the number to raise.

    .venv/bin/python -m bench.technical_pages [--pages 150] [--seed 0]
"""

import argparse
import glob
import io
import random
import shutil
import tempfile
from pathlib import Path

import yaml
from rich.console import Console
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.config import parse_config
from pipelines.executor import dask_client
from pipelines.runner import run_stage
from pipelines.sql import query
from pipelines.stages import STAGES

DOCS = Path("/usr/share/doc/python3-dev/html")
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "demo" / "demo.yaml"
SKIPPED = ("genindex", "search.html", "py-modindex.html")  # generated indexes: lists of links, not text


def documentation_pages(pages: int, seed: int) -> list[Path]:
    found = [Path(p) for p in sorted(glob.glob(str(DOCS / "**" / "*.html"), recursive=True))]
    found = [p for p in found if "/_" not in str(p.relative_to(DOCS)) and not p.name.startswith(SKIPPED)]
    random.Random(seed).shuffle(found)
    return found[:pages]


def write_warc(pages: list[Path], out: Path) -> None:
    with out.open("wb") as stream:
        writer = WARCWriter(stream, gzip=True)
        for page in pages:
            url = f"https://docs.python.org/3/{page.relative_to(DOCS).as_posix()}"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(page.read_bytes()), http_headers=headers))


def kept_fraction(work: Path, engine: str, client) -> tuple[int, int, list[tuple]]:
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    source = {"name": "docs", "kind": "warc", "paths": [str(work / "*.warc.gz")], "domain": "docs"}
    config = parse_config({
        "run": {"name": engine, "root": str(work / "runs")},
        "ingest": {"sources": [source], "tasks": 2, "extract": demo["ingest"]["extract"] | {"engine": engine}},
        "filter": demo["filter"] | {"tasks": 2},
    })
    quiet = Console(quiet=True)
    ingest = run_stage(config, STAGES["ingest"], client, quiet)
    kept = run_stage(config, STAGES["filter"], client, quiet).counts["kept"]
    reasons = query(config.run_dir, "select stage, reason, count(*) from removed group by all order by 3 desc, 2")[1]
    return ingest.counts["in"], kept, reasons


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DOCS.is_dir():
        raise SystemExit(f"{DOCS} is missing: install Debian's python3-doc (apt-get install python3-doc)")
    work = Path(tempfile.mkdtemp(prefix="curate-bench-docs-"))
    try:
        pages = documentation_pages(args.pages, args.seed)
        write_warc(pages, work / "python-docs.warc.gz")
        with dask_client("local", 2) as client:
            for engine in ("trafilatura", "resiliparse"):
                pages_in, kept, reasons = kept_fraction(work, engine, client)
                print(f"{engine}: {kept} of {pages_in} documentation pages kept after filter = {kept / pages_in:.3f}  (goal >= 0.95)")
                for stage, reason, count in reasons:
                    print(f"    {stage:7s} {reason:45s} {count}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
