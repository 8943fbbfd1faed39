"""Prompt styles (loaded from ``styles.yaml``) and paragraph-aware chunking.

Token counts here are estimates: ``ceil(characters / CHARS_PER_TOKEN)`` with 4
characters per token, the usual rule of thumb for English text under BPE
tokenizers. The estimate only sizes chunks; actual token counts come back from
the server in ``usage``. Leave headroom in the context budget for languages and
scripts that tokenize less efficiently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

CHARS_PER_TOKEN = 4
DEFAULT_STYLES_PATH = Path(__file__).with_name("styles.yaml")

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Style:
    """A named, versioned prompt; ``user`` is a ``string.Template`` with one ``${text}``."""

    name: str
    version: int
    user: str
    system: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"style {self.name!r}: version must be a positive integer")
        template = Template(self.user)
        if not template.is_valid() or template.get_identifiers() != ["text"]:
            raise ValueError(f"style {self.name!r}: user template must use exactly one ${{text}}")

    def messages(self, text: str) -> list[dict[str, str]]:
        """Chat messages asking for this style applied to ``text``."""
        user = {"role": "user", "content": Template(self.user).substitute(text=text)}
        if self.system is None:
            return [user]
        return [{"role": "system", "content": self.system}, user]

    def overhead_tokens(self) -> int:
        """Estimated prompt tokens besides the text itself (system + instruction)."""
        return sum(estimate_tokens(m["content"]) for m in self.messages(""))


def load_styles(path: Path | str = DEFAULT_STYLES_PATH) -> dict[str, Style]:
    """Read the ``styles:`` mapping of a YAML file into :class:`Style` objects by name."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {
        name: Style(
            name=name,
            version=spec["version"],
            user=spec["user"],
            system=spec.get("system"),
            source=spec.get("source", ""),
        )
        for name, spec in data["styles"].items()
    }


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def chunk_text(text: str, max_tokens: int) -> list[str]:
    """Split ``text`` into chunks of at most ``max_tokens`` estimated tokens.

    Paragraphs (separated by blank lines) are packed greedily and never split,
    except a paragraph that alone exceeds the budget: it becomes chunks of its own,
    cut on sentence boundaries (then on whitespace for an over-long sentence, and
    at a fixed width for an over-long word).
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be >= 1")
    max_chars = max_tokens * CHARS_PER_TOKEN
    chunks: list[str] = []
    current: list[str] = []
    for paragraph in _paragraphs(text):
        if len(paragraph) > max_chars:
            chunks.extend(_flush(current))
            chunks.extend(_split_long_paragraph(paragraph, max_chars))
            continue
        if current and len("\n\n".join([*current, paragraph])) > max_chars:
            chunks.extend(_flush(current))
        current.append(paragraph)
    chunks.extend(_flush(current))
    return chunks


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def _flush(paragraphs: list[str]) -> list[str]:
    """Join the pending paragraphs into one chunk and clear them."""
    if not paragraphs:
        return []
    chunk = "\n\n".join(paragraphs)
    paragraphs.clear()
    return [chunk]


def _split_long_paragraph(paragraph: str, max_chars: int) -> list[str]:
    pieces = _pieces_within(paragraph, max_chars, [_SENTENCE_END, _WHITESPACE])
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current.strip() and len((current + piece).strip()) > max_chars:
            chunks.append(current.strip())
            current = ""
        current += piece
    if current.strip():
        chunks.append(current.strip())
    return chunks


def _pieces_within(text: str, max_chars: int, boundaries: list[re.Pattern]) -> list[str]:
    """Cut ``text`` at the coarsest boundary that makes every piece fit.

    Pieces keep their trailing separator, so concatenating them restores the text.
    """
    if len(text.rstrip()) <= max_chars:
        return [text]
    if not boundaries:
        return [text[i:i + max_chars] for i in range(0, len(text), max_chars)]
    pieces: list[str] = []
    for part in _split_after(text, boundaries[0]):
        pieces.extend(_pieces_within(part, max_chars, boundaries[1:]))
    return pieces


def _split_after(text: str, boundary: re.Pattern) -> list[str]:
    cuts = [m.end() for m in boundary.finditer(text) if m.end() < len(text)]
    starts = [0, *cuts]
    ends = [*cuts, len(text)]
    return [text[start:end] for start, end in zip(starts, ends)]
