"""What a file's first bytes say it is, for a ledger row naming a file of the wrong kind.

A file listed under a source of one kind but holding another (JSON lines under a WARC
source, a Parquet export under a JSONL source) is one drop saying what it looks like
and which ``kind:`` reads it; its content is never quoted.
"""

import json
import re
import zlib

import zstandard

ARC_LINE = re.compile(rb"^\S+://\S* \d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3} \d{14} ")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"

KIND_OF = {  # what a file looks like -> the source kind that reads it
    "JSON lines": "jsonl",
    "a Parquet file": "parquet",
    "Arrow data": "hf",
    "a WARC": "warc",
    "a PDF": "pdf",
}


def looks_like_records(content: bytes) -> bool:
    """Whether ``content`` starts as a WARC or ARC record does."""
    start = content.lstrip(b"\r\n\t ")
    return start.startswith((b"WARC/", b"filedesc://")) or bool(ARC_LINE.match(start))


def what_it_looks_like(content: bytes) -> str:
    """A few words on what a file seems to be, from its first (uncompressed) bytes."""
    if content.startswith(PARQUET_MAGIC):
        return "a Parquet file"
    if content.startswith((ARROW_FILE_MAGIC, ARROW_STREAM_MAGIC)):
        return "Arrow data"
    start = content.lstrip()
    if not start:
        return "an empty file"
    if start.startswith(b"%PDF"):
        return "a PDF"
    if looks_like_records(start):
        return "a WARC"
    if start[:2] == GZIP_MAGIC:
        return "gzip data"
    if start[:4] == ZSTD_MAGIC:
        return "zstd data"
    controls = sum(byte < 9 or 13 < byte < 32 for byte in start[:4096])
    if controls > len(start[:4096]) // 20:
        return "binary data"
    first = start.split(b"\n", 1)[0].strip()
    if first[:1] in (b"{", b"["):
        try:
            json.loads(first)
            return "JSON lines"
        except ValueError:
            return "JSON"
    if first[:1] == b"<":
        return "HTML or XML"
    return "plain text"


def wrong_kind(path: str, found: str, expected: str) -> str:
    """The detail of a wrong-kind drop: what the file looks like and the kind that reads it."""
    kind = KIND_OF.get(found.split("'d ", 1)[-1])
    hint = f": declare kind: {kind}" if kind else ""
    return f"{path}: looks like {found}, not {expected}{hint}"


def content_head(head: bytes) -> bytes | None:
    """The first bytes of a file's content, gzip or zstd undone; None when they do not inflate."""
    try:
        if head[:2] == GZIP_MAGIC:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 1 << 16)
        if head[:4] == ZSTD_MAGIC:
            return zstandard.ZstdDecompressor().decompressobj().decompress(head)[: 1 << 16]
    except (zlib.error, zstandard.ZstdError):
        return None
    return head


def describe(head: bytes) -> str:
    """:func:`what_it_looks_like` for the first bytes of a file that may be gzip'd or zstd'd."""
    inner = content_head(head)
    if inner is head:
        return what_it_looks_like(head)
    packing = "gzip" if head[:2] == GZIP_MAGIC else "zstd"
    return f"{packing}'d {what_it_looks_like(inner)}" if inner else f"{packing} data"
