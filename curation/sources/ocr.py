"""OCR for PDF pages that have no usable text layer (scans, photographed pages).

A page is OCR'd only when its text layer has fewer than ``min_text_chars`` characters
and it shows at least one image; pages with real text are never re-read.

Two engines:

* ``tesseract`` runs inside pymupdf (``page.get_textpage_ocr``), which links
  Tesseract and only needs its language data (Debian: ``tesseract-ocr`` plus
  ``tesseract-ocr-<lang>``). The result is a positional text page, laid out like a
  text layer, so columns, hyphens and running headers get the same treatment.
  The language data is located once per process.
* ``vlm`` sends the page, rendered as PNG, to an OpenAI-compatible vision endpoint
  (``/v1/chat/completions`` with an ``image_url`` part; olmOCR served by vLLM is the
  model case) and takes the answer as the page's plain text. Timeouts, connection
  errors, 429, 5xx, bodies that are not JSON and JSON without the answer are retried
  with backoff; a page still failing raises :class:`OcrFailed`. The API key is read
  from the environment variable named in the config and only ever placed in the
  ``Authorization`` header: it is not stored on the config, not logged, not in errors.
"""

from __future__ import annotations

import base64
import functools
import math
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import httpx
import pymupdf
from datatrove.utils.logging import logger

from curation.http_retry import AttemptFailed, MissingApiKeyError, RetryPolicy, bearer_headers, parse_retry_after_s, retryable_status

ENGINES = ("off", "tesseract", "vlm")
CHAT_COMPLETIONS_PATH = "chat/completions"
DEFAULT_VLM_PROMPT = (
    "Below is the image of one page of a document. Return the plain text of this page "
    "as it would be read naturally, column by column, with paragraphs separated by blank "
    "lines. Write equations in LaTeX and tables in Markdown. Leave out running headers, "
    "footers and page numbers. Return only the text, with no comments."
)
# olmOCR answers with YAML front matter (primary_language, is_rotation_valid, ...) before the text.
FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class VlmConfig:
    """An OpenAI-compatible vision endpoint; ``base_url`` includes ``/v1`` (OpenAI SDK style)."""

    base_url: str
    model: str
    api_key_env: str | None = None
    prompt: str = DEFAULT_VLM_PROMPT
    max_tokens: int = 4096
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_base_s, self.backoff_max_s)


@dataclass(frozen=True)
class OcrConfig:
    """The ``ocr:`` section of a pipeline config; ``vlm`` is required when ``engine: vlm``."""

    engine: str = "off"
    dpi: int = 300
    languages: tuple[str, ...] = ("eng",)
    min_text_chars: int = 50
    max_pixels: int = 25_000_000  # a page image larger than this is rendered at a lower dpi
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


@dataclass(frozen=True)
class OcrResult:
    """Tesseract gives a positional ``textpage``; a VLM gives plain ``text`` in reading order."""

    textpage: pymupdf.TextPage | None = None
    text: str | None = None
    dpi: int | None = None  # what the page was rendered at, when the pixel cap lowered it


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
    """The tessdata folder, after checking that every configured language has its data file."""
    folder = tessdata_folder()
    for language in languages:
        if not (Path(folder) / f"{language}.traineddata").is_file():
            raise OcrUnavailableError(
                f"tesseract has no data for language {language!r} in {folder}: {install_hint(language)}"
            )
    return folder


def has_images(page: pymupdf.Page) -> bool:
    return bool(page.get_image_info())


def render_png(page: pymupdf.Page, dpi: int) -> bytes:
    return page.get_pixmap(dpi=dpi).tobytes("png")


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
            textpage = page.get_textpage_ocr(language=self.language, dpi=dpi, full=True, tessdata=self.tessdata)
        except (RuntimeError, ValueError) as err:  # what MuPDF raises for a page it cannot render or read
            raise OcrFailed(f"tesseract: {type(err).__name__}: {err}", attempts=1) from err
        return OcrResult(textpage=textpage, dpi=dpi if dpi < self.config.dpi else None)


def chat_body(vlm: VlmConfig, png: bytes) -> dict:
    image_url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    content = [{"type": "text", "text": vlm.prompt}, {"type": "image_url", "image_url": {"url": image_url}}]
    return {
        "model": vlm.model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": vlm.max_tokens,
        "temperature": 0.0,
    }


def answer_text(response: httpx.Response) -> str:
    """The page text from a chat completion, or :class:`AttemptFailed` saying why not."""
    status = response.status_code
    if retryable_status(status):
        raise AttemptFailed(f"http_{status}", True, parse_retry_after_s(response.headers.get("Retry-After")))
    if not response.is_success:
        raise AttemptFailed(f"http_{status}", False)
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except ValueError:
        raise AttemptFailed("malformed_json", True) from None
    except (KeyError, IndexError, TypeError):
        raise AttemptFailed("missing_fields", True) from None
    if not isinstance(content, str):
        raise AttemptFailed("missing_fields", True)
    return FRONT_MATTER.sub("", content, count=1).strip()


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
        return OcrResult(text=self.transcribe(render_png(page, dpi), where), dpi=dpi if dpi < self.config.dpi else None)

    def transcribe(self, png: bytes, where: str) -> str:
        """The text of one page image; ``where`` (file and page) keys the jitter and the log lines."""
        body = chat_body(self.vlm, png)
        attempt = 0
        while True:
            attempt += 1
            try:
                return answer_text(self.post(body))
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
