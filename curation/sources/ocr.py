"""OCR for PDF pages that have no usable text layer (scans, photographed pages).

A page is OCR'd only when its text layer has fewer than ``min_text_chars`` characters
and it shows at least one image; pages with real text are never re-read.

Two engines:

* ``tesseract``: the page is rendered in gray with its skew turned back
  (:mod:`curation.sources.deskew`) and read by the ``tesseract`` program (Debian:
  ``tesseract-ocr`` plus ``tesseract-ocr-<lang>``) as TSV: each word with its box and
  confidence. The words become positional lines in tesseract's paragraphs, laid out like a
  text layer, so columns, hyphens and running headers get the same treatment; the page's
  mean word confidence is kept, for the quality floor (``ocr.min_confidence``). The
  language data is located once per process.
* ``vlm`` sends the page, rendered as PNG, to an OpenAI-compatible vision endpoint
  (``/v1/chat/completions`` with a text and an ``image_url`` part; olmOCR served by vLLM
  is the model case) and takes the answer as the page's plain text. Timeouts, connection
  errors, 429, 5xx, bodies that are not JSON, JSON without the answer and answers cut
  short (``finish_reason`` other than ``stop``, e.g. at ``max_tokens``) are retried with
  backoff, each attempt at the next of ``temperatures`` (a hotter sample escapes a
  repetition loop); a page still failing raises :class:`OcrFailed`. An answer whose YAML
  front matter says the page is not upright (olmOCR's ``is_rotation_valid: false`` with
  its ``rotation_correction``) is asked again with the page turned by that much. The
  ``olmocr`` preset (:data:`VLM_PRESETS`) is olmOCR's own pipeline settings. The API key is read
  from the environment variable named in the config and only ever placed in the
  ``Authorization`` header: it is not stored on the config, not logged, not in errors.
"""

from __future__ import annotations

import base64
import functools
import math
import os
import re
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import httpx
import pymupdf
import yaml
from datatrove.utils.logging import logger

from curation.http_retry import AttemptFailed, MissingApiKeyError, RetryPolicy, bearer_headers, parse_retry_after_s, retryable_status
from curation.sources.deskew import straight_pixmap

ENGINES = ("off", "tesseract", "vlm")
# Tesseract's mean word confidence, measured on rendered scans of a two-column page: clean
# 96, with noise, blur and JPEG artefacts 79-90 (CER 0.01-0.09); on an image of specks 27.
DEFAULT_MIN_CONFIDENCE = 60.0
TSV_WORD_LEVEL = "5"
# Tesseract's OpenMP threads contend with the other workers' pages: on 2 cores one page took
# 5.8 s with them, 1.4 s on one thread. Parallelism comes from the reader tasks.
ONE_THREAD = os.environ | {"OMP_THREAD_LIMIT": "1"}
CHAT_COMPLETIONS_PATH = "chat/completions"
DEFAULT_VLM_PROMPT = (
    "Below is the image of one page of a document. Return the plain text of this page "
    "as it would be read naturally, column by column, with paragraphs separated by blank "
    "lines. Write equations in LaTeX and tables in Markdown. Leave out running headers, "
    "footers and page numbers. Return only the text, with no comments."
)
# olmOCR answers with YAML front matter (primary_language, is_rotation_valid, ...) before the text.
FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
ROTATIONS = (90, 180, 270)  # clockwise degrees olmOCR's rotation_correction may ask for
# The prompt olmOCR-2 was trained with (olmocr/prompts: build_no_anchoring_v4_yaml_prompt).
OLMOCR_PROMPT = (
    "Attached is one page of a document that you must process. "
    "Just return the plain text representation of this document as if you were reading it naturally. "
    "Convert equations to LateX and tables to HTML.\n"
    "If there are any figures or charts, label them with the following markdown syntax "
    "![Alt text describing the contents of the figure](page_startx_starty_width_height.png)\n"
    "Return your output as markdown, with a front matter section on top specifying values for the "
    "primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
)
# olmOCR's pipeline (olmocr/pipeline.py): 1288 px longest side, 8000 tokens, 8 attempts, temperature by attempt.
VLM_PRESETS = {
    "olmocr": {
        "prompt": OLMOCR_PROMPT,
        "longest_side_px": 1288,
        "max_tokens": 8000,
        "temperatures": (0.1, 0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 1.0),
        "max_retries": 7,
    },
}


