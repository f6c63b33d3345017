"""A fake Slack Web API on loopback: records every call and answers like Slack does.

A stdlib ThreadingHTTPServer on 127.0.0.1 port 0 (no fixed port, so test runs can share a machine).
Point `WebClient(base_url=fake.api_url)` at it, then assert on `fake.calls` or wait for calls with
`fake.wait_for("chat.postMessage", 2)`.

Files work like Slack's: files_upload_v2's three steps (files.getUploadURLExternal, the bytes to the
upload URL, files.completeUploadExternal) store the file (`fake.uploads()`), files.info answers for stored
files, and `url_private_download` serves the bytes only with a bot token (`Authorization: Bearer xoxb-…`);
without one, or with `fake.missing_files_scope = True`, it serves an HTML login page, as Slack does.
Tests share a file with `fake.add_file(name, content)`, which returns the file object an event carries.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl

import pytest

BOT_USER_ID = "U000000BOT1"
BOT_ID = "B000000BOT1"
TEAM_ID = "T0000000001"


@dataclass(frozen=True)
class Call:
    """One recorded request: the Web API method (or "upload" for file bytes) and its parameters."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


LOGIN_PAGE = (b"<!DOCTYPE html><html lang=\"en-US\"><head><title>Slack</title></head><body>"
              b"<h1>Sign in to placeholder-workspace</h1></body></html>")


@dataclass
class StoredFile:
    """A file the fake holds: shared by a test (add_file) or uploaded by the bot (files_upload_v2)."""

    id: str
    name: str
    content: bytes
    mimetype: str = "application/octet-stream"
    title: str = ""
    declared_size: int | None = None  # what the event / files.info say (a lie when a test wants one)
    channel: str | None = None
    thread_ts: str | None = None
    alt_txt: str | None = None
    initial_comment: str | None = None

    def info(self, root: str) -> dict[str, Any]:
        url = f"{root}/files-pri/{TEAM_ID}-{self.id}/download/{self.name}"
        return {"id": self.id, "name": self.name, "title": self.title or self.name, "mimetype": self.mimetype,
                "filetype": self.name.rsplit(".", 1)[-1] if "." in self.name else "",
                "size": len(self.content) if self.declared_size is None else self.declared_size,
                "url_private": url, "url_private_download": url,
                "channels": [self.channel] if self.channel else [], "alt_txt": self.alt_txt or ""}


@dataclass
class _Failure:
    error: str
    status: int
    headers: dict[str, str]


