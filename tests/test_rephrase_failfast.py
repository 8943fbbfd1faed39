"""A rank stops with a UserError when its endpoint cannot work, and counts the failures when it partly can.

All against real HTTP: the local stub server (tests/openai_stub.py), or a port nobody listens on.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from datatrove.data import Document

from curation.errors import UserError
from curation.rephrase import ClientConfig, RephraserConfig
from curation.rephrase.step import FixedStyles, RephraseStep
from curation.shards import RemovedSink
from openai_stub import StubOpenAIServer

MODEL = "stub-model"
KEY_ENV = "CURATE_TEST_FAILFAST_KEY"
WRONG_KEY = "sk-failfast-wrong-3d1f-secret"
WINDOW = 4
CONCURRENCY = 2
MAX_RETRIES = 1


def client_config(base_url: str, **overrides) -> ClientConfig:
    settings = dict(base_url=base_url, model=MODEL, max_concurrency=CONCURRENCY, timeout_s=2.0,
                    max_retries=MAX_RETRIES, backoff_base_s=0.01, backoff_max_s=0.02)
    settings.update(overrides)
    return ClientConfig(**settings)


def documents(count: int, marker: str = "", start: int = 0) -> list[Document]:
    return [Document(text=" ".join(f"d{i}_{k}" for k in range(30)) + marker, id=f"doc{i}", metadata={})
            for i in range(start, start + count)]


def run_step(config: ClientConfig, tmp_path: Path, docs: list[Document], window: int = WINDOW) -> RephraseStep:
    """One rank of the step, one style per document, so each document is one request."""
    step = RephraseStep(RemovedSink(tmp_path / "stage"), config, cache_dir=tmp_path / "cache",
                        styles=FixedStyles(("wiki",)), rephraser_config=RephraserConfig(fail_fast_requests=window),
                        batch_size=8)
    list(step.run(iter(docs), rank=0))
    return step


def stopped_with(config: ClientConfig, tmp_path: Path, docs: list[Document]) -> str:
    """The one-line message of the UserError that stops the rank."""
    with pytest.raises(UserError) as stopped:
        run_step(config, tmp_path, docs)
    message = str(stopped.value)
    assert "\n" not in message
    assert f"the first {WINDOW} requests to {config.base_url} (model '{MODEL}')" in message
    return message


def unused_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def stat(step: RephraseStep, key: str) -> int:
    return step.stats[key].total


def test_endpoint_down_stops_the_rank_naming_endpoint_and_reason(tmp_path):
    message = stopped_with(client_config(unused_port_url()), tmp_path, documents(40))

    assert "all failed with connection_error (last: ConnectionRefusedError: " in message
    assert "check rephrase.endpoint" in message


@pytest.mark.parametrize(("api_key_env", "advice"), [
    (KEY_ENV, f"check the API key in {KEY_ENV}"),
    (None, "the server wants an API key: set rephrase.api_key_env"),
])
def test_rejected_api_key_stops_the_rank_without_showing_the_key(tmp_path, monkeypatch, api_key_env, advice):
    monkeypatch.setenv(KEY_ENV, WRONG_KEY)
    with StubOpenAIServer(api_key="sk-the-right-one") as stub:
        message = stopped_with(client_config(stub.base_url, api_key_env=api_key_env), tmp_path, documents(40))

    assert "all failed with http_401 (last: HTTP 401: " in message and advice in message
    assert "Incorrect API key provided" in message and WRONG_KEY not in message
    assert len(stub.requests) <= WINDOW + CONCURRENCY - 1  # 401 is final: no retries, no more requests


@pytest.mark.parametrize(("fault", "reason", "detail"), [
    ("garbage", "malformed_json", "HTTP 200 body is not JSON: <html>502 Bad Gateway</html>"),
    ("missing_fields", "missing_fields", 'HTTP 200 JSON without choices[0].message.content: {"id": "chatcmpl-stub"'),
])
def test_endpoint_answering_garbage_stops_the_rank(tmp_path, fault, reason, detail):
    with StubOpenAIServer(every_request_fault=fault) as stub:
        message = stopped_with(client_config(stub.base_url), tmp_path, documents(40))

    assert f"all failed with {reason} (last: {detail}" in message
    assert "OpenAI-compatible" in message
    assert len(stub.requests) <= (WINDOW + CONCURRENCY - 1) * (MAX_RETRIES + 1)


def test_a_failed_first_request_among_successes_is_counted_not_fatal(tmp_path):
    with StubOpenAIServer() as stub:
        stub.inject("http_500", count=MAX_RETRIES + 1)  # the first request, all its attempts
        step = run_step(client_config(stub.base_url, max_concurrency=1), tmp_path, documents(10))

    assert (stat(step, "llm_requests"), stat(step, "llm_failed_requests"), stat(step, "llm_failed_http_500")) == (10, 1, 1)
    assert (stat(step, "synthetic"), stat(step, "rejected_llm_error:http_500")) == (9, 1)


def test_first_requests_failing_for_different_reasons_are_counted_not_fatal(tmp_path):
    with StubOpenAIServer() as stub:
        stub.inject("http_500", count=MAX_RETRIES + 1)
        stub.inject("http_400", count=WINDOW - 1)  # final at once: one request each
        step = run_step(client_config(stub.base_url, max_concurrency=1), tmp_path, documents(10))

    failed = {key: stat(step, key) for key in ("llm_failed_requests", "llm_failed_http_500", "llm_failed_http_400")}
    assert failed == {"llm_failed_requests": WINDOW, "llm_failed_http_500": 1, "llm_failed_http_400": WINDOW - 1}
    assert stat(step, "synthetic") == 10 - WINDOW


def test_failures_after_the_first_requests_are_counted_not_fatal(tmp_path):
    docs = documents(WINDOW) + documents(6, marker=" [[fault:http_400]]", start=WINDOW)
    with StubOpenAIServer() as stub:
        step = run_step(client_config(stub.base_url, max_concurrency=1), tmp_path, docs)

    assert (stat(step, "llm_requests"), stat(step, "llm_failed_http_400"), stat(step, "synthetic")) == (10, 6, WINDOW)


def test_fail_fast_can_be_turned_off(tmp_path):
    step = run_step(client_config(unused_port_url()), tmp_path, documents(12), window=0)

    assert (stat(step, "llm_failed_requests"), stat(step, "llm_failed_connection_error")) == (12, 12)
    assert stat(step, "rejected_llm_error:connection_error") == 12


def test_fail_fast_requests_must_not_be_negative():
    with pytest.raises(ValueError, match="fail_fast_requests"):
        RephraserConfig(fail_fast_requests=-1)
