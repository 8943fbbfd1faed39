"""Retry rules shared by everything that talks HTTP (Common Crawl downloads, VLM OCR, the LLM client).

Also what the two OpenAI-compatible clients share: an attempt's failure and the
bearer header read from a named environment variable.

Which answers are worth another try (429 and 5xx; the caller decides about transport
errors), how long to wait before it (exponential backoff with "equal jitter", capped,
honouring a server's ``Retry-After``), and how to read ``Retry-After``.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` counts retries, so a call makes at most ``max_retries + 1`` attempts.

    ``seed`` makes the jitter reproducible: the delay depends only on (seed, key, attempt).
    """

    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff delays must be >= 0")

    def delay_s(self, attempt: int, key: str = "", retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based).

        Half of the exponential ceiling is fixed and half random, so concurrent clients
        that failed together do not come back together. A server's ``Retry-After`` wins
        when it asks for longer, up to ``backoff_max_s``.
        """
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        rng = random.Random(f"{self.seed}/{key}/{attempt}")
        delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.backoff_max_s))
        return delay


def retryable_status(status: int) -> bool:
    """Rate limiting and server-side failures pass; other error statuses are final."""
    return status == 429 or status >= 500


def parse_retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds; the HTTP-date form is ignored (the backoff applies)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class AttemptFailed(Exception):
    """One attempt failed; carries whether to retry and the server's ``Retry-After``."""

    def __init__(self, reason: str, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class MissingApiKeyError(RuntimeError):
    """The environment variable named for an API key is unset or empty."""


def bearer_headers(api_key_env: str | None) -> dict[str, str]:
    """The auth header from the variable named ``api_key_env``; none when no variable is configured.

    The key is read here only and never put in an error message.
    """
    if api_key_env is None:
        return {}
    key = os.environ.get(api_key_env, "")
    if not key:
        raise MissingApiKeyError(f"environment variable {api_key_env} is unset or empty")
    return {"Authorization": f"Bearer {key}"}
