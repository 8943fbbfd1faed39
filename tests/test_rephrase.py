"""The rephrasing library against a real local HTTP server (tests/openai_stub.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import pickle
import time
import traceback
from dataclasses import replace
from pathlib import Path

import pytest

from curation.rephrase import (
    ChatClient,
    ChatRequest,
    ChatResult,
    ClientConfig,
    ClientStats,
    CompletionCache,
    LLMError,
    MissingApiKeyError,
    RephraseInput,
    Rephraser,
    RephraserConfig,
    Style,
    Usage,
    cache_key,
    chunk_text,
    complete_batch_sync,
    estimate_tokens,
    load_styles,
    ngram_jaccard,
    route_styles,
)
from openai_stub import REFUSAL_TEXT, StubOpenAIServer, count_tokens, prompt_tokens, stub_answer

SECRET = "sk-test-9f3b1c2d-secret"
KEY_ENV = "CURATE_TEST_LLM_KEY"
MODEL = "stub-model"


@pytest.fixture
def stub():
    with StubOpenAIServer() as server:
        yield server


def make_config(server: StubOpenAIServer, **overrides) -> ClientConfig:
    settings = dict(base_url=server.base_url, model=MODEL, max_concurrency=4, timeout_s=2.0,
                    max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05)
    settings.update(overrides)
    return ClientConfig(**settings)


def user_request(document: str) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": f"<document>\n{document}\n</document>"}])


def document_text(index: int, words: int = 40) -> str:
    return " ".join(f"w{index}_{k}" for k in range(words))


def expected_usage(request: ChatRequest, document: str) -> Usage:
    return Usage(prompt_tokens(list(request.messages)), count_tokens(stub_answer(document)))


# --- client -----------------------------------------------------------------------------


def test_batch_success_returns_results_in_order_with_usage(stub):
    documents = [document_text(i, words=5 + i) for i in range(6)]
    requests = [user_request(d) for d in documents]
    stats = ClientStats()

    results = complete_batch_sync(make_config(stub), requests, stats=stats)

    assert [r.text for r in results] == [stub_answer(d) for d in documents]
    assert all(r.finish_reason == "stop" and r.attempts == 1 for r in results)
    expected = [expected_usage(r, d) for r, d in zip(requests, documents)]
    assert [r.usage for r in results] == expected
    assert stats.prompt_tokens == sum(u.prompt_tokens for u in expected)
    assert stats.completion_tokens == sum(u.completion_tokens for u in expected)
    assert (stats.requests, stats.succeeded, stats.retries, stats.failures) == (6, 6, 0, 0)
    assert len(stub.requests) == 6
    assert {r.path for r in stub.requests} == {"/v1/chat/completions"}
    assert stub.requests[0].body["model"] == MODEL


def test_concurrency_is_bounded(stub):
    stub.latency_s = 0.05
    complete_batch_sync(make_config(stub, max_concurrency=5), [user_request(f"d {i}") for i in range(20)])
    assert stub.max_in_flight == 5


@pytest.mark.parametrize("fault", ["http_429", "http_500", "hang", "drop", "garbage", "missing_fields"])
def test_transient_fault_is_retried_then_succeeds(stub, fault):
    stub.hang_s = 0.6
    stub.inject(fault, count=2)
    stats = ClientStats()

    [result] = complete_batch_sync(make_config(stub, timeout_s=0.3), [user_request("one two")],
                                   stats=stats)

    assert result.text == stub_answer("one two")
    assert result.attempts == 3
    assert (stats.requests, stats.retries, stats.succeeded, stats.failures) == (3, 2, 1, 0)
    assert [r.fault for r in stub.requests] == [fault, fault, None]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("http_429", "http_429"), ("http_500", "http_500"), ("hang", "timeout"),
     ("drop", "connection_error"), ("garbage", "malformed_json"), ("missing_fields", "missing_fields")],
)
def test_exhausted_retries_report_last_reason(stub, fault, reason):
    stub.hang_s = 0.6
    stub.inject(fault, count=10)
    stats = ClientStats()

    [error] = complete_batch_sync(make_config(stub, max_retries=1, timeout_s=0.2),
                                  [user_request("x")], stats=stats)

    assert isinstance(error, LLMError)
    assert (error.reason, error.attempts) == (reason, 2)
    assert error.detail and "\n" not in error.detail
    unpickled = pickle.loads(pickle.dumps(error))
    assert (unpickled.reason, unpickled.attempts, unpickled.detail, str(unpickled)) == (
        reason, 2, error.detail, str(error))
    assert (stats.requests, stats.retries, stats.failures, stats.succeeded) == (2, 1, 1, 0)
    assert stats.failed_by_reason == {reason: 1}
    assert len(stub.requests) == 2


def test_client_error_is_not_retried(stub):
    stub.inject("http_400", count=5)
    [error] = complete_batch_sync(make_config(stub), [user_request("x")])
    assert (error.reason, error.attempts) == ("http_400", 1)
    assert len(stub.requests) == 1


def test_unreachable_server_is_a_connection_error(stub):
    config = make_config(stub, max_retries=1)
    stub.__exit__(None, None, None)
    [error] = complete_batch_sync(config, [user_request("x")])
    assert error.reason == "connection_error"


def test_retry_after_is_honoured_up_to_backoff_max(stub):
    stub.retry_after = "1"
    stub.inject("http_429", count=1)
    started = time.monotonic()
    [result] = complete_batch_sync(make_config(stub, backoff_max_s=5.0), [user_request("x")])
    assert result.attempts == 2
    assert time.monotonic() - started >= 1.0

    stub.inject("http_429", count=1)
    started = time.monotonic()
    [result] = complete_batch_sync(make_config(stub, backoff_max_s=0.05), [user_request("x")])
    assert result.attempts == 2
    assert time.monotonic() - started < 0.9


def test_backoff_is_exponential_jittered_and_seeded():
    config = ClientConfig(base_url="http://unused/v1", model=MODEL, backoff_base_s=1.0,
                          backoff_max_s=5.0, seed=7)
    delays = [config.retry.delay_s(a, key="3") for a in (1, 2, 3, 4)]
    assert delays == [config.retry.delay_s(a, key="3") for a in (1, 2, 3, 4)]
    for delay, ceiling in zip(delays, (1.0, 2.0, 4.0, 5.0)):
        assert ceiling / 2 <= delay <= ceiling
    other_seed = ClientConfig(base_url="http://unused/v1", model=MODEL, seed=8)
    assert other_seed.retry.delay_s(1, key="3") != config.retry.delay_s(1, key="3")


def test_api_key_is_sent_but_never_logged_or_raised(stub, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    config = make_config(stub, api_key_env=KEY_ENV, max_retries=1)
    stub.inject("http_500", count=2)
    [failed] = complete_batch_sync(config, [user_request("a")])
    stub.inject("http_400", count=1)
    [rejected] = complete_batch_sync(config, [user_request("b")])
    [succeeded] = complete_batch_sync(config, [user_request("c")])

    assert succeeded.text == stub_answer("c")
    assert {r.authorization for r in stub.requests} == {f"Bearer {SECRET}"}
    assert "retrying" in caplog.text and "HTTP Request" in caplog.text  # httpx logs were captured
    captured = capsys.readouterr()
    tracebacks = ["".join(traceback.format_exception(error)) for error in (failed, rejected)]
    exposed = [caplog.text, captured.out, captured.err, *tracebacks, repr(failed), repr(rejected),
               repr(config), repr(ChatClient(config))]
    assert not any(SECRET in text for text in exposed)


def test_missing_api_key_names_the_variable_only(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    config = ClientConfig(base_url="http://unused/v1", model=MODEL, api_key_env=KEY_ENV)
    with pytest.raises(MissingApiKeyError, match=KEY_ENV):
        ChatClient(config)


def test_no_authorization_header_without_api_key_env(stub):
    complete_batch_sync(make_config(stub), [user_request("x")])
    assert stub.requests[0].authorization is None


# --- styles and chunking ----------------------------------------------------------------


def test_styles_file_defines_versioned_templates():
    styles = load_styles()
    assert {"wiki", "qa", "distill", "knowledge_list"} <= set(styles)
    for style in styles.values():
        system, user = style.messages("THE TEXT $HOME {braces}")
        assert style.version >= 1 and system["role"] == "system"
        assert "<document>\nTHE TEXT $HOME {braces}\n</document>" in user["content"]


def test_style_template_must_have_one_text_placeholder():
    with pytest.raises(ValueError):
        Style(name="bad", version=1, user="no placeholder")
    with pytest.raises(ValueError):
        Style(name="bad", version=1, user="${text} and ${other}")


def test_chunks_pack_whole_paragraphs_within_budget():
    paragraphs = [f"Paragraph {i} " + "word " * 20 for i in range(10)]  # ~33 tokens each
    text = "\n\n".join(p.strip() for p in paragraphs)

    chunks = chunk_text(text, max_tokens=100)

    assert all(estimate_tokens(c) <= 100 for c in chunks)
    assert [p for c in chunks for p in c.split("\n\n")] == [p.strip() for p in paragraphs]
    assert [len(c.split("\n\n")) for c in chunks] == [3, 3, 3, 1]


def test_long_paragraph_splits_on_sentences_then_words():
    sentences = [f"Sentence number {i} has a few words in it." for i in range(12)]
    long_paragraph = " ".join(sentences)
    run_on = "x" * 30 + " " + " ".join(["y" * 10] * 30)
    text = f"Short intro.\n\n{long_paragraph}\n\n{run_on}\n\nShort outro."

    chunks = chunk_text(text, max_tokens=30)  # 120 characters

    assert chunks[0] == "Short intro."
    sentence_chunks = chunks[1:7]
    assert all(c.endswith("in it.") and c.count(".") == 2 for c in sentence_chunks)
    assert " ".join(sentence_chunks) == long_paragraph
    assert " ".join(chunks[7:-1]) == run_on
    assert chunks[-1] == "Short outro."
    assert all(len(c) <= 120 for c in chunks)
    assert chunk_text("z" * 250, max_tokens=30) == ["z" * 120, "z" * 120, "z" * 10]


def test_chunk_budget_accounts_for_prompt_and_output(tmp_path):
    style = load_styles()["wiki"]
    config = RephraserConfig(context_tokens=1000, max_output_tokens=600, max_chunk_tokens=1000)
    rephraser = Rephraser(ClientConfig(base_url="http://unused/v1", model=MODEL), tmp_path, config)
    assert rephraser.chunk_budget_tokens(style) == 1000 - 600 - style.overhead_tokens()


# --- rephraser --------------------------------------------------------------------------


def wiki_inputs(count: int, start: int = 0) -> list[RephraseInput]:
    return [RephraseInput(f"doc{i}", document_text(i), "wiki") for i in range(start, start + count)]


def test_rephraser_success_reports_text_and_usage(stub, tmp_path):
    rephraser = Rephraser(make_config(stub), tmp_path / "cache")
    [outcome] = rephraser.rephrase_sync(wiki_inputs(1))

    assert outcome.ok and outcome.doc_id == "doc0" and outcome.style_version == 1
    assert outcome.text == stub_answer(document_text(0))
    request = ChatRequest(messages=load_styles()["wiki"].messages(document_text(0)))
    assert outcome.usage == expected_usage(request, document_text(0))
    assert rephraser.stats.spent_tokens == outcome.usage.total_tokens
    assert stub.requests[0].body["max_tokens"] == RephraserConfig().max_output_tokens


def test_long_document_is_rephrased_per_chunk_and_joined(stub, tmp_path):
    paragraphs = [f"Paragraph {i} " + " ".join(f"t{i}_{k}" for k in range(30)) for i in range(6)]
    config = RephraserConfig(max_chunk_tokens=50)
    rephraser = Rephraser(make_config(stub), tmp_path / "cache", config)
    chunks = chunk_text("\n\n".join(paragraphs), rephraser.chunk_budget_tokens(load_styles()["qa"]))

    [outcome] = rephraser.rephrase_sync([RephraseInput("long", "\n\n".join(paragraphs), "qa")])

    assert len(chunks) == 6
    assert sorted(stub.documents()) == sorted(chunks)
    assert outcome.chunk_texts == tuple(stub_answer(c) for c in chunks)
    assert outcome.text == "\n\n".join(outcome.chunk_texts)


def test_rejection_rules_each_give_their_reason(stub, tmp_path):
    source = document_text(99)
    cases = {
        "fine": ("", None),
        "empty": ("[[fault:empty]]", "empty_response"),
        "refusal": ("[[fault:refusal]]", "refusal"),
        "truncated": ("[[fault:length]]", "truncated"),
        "copy": ("[[fault:echo]]", "near_copy"),
        "error": ("[[fault:http_400]]", "llm_error:http_400"),
        "blank": (None, "empty_input"),
    }
    inputs = [RephraseInput(name, "   \n\n " if marker is None else f"{source} {marker}", "wiki")
              for name, (marker, _) in cases.items()]
    rephraser = Rephraser(make_config(stub), tmp_path / "cache")

    outcomes = rephraser.rephrase_sync(inputs)

    reasons = {o.doc_id: (None if o.ok else o.reason) for o in outcomes}
    assert reasons == {name: reason for name, (_, reason) in cases.items()}
    assert rephraser.stats.rejections["refusal"] == 1
    assert len(stub.requests) == 6


def test_truncated_answers_can_be_allowed(stub, tmp_path):
    config = RephraserConfig(allow_truncated=True)
    rephraser = Rephraser(make_config(stub), tmp_path / "cache", config)
    [outcome] = rephraser.rephrase_sync([RephraseInput("d", "some words [[fault:length]]", "wiki")])
    assert outcome.ok


def test_refusal_and_near_copy_detection(tmp_path):
    rephraser = Rephraser(ClientConfig(base_url="http://unused/v1", model=MODEL), tmp_path)

    def reason(answer: str, source: str = "unrelated source text here") -> str | None:
        return rephraser.rejection_reason(source, ChatResult(answer, "stop", Usage(), 1))

    assert reason(REFUSAL_TEXT) == "refusal"
    assert reason("As an AI language model, I cannot rewrite this.") == "refusal"
    assert reason("I’m sorry, but I cannot comply.") == "refusal"
    assert reason("The cat sat on the mat. I cannot help noticing it.") is None
    text = "the quick brown fox jumps over the lazy dog near the river bank today"
    assert reason(text, source=text) == "near_copy"
    assert ngram_jaccard(text, text) == 1.0
    assert ngram_jaccard(text, " ".join(reversed(text.split()))) == 0.0


def test_failed_chunk_stops_later_chunks_of_the_document(stub, tmp_path):
    paragraphs = [f"Paragraph {i} " + " ".join(f"t{i}_{k}" for k in range(30)) for i in range(4)]
    paragraphs[1] += " [[fault:refusal]]"
    rephraser = Rephraser(make_config(stub, max_concurrency=1), tmp_path / "cache",
                          RephraserConfig(max_chunk_tokens=50))

    [outcome] = rephraser.rephrase_sync([RephraseInput("d", "\n\n".join(paragraphs), "wiki")])

    assert outcome.reason == "refusal"
    assert len(stub.requests) == 2


def test_cache_serves_rerun_without_new_requests(stub, tmp_path):
    first = Rephraser(make_config(stub), tmp_path / "cache")
    first_outcomes = first.rephrase_sync(wiki_inputs(3))

    second = Rephraser(make_config(stub), tmp_path / "cache")
    outcomes = second.rephrase_sync(wiki_inputs(6))

    assert len(stub.requests) == 6
    assert sorted(stub.documents()[3:]) == sorted(document_text(i) for i in range(3, 6))
    assert outcomes[:3] == [replace(o, cached_chunks=1) for o in first_outcomes]
    assert (second.stats.cache_hits, second.stats.requests) == (3, 3)
    assert second.stats.spent_tokens == sum(o.usage.total_tokens for o in outcomes[3:])


def test_cancelled_run_resumes_from_cache(stub, tmp_path):
    stub.latency_s = 0.02
    cache_dir = tmp_path / "cache"
    inputs = wiki_inputs(20)
    rephraser = Rephraser(make_config(stub, max_concurrency=2), cache_dir)

    async def run_until_some_cached() -> None:
        task = asyncio.create_task(rephraser.rephrase(inputs))
        while len(list(cache_dir.rglob("*.json"))) < 5:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_until_some_cached())
    cached = len(list(cache_dir.rglob("*.json")))
    requested_before = len(stub.requests)
    assert 5 <= cached < 20

    outcomes = Rephraser(make_config(stub), cache_dir).rephrase_sync(inputs)

    assert all(o.ok for o in outcomes)
    resumed = stub.documents()[requested_before:]
    assert len(resumed) == 20 - cached
    assert sum(o.cached_chunks for o in outcomes) == cached
    cache = CompletionCache(cache_dir)
    style = load_styles()["wiki"]
    for document in resumed:
        assert cache.get(cache_key(MODEL, "wiki", style.version, document)) is not None


def test_cache_key_depends_on_model_style_version_and_text():
    base = cache_key("m", "wiki", 1, "text")
    variants = [cache_key("m2", "wiki", 1, "text"), cache_key("m", "qa", 1, "text"),
                cache_key("m", "wiki", 2, "text"), cache_key("m", "wiki", 1, "text!")]
    assert len({base, *variants}) == 5
    assert base == cache_key("m", "wiki", 1, "text")


def test_cache_ignores_leftovers_of_a_killed_write(tmp_path):
    cache = CompletionCache(tmp_path)
    key = cache_key("m", "wiki", 1, "text")
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    (path.parent / f".{key}.123.tmp").write_text('{"text": "half')
    assert cache.get(key) is None
    path.write_text('{"text": "trunc')
    assert cache.get(key) is None

    cache.put(key, ChatResult("answer", "stop", Usage(3, 4), 2))

    assert cache.get(key) == ChatResult("answer", "stop", Usage(3, 4), 0)
    assert json.loads(path.read_text())["completion_tokens"] == 4


def _hammer_cache(root: str, worker: int) -> None:
    cache = CompletionCache(root)
    for i in range(40):
        cache.put(cache_key("m", "wiki", 1, f"text {i % 10}"),
                  ChatResult(f"answer {i % 10}", "stop", Usage(worker, i), 1))


def test_cache_is_safe_with_concurrent_processes(tmp_path):
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_hammer_cache, args=(str(tmp_path), w)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=20)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]

    cache = CompletionCache(tmp_path)
    answers = [cache.get(cache_key("m", "wiki", 1, f"text {i}")) for i in range(10)]
    assert [a.text for a in answers] == [f"answer {i}" for i in range(10)]
    assert not list(Path(tmp_path).rglob("*.tmp"))


def test_budget_stops_requests_and_rejects_the_rest(stub, tmp_path):
    inputs = wiki_inputs(5)
    style = load_styles()["wiki"]
    per_doc = expected_usage(ChatRequest(messages=style.messages(document_text(0))),
                             document_text(0)).total_tokens
    config = RephraserConfig(budget_tokens=2 * per_doc - 1)
    rephraser = Rephraser(make_config(stub, max_concurrency=1), tmp_path / "cache", config)

    outcomes = rephraser.rephrase_sync(inputs)

    assert [o.ok for o in outcomes] == [True, True, False, False, False]
    assert {o.reason for o in outcomes[2:]} == {"budget_exhausted"}
    assert len(stub.requests) == 2
    assert rephraser.stats.spent_tokens == 2 * per_doc

    served_from_cache = rephraser.rephrase_sync(inputs[:2])
    assert all(o.ok for o in served_from_cache) and len(stub.requests) == 2


def test_unknown_style_fails_before_any_request(stub, tmp_path):
    rephraser = Rephraser(make_config(stub), tmp_path / "cache")
    with pytest.raises(KeyError, match="unknown style"):
        rephraser.rephrase_sync([*wiki_inputs(2), RephraseInput("x", "text", "poem")])
    assert stub.requests == []


def test_route_styles_by_quality():
    route = dict(low_threshold=0.3, high_threshold=0.7)
    assert route_styles(0.1, **route) == ("wiki",)
    assert route_styles(0.5, **route) == ()
    assert route_styles(0.7, **route) == ("qa", "knowledge_list")
    with pytest.raises(ValueError):
        route_styles(0.5, low_threshold=0.8, high_threshold=0.2)
