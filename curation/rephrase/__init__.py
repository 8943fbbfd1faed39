"""LLM rephrasing (WRAP / Nemotron-CC style synthetic data) through OpenAI-compatible endpoints."""

from curation.http_retry import MissingApiKeyError
from curation.rephrase.cache import CompletionCache, cache_key
from curation.rephrase.client import (
    ChatClient,
    ChatRequest,
    ChatResult,
    ClientConfig,
    ClientStats,
    LLMError,
    Usage,
    complete_batch_sync,
)
from curation.rephrase.rephraser import (
    Outcome,
    RephraseInput,
    Rephrased,
    Rephraser,
    RephraserConfig,
    RephraserStats,
    Rejected,
    ngram_jaccard,
    route_styles,
)
from curation.rephrase.styles import Style, chunk_text, estimate_tokens, load_styles

__all__ = [
    "ChatClient",
    "ChatRequest",
    "ChatResult",
    "ClientConfig",
    "ClientStats",
    "CompletionCache",
    "LLMError",
    "MissingApiKeyError",
    "Outcome",
    "Rejected",
    "RephraseInput",
    "Rephrased",
    "Rephraser",
    "RephraserConfig",
    "RephraserStats",
    "Style",
    "Usage",
    "cache_key",
    "chunk_text",
    "complete_batch_sync",
    "estimate_tokens",
    "load_styles",
    "ngram_jaccard",
    "route_styles",
]
