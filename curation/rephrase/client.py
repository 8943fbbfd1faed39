"""Async client for OpenAI-compatible ``/v1/chat/completions`` endpoints.

Works with vLLM, SGLang, llama.cpp server and Ollama: only the common subset of the
API is used (``model``, ``messages``, ``max_tokens``, ``temperature``, ``seed``; the
answer's ``choices[0].message.content``, ``finish_reason`` and ``usage``).

Failures are classified into short reason strings. Timeouts, connection errors,
HTTP 429, HTTP 5xx, bodies that are not JSON and JSON without the expected fields
are retried with exponential backoff and jitter; other non-2xx answers are final.
When retries run out, :class:`LLMError` carries the last reason and a one-line
detail of what the server or the transport said.

The API key is read from the environment variable named by ``api_key_env`` and is
only ever placed in the ``Authorization`` header: it is not stored on the config,
not logged and not part of any exception or repr (a server that echoes it in an
error body has it cut from the detail).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from curation.http_retry import AttemptFailed, RetryPolicy, bearer_headers, parse_retry_after_s

logger = logging.getLogger(__name__)

CHAT_COMPLETIONS_PATH = "chat/completions"

CONNECTIONS_PER_LANE = 4
"""Connections per underlying ``httpx.AsyncClient``. httpcore 1.0's pool does
O(connections^2) bookkeeping per request (encode/httpx#3215, encode/httpcore#1035):
one pool of 64 connections cost ~8 ms of client CPU per request and capped a
local benchmark at ~80 requests/s. Small pools ("lanes") keep it near 1 ms."""

DETAIL_CHARS = 200
"""How much of an error body a failure's detail keeps: enough for a server's message."""


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to call the endpoint.

    ``base_url`` follows the OpenAI SDK convention and includes ``/v1``
    (e.g. ``http://127.0.0.1:8000/v1``). ``timeout_s`` bounds one attempt from
    sending to the last byte of the answer, not counting time spent waiting for
    a concurrency slot. ``max_retries`` counts retries, so a request makes at most
    ``max_retries + 1`` attempts. ``seed`` makes the backoff jitter reproducible.
    """

    base_url: str
    model: str
    api_key_env: str | None = None
    max_concurrency: int = 16
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff delays must be >= 0")

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.backoff_base_s, self.backoff_max_s, self.seed)


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion call; unset sampling fields use the server's defaults."""

    messages: Sequence[Mapping[str, str]]
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class ChatResult:
    """A completed call. ``attempts`` is 0 when the result was served from a cache."""

    text: str
    finish_reason: str | None
    usage: Usage
    attempts: int


@dataclass
class ClientStats:
    """Counters over all calls: ``requests`` counts HTTP attempts, retries included.

    ``failed_by_reason`` counts calls that failed for good, by :class:`LLMError` reason.
    """

    requests: int = 0
    retries: int = 0
    succeeded: int = 0
    failed_by_reason: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def failures(self) -> int:
        return sum(self.failed_by_reason.values())

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: ClientStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.succeeded += other.succeeded
        self.failed_by_reason.update(other.failed_by_reason)
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


class LLMError(Exception):
    """A call that failed for good: a non-retryable answer or retries exhausted.

    ``reason`` is short and stable: ``timeout``, ``connection_error``, ``http_429``,
    ``http_500`` (any status), ``malformed_json`` or ``missing_fields``. ``detail`` is
    one line about the last attempt (the status and the start of the body, or the
    transport error), for a person to read.
    """

    def __init__(self, reason: str, attempts: int, detail: str = "") -> None:
        super().__init__(f"chat completion failed after {attempts} attempt(s): {reason}")
        self.reason = reason
        self.attempts = attempts
        self.detail = detail

    def __reduce__(self) -> tuple:
        """Keep the error picklable (it may cross process boundaries in a pipeline)."""
        return (LLMError, (self.reason, self.attempts, self.detail))


class ChatAttemptFailed(AttemptFailed):
    """:class:`AttemptFailed` with the one-line ``detail`` that :class:`LLMError` passes on."""

    def __init__(self, reason: str, retryable: bool, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason, retryable, retry_after_s)
        self.detail = detail


