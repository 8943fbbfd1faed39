"""A local OpenAI-compatible ``/v1/chat/completions`` server for tests and benchmarks.

Answers are deterministic: the words of the document (the text between
``<document>`` tags in the last user message, else that whole message) in reverse
order, behind a fixed prefix -- clearly not a near copy of the input. Token counts
in ``usage`` are whitespace word counts (see :func:`count_tokens`).

Faults can be injected three ways, the first that applies wins:

* ``server.inject(fault, count)`` queues a fault for the next ``count`` requests;
* ``StubOpenAIServer(every_request_fault=NAME)`` gives every request that fault (a broken endpoint);
* a document containing ``[[fault:NAME]]`` gets that fault on every request.

Faults: ``http_429`` (with ``Retry-After``), ``http_500``, ``http_400``, ``hang``
(sleep ``hang_s`` before answering), ``drop`` (close the connection without an
answer), ``garbage`` (a non-JSON body), ``missing_fields`` (JSON without
``choices``), ``length`` (``finish_reason: length``), ``empty`` (empty content),
``refusal`` and ``echo`` (the document itself).

``StubOpenAIServer(api_key=KEY)`` answers 401 to a request without ``Authorization:
Bearer KEY``, quoting the key it was sent in the error message as OpenAI's API does.

Run standalone (used by the benchmark): ``python tests/openai_stub.py --latency 0.05``
prints ``READY <base_url>`` and serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = frozenset({
    "http_429", "http_500", "http_400", "hang", "drop", "garbage", "missing_fields",
    "length", "empty", "refusal", "echo",
})
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
ANSWER_PREFIX = "Rephrased:"
_DOCUMENT = re.compile(r"<document>\s*(.*?)\s*</document>", re.DOTALL)
_FAULT_MARKER = re.compile(r"\[\[fault:(\w+)\]\]")


def count_tokens(text: str) -> int:
    return len(text.split())


def extract_document(messages: list[dict]) -> str:
    user = [m.get("content", "") for m in messages if m.get("role") == "user"]
    content = user[-1] if user else ""
    match = _DOCUMENT.search(content)
    return match.group(1) if match else content


def stub_answer(document: str) -> str:
    """The normal answer for a document: its words reversed, after a prefix."""
    return " ".join([ANSWER_PREFIX, *reversed(document.split())])


def prompt_tokens(messages: list[dict]) -> int:
    return sum(count_tokens(m.get("content", "")) for m in messages)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    authorization: str | None
    body: dict | None
    document: str
    fault: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        """Stay quiet when a client hangs up (e.g. after its timeout) instead of printing a traceback."""


class StubOpenAIServer:
    """Threaded stub server; ``with StubOpenAIServer() as s: s.base_url`` ..."""

    def __init__(self, latency_s: float = 0.0, hang_s: float = 2.0, retry_after: str = "0",
                 api_key: str | None = None, every_request_fault: str | None = None) -> None:
        if every_request_fault is not None and every_request_fault not in FAULTS:
            raise ValueError(f"unknown fault {every_request_fault!r}")
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.retry_after = retry_after
        self.api_key = api_key
        self.every_request_fault = every_request_fault
        self.requests: list[RecordedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> StubOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def inject(self, fault: str, count: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.extend([fault] * count)

    def documents(self) -> list[str]:
        """Documents of the requests received so far, in arrival order."""
        with self._lock:
            return [r.document for r in self.requests]

    def authorized(self, authorization: str | None) -> bool:
        return self.api_key is None or authorization == f"Bearer {self.api_key}"

    def _begin(self, record_without_fault: RecordedRequest) -> RecordedRequest:
        """Record a request, choosing its fault (queued, then every request's, then a marker)."""
        with self._lock:
            queued = self._faults.popleft() if self._faults else None
            fault = queued or self.every_request_fault or _marker_fault(record_without_fault.document)
            record = replace(record_without_fault, fault=fault)
            self.requests.append(record)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return record

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _marker_fault(document: str) -> str | None:
    match = _FAULT_MARKER.search(document)
    return match.group(1) if match and match.group(1) in FAULTS else None


def _completion(model: str, content: str, finish_reason: str, messages: list[dict]) -> dict:
    completion_tokens = count_tokens(content)
    usage_prompt = prompt_tokens(messages)
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": usage_prompt, "completion_tokens": completion_tokens,
                  "total_tokens": usage_prompt + completion_tokens},
    }


def _invalid_api_key(authorization: str | None) -> dict:
    presented = (authorization or "").removeprefix("Bearer ")
    return {"error": {"message": f"Incorrect API key provided: {presented}.", "type": "invalid_request_error",
                      "code": "invalid_api_key"}}


def _make_handler(stub: StubOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per response and no Nagle delay: otherwise headers and body go out
        # as two segments and the second waits ~40 ms for the client's delayed ACK.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
                messages = body["messages"]
            except (ValueError, KeyError, TypeError):
                body, messages = None, []
            record = stub._begin(RecordedRequest(
                path=self.path, authorization=self.headers.get("Authorization"), body=body,
                document=extract_document(messages), fault=None,
            ))
            try:
                time.sleep(stub.latency_s)
                if not stub.authorized(record.authorization):
                    self._send(401, _invalid_api_key(record.authorization))
                elif self.path != "/v1/chat/completions" or body is None:
                    self._send(404 if body is not None else 400, {"error": "bad request"})
                else:
                    self._answer(record, body, messages)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                stub._end()

        def _answer(self, record: RecordedRequest, body: dict, messages: list[dict]) -> None:
            fault, document, model = record.fault, record.document, body.get("model", "")
            if fault == "hang":
                time.sleep(stub.hang_s)
            if fault == "drop":
                self.close_connection = True
            elif fault == "http_429":
                self._send(429, {"error": "rate limited"}, {"Retry-After": stub.retry_after})
            elif fault in ("http_500", "http_400"):
                self._send(int(fault[-3:]), {"error": fault})
            elif fault == "garbage":
                self._send_raw(200, b"<html>502 Bad Gateway</html>", "text/html")
            elif fault == "missing_fields":
                self._send(200, {"id": "chatcmpl-stub", "object": "chat.completion"})
            else:
                content = {"empty": "", "refusal": REFUSAL_TEXT, "echo": document}.get(
                    fault, stub_answer(document))
                finish = "length" if fault == "length" else "stop"
                self._send(200, _completion(model, content, finish, messages))

        def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_raw(self, status: int, data: bytes, content_type: str,
                      headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to sleep per request")
    args = parser.parse_args()
    with StubOpenAIServer(latency_s=args.latency) as server:
        print(f"READY {server.base_url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