@dataclass(frozen=True)
class VlmConfig:
    """An OpenAI-compatible vision endpoint; ``base_url`` includes ``/v1`` (OpenAI SDK style)."""

    base_url: str
    model: str
    api_key_env: str | None = None
    prompt: str = DEFAULT_VLM_PROMPT
    longest_side_px: int | None = None  # render the page this many pixels on its longest side (else at ocr.dpi)
    max_tokens: int = 4096
    temperatures: tuple[float, ...] = (0.0,)  # attempt k samples at temperatures[k], the last one repeating
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperatures", tuple(self.temperatures))  # YAML gives a list
        if not self.temperatures or not all(0 <= t <= 2 for t in self.temperatures):
            raise ValueError(f"ocr.vlm.temperatures: expected one or more values from 0 to 2, got {self.temperatures!r}")
        if self.longest_side_px is not None and not 64 <= self.longest_side_px <= 10_000:
            raise ValueError(f"ocr.vlm.longest_side_px: expected 64 to 10000, got {self.longest_side_px}")

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_base_s, self.backoff_max_s)

    def temperature(self, attempt: int) -> float:
        """The sampling temperature of ``attempt`` (1-based)."""
        return self.temperatures[min(attempt, len(self.temperatures)) - 1]


@dataclass(frozen=True)
class OcrConfig:
    """The ``ocr:`` section of a pipeline config; ``vlm`` is required when ``engine: vlm``."""

    engine: str = "off"
    dpi: int = 300
    languages: tuple[str, ...] = ("eng",)
    min_text_chars: int = 50
    max_pixels: int = 25_000_000  # a page image larger than this is rendered at a lower dpi
    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # tesseract: a page whose mean word confidence is lower is left out
    timeout_s: float = 300.0  # tesseract: seconds one page may take
    vlm: VlmConfig | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))  # YAML gives a list
        if self.engine not in ENGINES:
            raise ValueError(f"ocr.engine: expected one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not 36 <= self.dpi <= 1200:
            raise ValueError(f"ocr.dpi: expected 36 to 1200, got {self.dpi}")
        if not self.languages or not all(re.fullmatch(r"[A-Za-z_]+", lang) for lang in self.languages):
            raise ValueError(f"ocr.languages: expected Tesseract codes like ['eng', 'deu'], got {self.languages!r}")
        if self.min_text_chars < 0:
            raise ValueError(f"ocr.min_text_chars: expected >= 0, got {self.min_text_chars}")
        if self.max_pixels < 1_000_000:
            raise ValueError(f"ocr.max_pixels: expected at least 1,000,000, got {self.max_pixels}")
        if not 0 <= self.min_confidence <= 100:
            raise ValueError(f"ocr.min_confidence: expected 0 to 100, got {self.min_confidence}")
        if self.timeout_s <= 0:
            raise ValueError(f"ocr.timeout_s: expected > 0, got {self.timeout_s}")
        if self.engine == "vlm" and self.vlm is None:
            raise ValueError("ocr.vlm: engine 'vlm' needs a vlm section (base_url, model)")


class OcrUnavailableError(RuntimeError):
    """OCR cannot run here at all (engine not installed, API key unset): a setup problem."""


class OcrFailed(Exception):
    """One page could not be OCR'd; ``reason`` is short (``http_500``, ``timeout``, ...)."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(f"OCR failed after {attempts} attempt(s): {reason}")
        self.reason = reason
        self.attempts = attempts


Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class OcrLine:
    """One line tesseract read: the paragraph it belongs to (numbered in reading order as
    tesseract found them), its words joined, and its box in points on the image read."""

    paragraph: int
    text: str
    box: Box


@dataclass(frozen=True)
class OcrResult:
    """Tesseract gives positional ``lines`` on an image of ``size`` points (the page, grown
    by deskewing); a VLM gives plain ``text`` in reading order."""

    lines: tuple[OcrLine, ...] | None = None
    size: tuple[float, float] | None = None
    text: str | None = None
    dpi: int | None = None  # what the page was rendered at, when the pixel cap lowered it
    confidence: float | None = None  # tesseract's mean word confidence (0-100)
    skew: float = 0.0  # degrees the page image was turned back by before it was read


def install_hint(language: str = "eng") -> str:
    package = f"tesseract-ocr-{language.replace('_', '-').lower()}"
    return f"install it with `apt-get install tesseract-ocr {package}` (Debian/Ubuntu)"


@functools.cache
def tessdata_folder() -> str:
    """Tesseract's language data folder (``TESSDATA_PREFIX``, else asked of ``tesseract``), found once."""
    try:
        return pymupdf.get_tessdata()
    except RuntimeError as err:
        raise OcrUnavailableError(f"OCR engine tesseract is not available ({err}): {install_hint()}") from err


def check_tesseract(languages: tuple[str, ...]) -> str:
    """The tessdata folder, after checking that the ``tesseract`` program is installed and
    every configured language has its data file."""
    if shutil.which("tesseract") is None:
        raise OcrUnavailableError(f"OCR engine tesseract is not installed (no tesseract program on PATH): {install_hint()}")
    folder = tessdata_folder()
    for language in languages:
        if not (Path(folder) / f"{language}.traineddata").is_file():
            raise OcrUnavailableError(
                f"tesseract has no data for language {language!r} in {folder}: {install_hint(language)}"
            )
    return folder


def has_images(page: pymupdf.Page) -> bool:
    return bool(page.get_image_info())


def capped_dpi(page: pymupdf.Page, dpi: int, max_pixels: int) -> int:
    """``dpi``, or the highest dpi at which the page's image stays within ``max_pixels``:
    the render's memory grows with the page's area (a poster-sized page at 300 dpi is
    hundreds of megapixels)."""
    pixels = (page.rect.width * dpi / 72) * (page.rect.height * dpi / 72)
    return dpi if pixels <= max_pixels else max(1, math.floor(dpi * math.sqrt(max_pixels / pixels)))


class PageOcr(ABC):
    """An OCR engine for the pages of one reader task; use as a context manager."""

    def __init__(self, config: OcrConfig) -> None:
        self.config = config

    def wants(self, page: pymupdf.Page, text_chars: int) -> bool:
        """A page with (almost) no text layer that shows an image: a scan."""
        return text_chars < self.config.min_text_chars and has_images(page)

    @abstractmethod
    def read(self, page: pymupdf.Page, where: str) -> OcrResult:
        """The page's text, or :class:`OcrFailed`; ``where`` names the file and page."""

    def close(self) -> None:
        pass

    def __enter__(self) -> PageOcr:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TesseractOcr(PageOcr):
    def __init__(self, config: OcrConfig) -> None:
        super().__init__(config)
        self.tessdata = check_tesseract(config.languages)
        self.language = "+".join(config.languages)

    def read(self, page: pymupdf.Page, where: str) -> OcrResult:
        dpi = capped_dpi(page, self.config.dpi, self.config.max_pixels)
        try:
            pixmap, skew = straight_pixmap(page, dpi)
        except (RuntimeError, ValueError) as err:  # what MuPDF raises for a page it cannot render
            raise OcrFailed(f"cannot render the page: {type(err).__name__}: {err}", attempts=1) from err
        lines, confidence = tsv_lines(self.tesseract(pixmap.tobytes("png"), dpi), points_per_pixel=72 / dpi)
        return OcrResult(
            lines=lines,
            size=(pixmap.width * 72 / dpi, pixmap.height * 72 / dpi),
            dpi=dpi if dpi < self.config.dpi else None,
            confidence=confidence,
            skew=round(skew, 2),
        )

    def tesseract(self, png: bytes, dpi: int) -> str:
        """Tesseract's TSV for one page image."""
        command = ["tesseract", "stdin", "stdout", "--tessdata-dir", self.tessdata, "-l", self.language, "--dpi", str(dpi), "tsv"]
        try:
            done = subprocess.run(command, input=png, capture_output=True, timeout=self.config.timeout_s, check=False, env=ONE_THREAD)
        except subprocess.TimeoutExpired:
            raise OcrFailed(f"tesseract: timeout after {self.config.timeout_s:g}s", attempts=1) from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise OcrFailed(f"tesseract exited with {done.returncode}: {message[-1] if message else 'no message'}", attempts=1)
        return done.stdout.decode("utf-8", "replace")


def tsv_lines(tsv: str, points_per_pixel: float) -> tuple[tuple[OcrLine, ...], float | None]:
    """The lines of tesseract's TSV (words grouped by block, paragraph and line) with boxes
    in points, and the mean confidence of its words (None without words)."""
    words: dict[tuple[str, str, str], list[tuple[str, Box]]] = {}
    confidences = []
    for row in tsv.splitlines()[1:]:
        fields = row.split("\t")
        if len(fields) < 12 or fields[0] != TSV_WORD_LEVEL or not fields[11].strip():
            continue
        left, top, width, height = (float(value) * points_per_pixel for value in fields[6:10])
        words.setdefault((fields[2], fields[3], fields[4]), []).append((fields[11].strip(), (left, top, left + width, top + height)))
        confidences.append(float(fields[10]))
    paragraphs: dict[tuple[str, str], int] = {}
    lines = []
    for (block, paragraph, _), line in words.items():
        number = paragraphs.setdefault((block, paragraph), len(paragraphs))
        x0s, y0s, x1s, y1s = zip(*(box for _, box in line))
        lines.append(OcrLine(number, " ".join(text for text, _ in line), (min(x0s), min(y0s), max(x1s), max(y1s))))
    return tuple(lines), (sum(confidences) / len(confidences) if confidences else None)


def chat_body(vlm: VlmConfig, png: bytes, temperature: float) -> dict:
    image_url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    content = [{"type": "text", "text": vlm.prompt}, {"type": "image_url", "image_url": {"url": image_url}}]
    return {
        "model": vlm.model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": vlm.max_tokens,
        "temperature": temperature,
    }


@dataclass(frozen=True)
class VlmAnswer:
    text: str
    rotation: int = 0  # clockwise degrees the page must be turned by, when the model says it is not upright


def page_answer(response: httpx.Response) -> VlmAnswer:
    """The page text from a chat completion, or :class:`AttemptFailed` saying why not."""
    status = response.status_code
    if retryable_status(status):
        raise AttemptFailed(f"http_{status}", True, parse_retry_after_s(response.headers.get("Retry-After")))
    if not response.is_success:
        raise AttemptFailed(f"http_{status}", False)
    try:
        choice = response.json()["choices"][0]
        content = choice["message"]["content"]
    except ValueError:
        raise AttemptFailed("malformed_json", True) from None
    except (KeyError, IndexError, TypeError):
        raise AttemptFailed("missing_fields", True) from None
    if not isinstance(content, str):
        raise AttemptFailed("missing_fields", True)
    finish = choice.get("finish_reason")
    if finish not in (None, "stop"):
        raise AttemptFailed(f"finish_reason_{finish}", True)
    fields = front_matter_fields(content)
    rotation = fields.get("rotation_correction")
    turn = rotation if fields.get("is_rotation_valid") is False and rotation in ROTATIONS else 0
    return VlmAnswer(FRONT_MATTER.sub("", content, count=1).strip(), turn)


def front_matter_fields(content: str) -> dict:
    """The YAML front matter of an answer as a mapping; empty where it has none or it does not parse."""
    match = FRONT_MATTER.match(content)
    if not match:
        return {}
    try:
        fields = yaml.safe_load(match[1])
    except yaml.YAMLError:
        return {}
    return fields if isinstance(fields, dict) else {}


def page_image(page: pymupdf.Page, dpi: int, longest_side_px: int | None, rotation: int) -> bytes:
    """The page as PNG, at ``dpi`` or ``longest_side_px`` on its longest side, turned clockwise by ``rotation``."""
    zoom = dpi / 72 if longest_side_px is None else longest_side_px / max(page.rect.width, page.rect.height)
    return page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom).prerotate(-rotation)).tobytes("png")


