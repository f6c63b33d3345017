"""A fake OpenAI-compatible server on loopback: POST /v1/chat/completions answers from a queue.

A stdlib ThreadingHTTPServer on 127.0.0.1 port 0. Queue replies with `enqueue_content(text, finish=...)`
or `enqueue_status(500, ...)`; every request body is recorded in `requests` for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]


class FakeOpenAI:
    """Serves /v1/chat/completions (and /v1/models); use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._replies: list[_Reply] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def enqueue_content(self, content: str, *, finish: str = "stop", model: str = "fake-model") -> Self:
        body = {
            "id": f"chatcmpl-{len(self._replies)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
        }
        self._replies.append(_Reply(200, body))
        return self

    def enqueue_status(self, status: int, message: str = "upstream failure") -> Self:
        self._replies.append(_Reply(status, {"error": {"message": message, "type": "server_error"}}))
        return self

    def _next(self, request: dict[str, Any]) -> _Reply:
        with self._lock:
            self.requests.append(request)
            if not self._replies:
                return _Reply(500, {"error": {"message": "fake: no reply queued", "type": "server_error"}})
            return self._replies.pop(0)


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                request = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, {"error": {"message": "body is not JSON"}})
                return
            request["_headers"] = {k.lower(): v for k, v in self.headers.items()}
            reply = fake._next(request)
            self._send(reply.status, reply.body)

    return Handler
