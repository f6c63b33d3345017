"""Slack over HTTP: `POST /slack/events` on a stdlib ThreadingHTTPServer in front of the bolt App.

bolt trusts what it is given, so this front end checks each request first, in this order: a sane
Content-Length (400, 411; 413 after draining the body, so the client reads the answer), the signature
(401) before anything parses the body, a JSON object or a form whose `payload` field is one (400), and
the fields bolt reads having the types Slack sends (200 and a warning otherwise: Slack would retry a
4xx/5xx). Every connection has a socket timeout, so a slow or silent client cannot hold a thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest

from planner.errors import TaskwrightError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1_000_000
DRAIN_LIMIT_BYTES = 16_000_000  # a larger body is not read: the 413 goes out and the connection closes
REQUEST_TIMEOUT_S = 10.0  # per socket read or write on a connection
MAX_CLOCK_SKEW_S = 300  # Slack's window for X-Slack-Request-Timestamp
_DIGITS = re.compile(r"[0-9]{1,15}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

# Fields bolt reads while routing (slack_bolt/request/internals.py, payload_utils.py) and their types.
_TEXT_FIELDS = ("type", "event_id", "team_id", "enterprise_id", "api_app_id", "command", "user_id",
                "channel_id", "callback_id", "bot_id", "subtype")  # not "text": the listeners check it
_REF_FIELDS = ("user", "channel", "team", "enterprise")  # a string id, or an object with a string "id"
_OBJECT_FIELDS = ("event", "view", "container", "message", "previous_message", "item", "assistant_thread",
                  "function_data", "state")
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread", "container")
_LIST_FIELDS = ("actions", "authorizations", "response_urls")  # lists of objects


class BadRequestError(TaskwrightError):
    """A request the front end refuses; status is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# ---- checks (pure functions) -------------------------------------------------------------------------


def signature_ok(secret: str, raw: bytes, timestamp: str, signature: str, *, now: float | None = None) -> bool:
    """Slack's v0 signature over the raw body, within MAX_CLOCK_SKEW_S; False for any malformed header."""
    if not _DIGITS.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_CLOCK_SKEW_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + raw
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest("v0=" + digest, signature)


def parse_body(raw: bytes, content_type: str) -> tuple[str, dict[str, Any]]:
    """The body as text and as the payload bolt will see; BadRequestError (400) when it is neither a JSON
    object nor a form (whose `payload` field, if any, must be a JSON object)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequestError(400, f"the body is not UTF-8 ({e.reason} at byte {e.start})") from None
    if not text.strip():
        raise BadRequestError(400, "the body is empty")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or text.startswith(("{", "[", '"')):
        return text, _json_object(text, "the JSON body")
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if not fields:
        raise BadRequestError(400, "the body is neither JSON nor a form")
    if "payload" in fields:  # interactivity: the JSON payload in a form field
        return text, _json_object(fields["payload"], "the form's payload field")
    return text, fields


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise BadRequestError(400, f"{what} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise BadRequestError(400, f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def payload_problem(body: Any, *, where: str = "payload", depth: int = 0) -> str | None:
    """Why bolt cannot route body (a field of a type Slack never sends), or None when the shape is sound."""
    if not isinstance(body, dict):
        return f"{where} is a {type(body).__name__}, not an object"
    for key in _TEXT_FIELDS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"{where}.{key} is a {type(body[key]).__name__}, not a string"
    for key in _REF_FIELDS:
        ref = body.get(key)
        ref_id = ref.get("id", "") if isinstance(ref, dict) else ref
        if ref is not None and not isinstance(ref_id, str):
            return f"{where}.{key} is neither an id nor an object with a string id"
    for key in _OBJECT_FIELDS:
        if key in body and not isinstance(body[key], dict) and (body[key] is not None or key in ("event", "view")):
            return f"{where}.{key} is a {type(body[key]).__name__}, not an object"
    for key in _LIST_FIELDS:
        items = body.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return f"{where}.{key} is not a list of objects"
    return _nested_problem(body, where=where, depth=depth)


def _nested_problem(body: dict[str, Any], *, where: str, depth: int) -> str | None:
    if body.get("type") == "event_callback" and not isinstance((body.get("event") or {}).get("type"), str):
        return f"{where}.event has no type"
    thread = body.get("assistant_thread") or {}
    if str(body.get("type")).startswith("assistant_thread_") and not all(
        isinstance(thread.get(k), str) for k in ("channel_id", "thread_ts")
    ):
        return f"{where}.assistant_thread lacks a channel_id or thread_ts"
    if "view" in body and not isinstance(body["view"].get("type"), str):
        return f"{where}.view has no type"
    if body.get("type") == "block_actions" and not body.get("actions"):
        return f"{where}.actions is empty"
    for i, action in enumerate(body.get("actions") or ()):
        if not isinstance(action.get("action_id"), str):
            return f"{where}.actions[{i}] has no action_id"
        for key in ("block_id", "value", "type"):
            if action.get(key) is not None and not isinstance(action[key], str):
                return f"{where}.actions[{i}].{key} is a {type(action[key]).__name__}, not a string"
    nested = [(k, body.get(k)) for k in _NESTED] + [("authorizations[0]", (body.get("authorizations") or [None])[0])]
    for key, value in nested:
        if isinstance(value, dict) and depth < 3:
            problem = payload_problem(value, where=f"{where}.{key}", depth=depth + 1)
            if problem:
                return problem
    return None


# ---- serving -----------------------------------------------------------------------------------------


class SlackHTTPServer(ThreadingHTTPServer):
    """Serves the Events API, slash commands and interactivity at POST /slack/events (one thread a request)."""

    daemon_threads = True

    def __init__(self, app: App, address: tuple[str, int], *, path: str = EVENTS_PATH,
                 request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.app = app
        self.events_path = path
        self.request_timeout_s = request_timeout_s
        # bolt verifies with App._signing_secret (slack-bolt 1.x); the front end checks first, with the same one
        self.signing_secret: str = getattr(app, "_signing_secret", "") or ""
        if not self.signing_secret:
            raise TaskwrightError("The Slack app has no signing secret: set SLACK_SIGNING_SECRET.")
        super().__init__(address, _SlackRequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An unexpected failure in a handler: one log line with the traceback, never stderr."""
        log.exception("Slack HTTP: handling a request from %s failed", client_address[0])