class VlmOcr(PageOcr):
    def __init__(self, config: OcrConfig) -> None:
        super().__init__(config)
        self.vlm = config.vlm
        self.retry = config.vlm.retry
        try:
            headers = bearer_headers(self.vlm.api_key_env)
        except MissingApiKeyError as err:
            raise OcrUnavailableError(f"ocr.vlm.api_key_env: {err}") from None
        self.client = httpx.Client(base_url=self.vlm.base_url.rstrip("/") + "/", timeout=self.vlm.timeout_s, headers=headers)

    def read(self, page: pymupdf.Page, where: str) -> OcrResult:
        dpi = capped_dpi(page, self.config.dpi, self.config.max_pixels)
        lowered = dpi < self.config.dpi and self.vlm.longest_side_px is None
        return OcrResult(text=self.transcribe(page, dpi, where), dpi=dpi if lowered else None)

    def transcribe(self, page: pymupdf.Page, dpi: int, where: str) -> str:
        """The text of one page; ``where`` (file and page) keys the jitter and the log lines."""
        attempt, rotation = 0, 0
        while True:
            attempt += 1
            png = page_image(page, dpi, self.vlm.longest_side_px, rotation)
            try:
                answer = page_answer(self.post(chat_body(self.vlm, png, self.vlm.temperature(attempt))))
                if not answer.rotation:
                    return answer.text
                rotation = (rotation + answer.rotation) % 360
                raise AttemptFailed(f"not_upright (turned {rotation}°)", True)
            except AttemptFailed as failure:
                if not failure.retryable or attempt > self.retry.max_retries:
                    raise OcrFailed(failure.reason, attempt) from None
                delay = self.retry.delay_s(attempt, key=where, retry_after_s=failure.retry_after_s)
                logger.warning(f"{where}: OCR attempt {attempt} failed ({failure.reason}); retrying in {delay:.1f}s")
                time.sleep(delay)

    def post(self, body: dict) -> httpx.Response:
        try:
            return self.client.post(CHAT_COMPLETIONS_PATH, json=body)
        except httpx.TimeoutException:
            raise AttemptFailed("timeout", True) from None
        except httpx.TransportError as err:
            raise AttemptFailed(f"connection_error ({type(err).__name__})", True) from None

    def close(self) -> None:
        self.client.close()


def open_ocr(config: OcrConfig | None) -> PageOcr | None:
    """The engine for ``config``; ``None`` when OCR is off. Raises :class:`OcrUnavailableError` early."""
    if config is None or config.engine == "off":
        return None
    if config.engine == "tesseract":
        return TesseractOcr(config)
    return VlmOcr(config)