def one_line(text: str, limit: int = DETAIL_CHARS) -> str:
    """``text`` with its whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def body_detail(response: httpx.Response, what: str = "") -> str:
    """``HTTP <status>[ <what>]: <start of the body>``."""
    head = f"HTTP {response.status_code} {what}".rstrip()
    return f"{head}: {one_line(response.text)}"


def transport_detail(error: BaseException) -> str:
    """The innermost error behind a transport failure, e.g. ``ConnectionRefusedError: [Errno 111] ...``.

    httpx's own message ("All connection attempts failed") does not say whether the
    host was unknown, refused the connection or could not be reached.
    """
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    return one_line(f"{type(error).__name__}: {error}")


def parse_chat_response(response: httpx.Response, attempt: int) -> ChatResult:
    """Turn an HTTP answer into a result, or raise :class:`ChatAttemptFailed` with its reason."""
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after_s(response.headers.get("Retry-After"))
        raise ChatAttemptFailed("http_429", True, body_detail(response), retry_after_s=retry_after)
    if status >= 500:
        raise ChatAttemptFailed(f"http_{status}", True, body_detail(response))
    if not response.is_success:
        raise ChatAttemptFailed(f"http_{status}", False, body_detail(response))
    try:
        body = response.json()
    except ValueError:
        raise ChatAttemptFailed("malformed_json", True, body_detail(response, "body is not JSON")) from None
    try:
        choice = body["choices"][0]
        content = choice["message"].get("content") or ""
        if not isinstance(content, str):
            raise TypeError("content is not a string")
        usage = body.get("usage") or {}
        return ChatResult(
            text=content,
            finish_reason=choice.get("finish_reason"),
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            ),
            attempts=attempt,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        detail = body_detail(response, "JSON without choices[0].message.content")
        raise ChatAttemptFailed("missing_fields", True, detail) from None


class ChatClient:
    """Concurrency-limited, retrying chat client; use as ``async with ChatClient(cfg) as c``.

    Concurrency is a queue of ``max_concurrency`` slots, each tied to one lane (a
    small ``httpx.AsyncClient``, see :data:`CONNECTIONS_PER_LANE`); a lane has as
    many connections as slots, so a request holding a slot never waits for a
    connection. The lanes belong to the event loop they were opened in, so open
    one ``ChatClient`` per ``asyncio.run``.
    """

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.stats = ClientStats()
        self._headers = bearer_headers(config.api_key_env)
        self._lanes: list[httpx.AsyncClient] = []
        self._free_slots: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        self._next_request_id = 0

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.config.base_url!r}, model={self.config.model!r})"

    async def __aenter__(self) -> ChatClient:
        slots = self.config.max_concurrency
        lane_count = math.ceil(slots / CONNECTIONS_PER_LANE)
        slot_lanes = [slot % lane_count for slot in range(slots)]
        self._lanes = [self._open_lane(slot_lanes.count(lane)) for lane in range(lane_count)]
        for lane in slot_lanes:
            self._free_slots.put_nowait(self._lanes[lane])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        lanes, self._lanes = self._lanes, []
        self._free_slots = asyncio.Queue()
        for lane in lanes:
            await lane.aclose()

    def _open_lane(self, connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.config.base_url,
            headers=self._headers,
            timeout=httpx.Timeout(self.config.timeout_s),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def complete(self, request: ChatRequest) -> ChatResult:
        """Run one request with retries; raise :class:`LLMError` when it fails for good."""
        request_id = self._next_request_id
        self._next_request_id += 1
        payload = self._payload(request)
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(payload, attempt)
            except ChatAttemptFailed as failure:
                if not failure.retryable or attempt > self.config.max_retries:
                    self.stats.failed_by_reason[failure.reason] += 1
                    logger.warning("chat request %d failed after %d attempt(s): %s",
                                   request_id, attempt, failure.reason)
                    raise LLMError(failure.reason, attempt, self._without_api_key(failure.detail)) from None
                delay = self._retry_delay_s(request_id, attempt, failure.retry_after_s)
                self.stats.retries += 1
                logger.info("chat request %d attempt %d failed (%s); retrying in %.2fs",
                            request_id, attempt, failure.reason, delay)
                await asyncio.sleep(delay)
                continue
            self._record_success(result.usage)
            return result

    async def complete_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult | LLMError]:
        """Run requests concurrently (bounded by ``max_concurrency``); results in input order."""
        return list(await asyncio.gather(*(self._complete_or_error(r) for r in requests)))

    async def _complete_or_error(self, request: ChatRequest) -> ChatResult | LLMError:
        try:
            return await self.complete(request)
        except LLMError as error:
            return error

    async def _attempt(self, payload: dict, attempt: int) -> ChatResult:
        if not self._lanes:
            raise RuntimeError("ChatClient is not open; use 'async with ChatClient(config)'")
        lane = await self._free_slots.get()
        try:
            self.stats.requests += 1
            async with asyncio.timeout(self.config.timeout_s):
                response = await lane.post(CHAT_COMPLETIONS_PATH, json=payload)
        except (TimeoutError, httpx.TimeoutException):
            detail = f"no complete answer within {self.config.timeout_s:g}s"
            raise ChatAttemptFailed("timeout", True, detail) from None
        except httpx.TransportError as error:
            raise ChatAttemptFailed("connection_error", True, transport_detail(error)) from None
        finally:
            self._free_slots.put_nowait(lane)
        return parse_chat_response(response, attempt)

    def _payload(self, request: ChatRequest) -> dict:
        payload: dict = {"model": self.config.model, "messages": [dict(m) for m in request.messages]}
        optional = {"max_tokens": request.max_tokens, "temperature": request.temperature,
                    "seed": request.seed}
        payload.update({name: value for name, value in optional.items() if value is not None})
        return payload

    def _retry_delay_s(self, request_id: int, attempt: int, retry_after_s: float | None) -> float:
        """Back off; a server's ``Retry-After`` wins when it asks for longer (capped at ``backoff_max_s``)."""
        return self.config.retry.delay_s(attempt, key=str(request_id), retry_after_s=retry_after_s)

    def _without_api_key(self, text: str) -> str:
        """``text`` with the API key cut out: some servers quote the key they rejected."""
        key = self._headers.get("Authorization", "").removeprefix("Bearer ")
        return text.replace(key, "***") if key else text

    def _record_success(self, usage: Usage) -> None:
        self.stats.succeeded += 1
        self.stats.prompt_tokens += usage.prompt_tokens
        self.stats.completion_tokens += usage.completion_tokens


def complete_batch_sync(
    config: ClientConfig,
    requests: Sequence[ChatRequest],
    *,
    stats: ClientStats | None = None,
) -> list[ChatResult | LLMError]:
    """Run a batch from synchronous code (e.g. a datatrove step in a worker process).

    Each call runs its own event loop via ``asyncio.run``; it cannot be called from
    inside a running loop. ``stats``, when given, accumulates this batch's counters.
    """

    async def run() -> tuple[list[ChatResult | LLMError], ClientStats]:
        async with ChatClient(config) as client:
            return await client.complete_many(requests), client.stats

    results, batch_stats = asyncio.run(run())
    if stats is not None:
        stats.add(batch_stats)
    return results