class FakeSlack:
    """The fake Web API server. Use as a context manager (or the `fake_slack` fixture)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        self._failures: dict[str, list[_Failure]] = {}
        self.files: dict[str, StoredFile] = {}
        self._pending: dict[str, dict[str, Any]] = {}  # file id -> getUploadURLExternal params
        self.missing_files_scope = False
        self.download_token_prefix = "xoxb-"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """The base URL for WebClient / TASKWRIGHT_SLACK_API_URL."""
        return self.root + "/api/"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ---- what tests use -----------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        with self._cond:
            return [c.method for c in self.calls]

    def wait_for(self, method: str, n: int = 1, *, timeout: float = 10.0) -> list[Call]:
        """Wait until at least n calls of method arrived; fail the test with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([c for c in self.calls if c.method == method]) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [c.method for c in self.calls]
                    raise AssertionError(f"waited {timeout}s for {n} x {method}; calls so far: {got}")
                self._cond.wait(left)
            return [c for c in self.calls if c.method == method]

    def quiet(self, *, for_s: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until no call has arrived for for_s seconds (background work has settled)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = len(self.calls)
            while time.monotonic() < deadline:
                self._cond.wait(for_s)
                if len(self.calls) == seen:
                    return
                seen = len(self.calls)
        raise AssertionError(f"calls kept arriving for {timeout}s")

    def add_file(self, name: str, content: bytes, *, mimetype: str = "text/csv",
                 declared_size: int | None = None, stub: bool = False) -> dict[str, Any]:
        """A file someone shared; returns the file object for an event's `files` (stub=True: only the id,
        as Slack sends when the app must call files.info)."""
        with self._cond:
            stored = StoredFile(f"F{next(self._files):010d}", name, content, mimetype, declared_size=declared_size)
            self.files[stored.id] = stored
        return {"id": stored.id, "file_access": "check_file_info"} if stub else stored.info(self.root)

    def uploads(self) -> list[StoredFile]:
        """Files the bot uploaded and completed (shared into a channel), in order."""
        with self._cond:
            out = []
            for call in self.calls:
                if call.method == "files.completeUploadExternal":
                    files = call.params.get("files")
                    files = json.loads(files) if isinstance(files, str) else files or []
                    out += [self.files[f["id"]] for f in files if f["id"] in self.files]
            return out

    def clear(self) -> None:
        with self._cond:
            self.calls.clear()

    def fail_next(
        self, method: str, error: str, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next call of method with an error (status 429 + Retry-After for rate limits)."""
        with self._cond:
            self._failures.setdefault(method, []).append(_Failure(error, status, headers or {}))

    # ---- the server side ----------------------------------------------------------------------

    def _record(self, call: Call) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._cond:
            self.calls.append(call)
            failures = self._failures.get(call.method)
            failure = failures.pop(0) if failures else None
            self._cond.notify_all()
        if failure:
            return failure.status, failure.headers, {"ok": False, "error": failure.error}
        return 200, {}, self._answer(call)

    def _answer(self, call: Call) -> dict[str, Any]:
        p = call.params
        if call.method == "auth.test":
            return {
                "ok": True,
                "url": "https://placeholder-workspace.slack.com/",
                "team": "placeholder-workspace",
                "team_id": TEAM_ID,
                "user": "assistant-bot",
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if call.method == "chat.postMessage":
            ts = f"1800000000.{next(self._ts):06d}"
            message = {
                "type": "message",
                "text": p.get("text", ""),
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "ts": ts,
            }
            return {"ok": True, "channel": p.get("channel"), "ts": ts, "message": message}
        if call.method in ("chat.update", "chat.delete"):
            return {"ok": True, "channel": p.get("channel"), "ts": p.get("ts")}
        if call.method == "conversations.open":
            users = str(p.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.split(",")[0][1:]}}
        if call.method == "files.getUploadURLExternal":
            with self._cond:
                file_id = f"F{next(self._files):010d}"
                self._pending[file_id] = dict(p)
            return {"ok": True, "upload_url": f"{self.root}/upload/{file_id}", "file_id": file_id}
        if call.method == "files.completeUploadExternal":
            files = p.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            with self._cond:
                for f in files:
                    stored = self.files.get(f["id"])
                    if stored is None:
                        return {"ok": False, "error": "file_not_found"}
                    stored.title = f.get("title") or stored.name
                    stored.channel = p.get("channel_id")
                    stored.thread_ts = p.get("thread_ts")
                    stored.initial_comment = p.get("initial_comment")
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}
        if call.method == "files.info":
            with self._cond:
                stored = self.files.get(str(p.get("file", "")))
            if stored is None:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": stored.info(self.root)}
        return {"ok": True}


def _parse(body: bytes, content_type: str, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query))
    if content_type.startswith("application/json") and body:
        params.update(json.loads(body))
    elif content_type.startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if path.startswith("/upload/"):
                file_id = path.rsplit("/", 1)[1]
                fake._record(Call("upload", {"file_id": file_id}, headers, body))
                with fake._cond:
                    pending = fake._pending.pop(file_id, None)
                    if pending is not None:
                        fake.files[file_id] = StoredFile(file_id, str(pending.get("filename") or file_id), body,
                                                         "image/png" if body[:4] == b"\x89PNG" else "text/plain",
                                                         alt_txt=pending.get("alt_txt"))
                if pending is None:
                    self._send(404, {}, b"no such upload", "text/plain")
                else:
                    self._send(200, {}, f"OK - {len(body)}".encode(), "text/plain")
                return
            if path.startswith("/files-pri/") and self.command == "GET":
                self._download(path, headers)
                return
            if not path.startswith("/api/"):
                self._send(404, {}, b"not found", "text/plain")
                return
            params = _parse(body, headers.get("content-type", ""), query)
            status, extra, answer = fake._record(Call(path[len("/api/") :], params, headers, body))
            self._send(status, extra, json.dumps(answer).encode(), "application/json; charset=utf-8")

        do_GET = do_POST

        def _download(self, path: str, headers: dict[str, str]) -> None:
            """url_private_download: the bytes with a bot token, else Slack's HTML login page (status 200)."""
            file_id = path.split("/")[2].split("-", 1)[-1]
            fake._record(Call("download", {"file_id": file_id}, headers))
            auth = headers.get("authorization", "")
            token_ok = auth.startswith("Bearer " + fake.download_token_prefix)
            if fake.missing_files_scope or not token_ok:
                self._send(200, {}, LOGIN_PAGE, "text/html; charset=utf-8")
                return
            with fake._cond:
                stored = fake.files.get(file_id)
            if stored is None:
                self._send(404, {}, b"file not found", "text/plain")
                return
            self._send(200, {"ETag": hashlib.md5(stored.content).hexdigest()}, stored.content, stored.mimetype)

        def _send(self, status: int, headers: dict[str, str], body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A running fake Slack Web API, shut down after the test."""
    with FakeSlack() as fake:
        yield fake