class _SlackRequestHandler(BaseHTTPRequestHandler):
    server: SlackHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout_s)  # every read and write on this connection

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def do_GET(self) -> None:
        self._send(404, {}, "not found", close=True)

    def do_POST(self) -> None:
        try:
            self._post()
        except BadRequestError as e:
            log.warning("Slack HTTP: %d for %s from %s: %s", e.status, self.path[:100], self.client_address[0], e)
            try:
                self._send(e.status, {}, f"{e}\n", close=True)
            except OSError:  # the client left without reading the answer
                self.close_connection = True
        except TimeoutError:
            log.warning("Slack HTTP: %s was too slow (%gs without data); closing", self.client_address[0],
                        self.server.request_timeout_s)
            self.close_connection = True
        except ConnectionError as e:
            log.info("Slack HTTP: %s went away (%s)", self.client_address[0], e)
            self.close_connection = True

    def _post(self) -> None:
        path, _, query = self.path.partition("?")
        length = self._content_length()
        if path != self.server.events_path:
            self._drain(length)
            raise BadRequestError(404, "not found")
        if length > MAX_BODY_BYTES:
            self._drain(length)
            raise BadRequestError(413, f"the body is {length:,} bytes; the limit is {MAX_BODY_BYTES:,}")
        raw = self.rfile.read(length)
        if len(raw) < length:
            raise BadRequestError(400, f"the body ended after {len(raw)} of {length} bytes")
        stamp = self.headers.get("X-Slack-Request-Timestamp", "")
        if not signature_ok(self.server.signing_secret, raw, stamp, self.headers.get("X-Slack-Signature", "")):
            raise BadRequestError(401, "invalid or missing signature, or a stale timestamp")
        text, payload = parse_body(raw, self.headers.get("Content-Type", ""))
        problem = payload_problem(payload)
        if problem:  # signed by Slack but unusable: 200, or Slack retries it
            log.warning("Slack HTTP: ignoring a malformed payload (%s; type=%.40r)", problem, payload.get("type"))
            self._send(200, {}, "")
            return
        headers: dict[str, str | Sequence[str]] = {k.lower(): self.headers.get_all(k) or [] for k in self.headers}
        try:
            req = BoltRequest(body=text, query=query, headers=headers)
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # a shape payload_problem misses
            log.warning("Slack HTTP: bolt could not read a payload (%s: %s); ignoring it", type(e).__name__, e)
            self._send(200, {}, "")
            return
        resp = self.server.app.dispatch(req)
        self._send(resp.status, resp.headers, resp.body)

    def _content_length(self) -> int:
        """The declared body length; 411 without one (or when chunked), 400 when it is not one number."""
        if self.headers.get("Transfer-Encoding"):
            raise BadRequestError(411, "send the body with a Content-Length, not Transfer-Encoding")
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not values:
            raise BadRequestError(411, "a Content-Length header is required")
        value = values.pop()
        if values or not _DIGITS.fullmatch(value):
            raise BadRequestError(400, f"Content-Length {value[:40]!r} is not one non-negative number")
        return int(value)

    def _drain(self, length: int) -> None:
        """Read and drop up to DRAIN_LIMIT_BYTES of a body we refuse, so the client gets to read our answer."""
        left = length if length <= DRAIN_LIMIT_BYTES else 0
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)

    def _send(self, status: int, headers: dict[str, Sequence[str]], body: str, *, close: bool = False) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        for k, values in headers.items():
            if k.lower() not in ("content-length", "connection"):
                for v in values:
                    self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)


def make_http_server(app: App, *, host: str = "0.0.0.0", port: int = 3000, path: str = EVENTS_PATH,
                     request_timeout_s: float = REQUEST_TIMEOUT_S) -> SlackHTTPServer:
    """An HTTP server for app (not started: call serve_forever); port 0 picks a free port."""
    return SlackHTTPServer(app, (host, port), path=path, request_timeout_s=request_timeout_s)
