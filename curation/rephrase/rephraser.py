"""Rephrase documents with an LLM, chunk by chunk, with caching, budget and rejection rules.

A document is chunked to fit the style's context budget, each chunk is rephrased
(or read from the cache), and the answers are joined with blank lines. The
document is rejected as a whole, with the reason of its first failing chunk, when
any chunk's answer is rejected: a partial rephrasing would misrepresent its parent.
Once a chunk of a document is rejected, its later chunks are not requested.

Rejection reasons: ``empty_input``, ``empty_response``, ``truncated``, ``refusal``,
``near_copy``, ``budget_exhausted`` and ``llm_error:<reason>`` (see
:class:`curation.rephrase.client.LLMError`).

A request that fails rejects its document and the run goes on: one bad document or
a server's bad minute should not stop a long job. But an endpoint that cannot work
at all (down, a wrong key, not OpenAI-compatible) turns every document into a
rejection, and the run would end "complete" with nothing made. So when the first
``fail_fast_requests`` requests all fail for the same reason, the Rephraser raises
:class:`curation.errors.UserError` instead, naming the endpoint and what to check.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from curation.errors import UserError
from curation.rephrase.cache import CompletionCache, cache_key
from curation.rephrase.client import (
    ChatClient,
    ChatRequest,
    ChatResult,
    ClientConfig,
    ClientStats,
    LLMError,
    Usage,
)
from curation.rephrase.styles import Style, chunk_text, load_styles

DEFAULT_REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bas an ai\b",
    r"^(?:i'm|i am) sorry,? but\b",
    r"^i apologi[sz]e,? but\b",
    r"\bi(?: can't| cannot| can not| won't| will not| am unable to|'m unable to"
    r"| am not able to|'m not able to) (?:help(?: you)? with|assist(?: you)?(?: with)?|comply"
    r"|fulfil|fulfill|do that|rephrase|paraphrase|rewrite)\b",
)

REFUSAL_WINDOW_CHARS = 300
"""Refusals are looked for only at the start of an answer: a rephrased article about
chatbots may legitimately quote such phrases further in."""

ENDPOINT_ADVICE = {
    "connection_error": "check rephrase.endpoint and that the server is up and reachable from the workers",
    "timeout": "check that the server at rephrase.endpoint is up, or raise rephrase.timeout_s",
    "http_404": "check rephrase.endpoint (the base URL, ending in /v1) and rephrase.model",
    "malformed_json": "check that rephrase.endpoint is the /v1 base URL of an OpenAI-compatible server",
    "missing_fields": "check that rephrase.endpoint is the /v1 base URL of an OpenAI-compatible server",
}
DEFAULT_ENDPOINT_ADVICE = "check rephrase.endpoint, rephrase.model and the server's logs"


@dataclass(frozen=True)
class RephraseInput:
    doc_id: str
    text: str
    style: str


@dataclass(frozen=True)
class Rephrased:
    """Synthetic text for one input; ``usage`` includes tokens of chunks served from cache."""

    ok: ClassVar[bool] = True
    doc_id: str
    style: str
    style_version: int
    text: str
    chunk_texts: tuple[str, ...]
    usage: Usage
    cached_chunks: int


@dataclass(frozen=True)
class Rejected:
    ok: ClassVar[bool] = False
    doc_id: str
    style: str
    reason: str


Outcome = Rephrased | Rejected


@dataclass(frozen=True)
class RephraserConfig:
    """Chunking, sampling, budget and rejection settings.

    A chunk gets at most ``min(max_chunk_tokens, context_tokens - max_output_tokens
    - prompt overhead)`` estimated tokens (see :mod:`curation.rephrase.styles`).
    ``budget_tokens`` caps prompt + completion tokens of uncached requests over the
    Rephraser's life; requests already in flight when it is reached still finish,
    so it can be overshot by up to ``max_concurrency - 1`` requests.
    ``fail_fast_requests``: when this many first requests of the Rephraser's life
    all fail for one reason, it raises :class:`UserError` (the endpoint is broken);
    0 never does. Later failures, or a mix in the first ones, only reject documents.
    """

    context_tokens: int = 8192
    max_output_tokens: int = 2048
    max_chunk_tokens: int = 1024
    temperature: float | None = None
    seed: int | None = None
    budget_tokens: int | None = None
    allow_truncated: bool = False
    near_copy_threshold: float = 0.5
    near_copy_ngram: int = 5
    refusal_patterns: tuple[str, ...] = DEFAULT_REFUSAL_PATTERNS
    fail_fast_requests: int = 8

    def __post_init__(self) -> None:
        if self.fail_fast_requests < 0:
            raise ValueError("fail_fast_requests must be >= 0")


@dataclass
class RephraserStats:
    """``requests`` counts chunk calls issued (the client's own stats count HTTP attempts,
    and the calls that failed for good by reason)."""

    chunks: int = 0
    cache_hits: int = 0
    requests: int = 0
    spent_tokens: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    client: ClientStats = field(default_factory=ClientStats)


@dataclass
class FirstRequests:
    """The outcomes of the first ``window`` requests: None for a success, else the error."""

    window: int
    outcomes: list[LLMError | None] = field(default_factory=list)

    def record(self, error: LLMError | None) -> None:
        if len(self.outcomes) < self.window:
            self.outcomes.append(error)

    def unanimous_failure(self) -> LLMError | None:
        """The last error when all ``window`` first requests failed with one reason, else None
        (also while fewer are in, and always with a ``window`` of 0)."""
        complete = self.window > 0 and len(self.outcomes) == self.window
        if not complete or any(error is None for error in self.outcomes):
            return None
        reasons = {error.reason for error in self.outcomes}
        return self.outcomes[-1] if len(reasons) == 1 else None


def broken_endpoint_message(config: ClientConfig, requests: int, error: LLMError) -> str:
    """One line for the user: where, what failed, how, and what to check. Never the key."""
    detail = error.detail or str(error)
    return (f"rephrase: the first {requests} requests to {config.base_url} (model {config.model!r}) "
            f"all failed with {error.reason} (last: {detail}); {endpoint_advice(error.reason, config.api_key_env)}")


def endpoint_advice(reason: str, api_key_env: str | None) -> str:
    if reason in ("http_401", "http_403"):
        if api_key_env is None:
            return "the server wants an API key: set rephrase.api_key_env to the variable that holds it"
        return f"check the API key in {api_key_env} (rephrase.api_key_env)"
    return ENDPOINT_ADVICE.get(reason, DEFAULT_ENDPOINT_ADVICE)


@dataclass
class _DocPlan:
    item: RephraseInput
    style: Style
    chunks: list[str]
    results: dict[int, ChatResult] = field(default_factory=dict)
    rejections: dict[int, str] = field(default_factory=dict)
    cached_chunks: int = 0


class Rephraser:
    """Rephrases batches of :class:`RephraseInput` through one endpoint and one cache."""

    def __init__(
        self,
        client_config: ClientConfig,
        cache: CompletionCache | Path | str,
        config: RephraserConfig = RephraserConfig(),
        styles: Mapping[str, Style] | None = None,
    ) -> None:
        self.client_config = client_config
        self.cache = cache if isinstance(cache, CompletionCache) else CompletionCache(cache)
        self.config = config
        self.styles = dict(styles) if styles is not None else load_styles()
        self.stats = RephraserStats()
        self._refusals = [re.compile(p, re.IGNORECASE) for p in config.refusal_patterns]
        self._first_requests = FirstRequests(config.fail_fast_requests)

    def style(self, name: str) -> Style:
        try:
            return self.styles[name]
        except KeyError:
            raise KeyError(f"unknown style {name!r}; known: {sorted(self.styles)}") from None

    def chunk_budget_tokens(self, style: Style) -> int:
        room = self.config.context_tokens - self.config.max_output_tokens - style.overhead_tokens()
        budget = min(self.config.max_chunk_tokens, room)
        if budget < 1:
            raise ValueError(f"style {style.name!r} leaves no room for text in the context budget")
        return budget

    def budget_exhausted(self) -> bool:
        limit = self.config.budget_tokens
        return limit is not None and self.stats.spent_tokens >= limit

    def _raise_if_endpoint_broken(self) -> None:
        """Raise :class:`UserError` when the first ``fail_fast_requests`` requests all failed
        for one reason: then the endpoint, not the documents, is at fault."""
        error = self._first_requests.unanimous_failure()
        if error is not None:
            raise UserError(broken_endpoint_message(self.client_config, self.config.fail_fast_requests, error))

    def rephrase_sync(self, items: Sequence[RephraseInput]) -> list[Outcome]:
        """:meth:`rephrase` from synchronous code (one ``asyncio.run`` per batch)."""
        return asyncio.run(self.rephrase(items))

    async def rephrase(self, items: Sequence[RephraseInput]) -> list[Outcome]:
        """One outcome per input, in input order. Unknown styles raise before any request."""
        plans = [self._plan(item) for item in items]
        jobs = iter([(plan, index) for plan in plans for index in range(len(plan.chunks))])
        client = ChatClient(self.client_config)
        try:
            async with client:
                await self._drain(jobs, client)
        finally:
            self.stats.client.add(client.stats)
        return [self._outcome(plan) for plan in plans]

    def _plan(self, item: RephraseInput) -> _DocPlan:
        style = self.style(item.style)
        chunks = chunk_text(item.text, self.chunk_budget_tokens(style))
        self.stats.chunks += len(chunks)
        return _DocPlan(item=item, style=style, chunks=chunks)

    async def _drain(self, jobs: Iterator[tuple[_DocPlan, int]], client: ChatClient) -> None:
        """Process chunk jobs with ``max_concurrency`` workers pulling from one iterator.

        Workers (rather than one task per chunk) make the budget check happen right
        before a request is sent, and keep memory flat for large batches. A broken
        endpoint's :class:`UserError` cancels the other workers and is raised as is.
        """

        async def worker() -> None:
            for plan, index in jobs:
                await self._process_chunk(client, plan, index)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.client_config.max_concurrency):
                    group.create_task(worker())
        except* UserError as errors:
            raise errors.exceptions[0] from None

    async def _process_chunk(self, client: ChatClient, plan: _DocPlan, index: int) -> None:
        if plan.rejections:
            return
        chunk = plan.chunks[index]
        key = cache_key(self.client_config.model, plan.style.name, plan.style.version, chunk)
        result = await asyncio.to_thread(self.cache.get, key)
        if result is not None:
            self.stats.cache_hits += 1
            plan.cached_chunks += 1
        elif self.budget_exhausted():
            plan.rejections[index] = "budget_exhausted"
            return
        else:
            try:
                result = await self._request(client, plan.style, chunk)
            except LLMError as error:
                plan.rejections[index] = f"llm_error:{error.reason}"
                return
            await asyncio.to_thread(self.cache.put, key, result)
        reason = self.rejection_reason(chunk, result)
        if reason is None:
            plan.results[index] = result
        else:
            plan.rejections[index] = reason

    async def _request(self, client: ChatClient, style: Style, chunk: str) -> ChatResult:
        self.stats.requests += 1
        try:
            result = await client.complete(ChatRequest(
                messages=style.messages(chunk),
                max_tokens=self.config.max_output_tokens,
                temperature=self.config.temperature,
                seed=self.config.seed,
            ))
        except LLMError as error:
            self._first_requests.record(error)
            self._raise_if_endpoint_broken()
            raise
        self._first_requests.record(None)
        self.stats.spent_tokens += result.usage.total_tokens
        return result

    def rejection_reason(self, chunk: str, result: ChatResult) -> str | None:
        """Why an answer for ``chunk`` is unusable, or None when it is fine."""
        if not result.text.strip():
            return "empty_response"
        if result.finish_reason == "length" and not self.config.allow_truncated:
            return "truncated"
        if is_refusal(result.text, self._refusals):
            return "refusal"
        similarity = ngram_jaccard(chunk, result.text, self.config.near_copy_ngram)
        if similarity > self.config.near_copy_threshold:
            return "near_copy"
        return None

    def _outcome(self, plan: _DocPlan) -> Outcome:
        item = plan.item
        if plan.rejections or not plan.chunks:
            reason = plan.rejections[min(plan.rejections)] if plan.rejections else "empty_input"
            self.stats.rejections[reason] += 1
            return Rejected(doc_id=item.doc_id, style=item.style, reason=reason)
        answers = [plan.results[i].text.strip() for i in range(len(plan.chunks))]
        usage = sum((plan.results[i].usage for i in range(len(plan.chunks))), Usage())
        return Rephrased(
            doc_id=item.doc_id,
            style=item.style,
            style_version=plan.style.version,
            text="\n\n".join(answers),
            chunk_texts=tuple(answers),
            usage=usage,
            cached_chunks=plan.cached_chunks,
        )


def is_refusal(text: str, patterns: Sequence[re.Pattern]) -> bool:
    head = text.strip()[:REFUSAL_WINDOW_CHARS].replace("’", "'")
    return any(pattern.search(head) for pattern in patterns)


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Lower-cased word n-grams; a text shorter than ``n`` words is one n-gram of itself."""
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def ngram_jaccard(a: str, b: str, n: int = 5) -> float:
    grams_a, grams_b = word_ngrams(a, n), word_ngrams(b, n)
    union = grams_a | grams_b
    return len(grams_a & grams_b) / len(union) if union else 0.0


def route_styles(quality_score: float, *, low_threshold: float, high_threshold: float) -> tuple[str, ...]:
    """Nemotron-CC routing: which styles to generate for a document of this quality.

    Low-quality text (score < ``low_threshold``) is rewritten Wikipedia-style to strip
    its noise; high-quality text (score >= ``high_threshold``) is turned into Q&A and
    knowledge lists to add diverse views of good content; the middle band is kept
    as it is (no styles).
    """
    if low_threshold > high_threshold:
        raise ValueError("low_threshold must not exceed high_threshold")
    if quality_score < low_threshold:
        return ("wiki",)
    if quality_score >= high_threshold:
        return ("qa", "knowledge_list")
    return ()
