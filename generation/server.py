"""The generation service: OpenAI-compatible text and image endpoints over the batchers (FastAPI).

`create_app(settings)` builds the app (tests pass preloaded backends); `serve(settings, host, port)` runs
it under uvicorn. Endpoints: POST /v1/chat/completions (stream as server-sent events), GET /v1/models,
POST /v1/images/generations, GET /healthz, GET /metrics (Prometheus). Every refusal is an OpenAI-style
`{"error": {"message", "type", "param"}}` with a 4xx that says what is wrong; a full queue is a 503 with
Retry-After; shutdown stops taking requests and finishes the ones in flight. A json_schema or json_object
response_format is enforced while the reply is generated (llguidance, generation/text/grammar.py); a schema
it cannot enforce is a 400.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, field_validator

from generation.runtime import IMAGES_MAX, Backends, UnknownLabel
from generation.text.batcher import QueueFull, ShuttingDown, TextEvent
from generation.text.engine import PromptTooLong, SamplingParams
from generation.text.grammar import GrammarError, grammar_for
from planner.errors import ModelUnavailableError

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_TOKENS_LIMIT = 4096
DEFAULT_MAX_TOKENS = 256
STOP_MAX = 4
DISCONNECT_CHECK_S = 0.5


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.headers = status, message, kind, param, headers


def _error(status: int, message: str, *, kind: str = "invalid_request_error", param: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


# ---------------------------------------------------------------- request bodies


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatRequest(_Strict):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=512)
    # Numbers and flags are strict: `true`, "3" or 2.5 for a count, "yes" for a flag are refused with a 422
    # instead of being coerced into something the caller did not mean.
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT, strict=True)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT, strict=True)
    temperature: float = Field(default=0.7, ge=0, le=2, strict=True)
    top_p: float = Field(default=1.0, gt=0, le=1, strict=True)
    stop: str | list[str] | None = None
    stream: bool = Field(default=False, strict=True)
    n: int = Field(default=1, ge=1, le=1, strict=True)
    response_format: ResponseFormat | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        items = [v] if isinstance(v, str) else v or []
        if len(items) > STOP_MAX:
            raise ValueError(f"at most {STOP_MAX} stop strings")
        if any(not s for s in items):
            raise ValueError("stop strings must not be empty")
        return v


class ImageRequest(_Strict):
    prompt: str | None = Field(default=None, max_length=1000)
    label: str | None = Field(default=None, max_length=200)
    n: int = Field(default=1, strict=True)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, strict=True)
    response_format: str = "b64_json"
    grid: bool = Field(default=False, strict=True)
    model: str | None = None


# ---------------------------------------------------------------- metrics


class Metrics:
    """Prometheus series for one app (its own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge("taskwright_queue_depth", "Requests waiting for a batch", ["kind"], registry=r)
        self.in_flight = Gauge("taskwright_in_flight", "Requests queued or running", ["kind"], registry=r)
        self.batch_size = Histogram("taskwright_batch_size", "Requests per batch", ["kind"], registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))  # fmt: skip
        self.batch_seconds = Histogram("taskwright_batch_seconds", "Time to run a batch", ["kind"], registry=r)
        self.latency = Histogram("taskwright_request_seconds", "Request latency", ["endpoint"], registry=r,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))  # fmt: skip
        self.requests = Counter("taskwright_requests", "Requests by endpoint and status", ["endpoint", "status"],
                                registry=r)  # fmt: skip
        self.tokens = Counter("taskwright_generated_tokens", "Tokens generated", registry=r)
        self.images = Counter("taskwright_generated_images", "Images generated", registry=r)
        self.tokens_per_s = Gauge("taskwright_tokens_per_second", "Tokens/s of the last text batch", registry=r)

    def observe_batch(self, kind: str, size: int, seconds: float, work: int) -> None:
        self.batch_size.labels(kind).observe(size)
        self.batch_seconds.labels(kind).observe(seconds)
        if kind == "text":
            self.tokens.inc(work)
            if seconds > 0:
                self.tokens_per_s.set(work / seconds)
        else:
            self.images.inc(work)


# ---------------------------------------------------------------- guard


_COUNTED = ("/v1/chat/completions", "/v1/images/generations")


class Guard:
    """Refuses bodies over MAX_BODY_BYTES (by Content-Length, or while reading a chunked body), and counts
    requests and latency per endpoint (until the last byte of a stream).

    Pure ASGI on purpose: Starlette's BaseHTTPMiddleware (`@app.middleware("http")`) hides the client's
    disconnect from the handlers, so a plain reply whose client went away kept generating to max_tokens.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_counted(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            receive_app = await self._bounded(scope, receive)
            if receive_app is None:
                status[0] = 413
                await _error(413, f"the request body is over {MAX_BODY_BYTES // 1024} KiB")(scope, receive, send)
            else:
                await self.app(scope, receive_app, send_counted)
        finally:
            path = scope.get("path", "")
            if path in _COUNTED:
                self.metrics.requests.labels(path, str(status[0])).inc()
                self.metrics.latency.labels(path).observe(time.perf_counter() - t0)

    @staticmethod
    async def _bounded(scope: Any, receive: Any) -> Any:
        """The receive the app should use, or None when the body is too big."""
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            return receive if length.isdigit() and int(length) <= MAX_BODY_BYTES else None
        if b"chunked" not in headers.get(b"transfer-encoding", b""):
            return receive
        chunks, size = [], 0
        while True:  # a chunked body: read it here, up to the limit, then hand it on whole
            message = await receive()
            if message["type"] != "http.request":
                return receive  # the client went away; the app will see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                log.info("%s: chunked body over %d bytes refused", scope.get("path"), MAX_BODY_BYTES)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return replay


# ---------------------------------------------------------------- app


def create_app(settings: Settings, *, backends: Backends | None = None, preload: bool = True) -> FastAPI:
    """The service app; backends default to the models named in settings, loaded at startup when preload."""
    metrics = Metrics()
    if backends is None:
        backends = Backends(settings, observer=metrics.observe_batch)
    else:
        backends.observer = metrics.observe_batch

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preload:
            for name, part in (("text", backends.text), ("images", backends.images)):
                try:
                    await asyncio.to_thread(part)
                except ModelUnavailableError as exc:
                    log.error("%s endpoints will answer 503: %s", name, exc)
        log.info("generation service ready: %s", backends.status())
        yield
        log.info("generation service stopping; finishing queued requests")
        await asyncio.to_thread(backends.close, settings.request_timeout_s)

    app = FastAPI(title="Taskwright generation service", lifespan=lifespan)
    app.state.backends = backends
    app.state.metrics = metrics

    app.add_middleware(Guard, metrics=metrics)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        log.info("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc.message)
        return _error(exc.status, exc.message, kind=exc.kind, param=exc.param, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            if e.get("type") == "json_invalid":
                ctx = e.get("ctx") or {}
                msg = f"the body is not valid JSON ({ctx.get('error', 'parse error')} at position {where or '?'})"
                log.info("%s: malformed JSON", request.url.path)
                return _error(400, msg)
            problems.append(f"{where or 'body'}: {e.get('msg')}")
        message = "invalid request: " + "; ".join(problems[:5])
        log.info("%s -> 422: %s", request.url.path, message)
        return _error(422, message, param=problems[0].split(":")[0] if problems else None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        status = backends.status()
        ok = any(v == "ready" for v in status.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **status}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        for kind, part in (("text", backends._text), ("image", backends._images.batcher if backends._images else None)):
            if part is not None:
                metrics.queue_depth.labels(kind).set(part.depth)
                metrics.in_flight.labels(kind).set(part.in_flight)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = []
        if backends._text is not None:
            data.append({"id": backends._text.engine.name, "object": "model", "owned_by": "taskwright",
                         "created": 0, "kind": "text"})  # fmt: skip
        if backends._images is not None:
            data.append({"id": "gan", "object": "model", "owned_by": "taskwright", "created": 0, "kind": "image",
                         "labels": backends._images.class_names})  # fmt: skip
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request) -> Response:
        return await _chat(body, request, backends, settings)

    @app.post("/v1/images/generations")
    async def images(body: ImageRequest) -> JSONResponse:
        return await _images(body, backends, settings)

    return app


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(503, str(exc), kind="service_unavailable", headers={"Retry-After": "30"})


def _busy(exc: QueueFull | ShuttingDown) -> ApiError:
    if isinstance(exc, QueueFull):
        return ApiError(503, str(exc), kind="overloaded", headers={"Retry-After": str(exc.retry_after)})
    return ApiError(503, "the service is shutting down; retry on another replica", kind="shutting_down",
                    headers={"Retry-After": "5"})  # fmt: skip


def _grammar(fmt: ResponseFormat | None) -> str | None:
    """The llguidance grammar a json_schema/json_object response_format is enforced with (None for text)."""
    if fmt is None:
        return None
    try:
        return grammar_for(fmt.model_dump())
    except GrammarError as exc:
        raise ApiError(400, str(exc), param="response_format") from exc


def _json_hint(fmt: ResponseFormat | None) -> str:
    """A system line for json_object. A json_schema gets none: the grammar enforces the schema, and the
    caller's prompt says what to write (the llama.cpp planner path sends the same prompt with no schema text);
    the schema as text cost hundreds of prompt tokens per request."""
    if fmt is None or fmt.type != "json_object":
        return ""
    return "Reply with one JSON object only."


async def _chat(body: ChatRequest, request: Request, backends: Backends, settings: Settings) -> Response:
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in body.messages]  # fmt: skip
    if not any(m["content"].strip() for m in messages):
        raise ApiError(400, "the prompt is empty: give at least one message with text", param="messages")
    hint = _json_hint(body.response_format)
    if hint:
        messages = [{"role": "system", "content": hint}, *messages]
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    params = SamplingParams(
        max_tokens=body.max_tokens or body.max_completion_tokens or DEFAULT_MAX_TOKENS,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=stop,
        grammar=_grammar(body.response_format),
    )
    try:
        batcher = await asyncio.to_thread(backends.text)
    except ModelUnavailableError as exc:
        raise _unavailable(exc) from exc
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[TextEvent] = asyncio.Queue()

    def sink(ev: TextEvent) -> None:
        loop.call_soon_threadsafe(events.put_nowait, ev)

    try:
        req = await asyncio.to_thread(batcher.submit, messages, params, sink, timeout_s=settings.request_timeout_s)
    except PromptTooLong as exc:
        raise ApiError(413, str(exc), param="messages") from exc
    except GrammarError as exc:
        raise ApiError(400, str(exc), param="response_format") from exc
    except (QueueFull, ShuttingDown) as exc:
        log.warning("chat refused: %s", exc)
        raise _busy(exc) from exc
    rid, created, model = f"chatcmpl-{req.id}", int(time.time()), batcher.engine.name
    if body.stream:
        return StreamingResponse(
            _stream(events, req, rid, created, model), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip
    parts: list[str] = []
    finished = False
    checked = time.monotonic()
    try:
        while True:
            # Whether the client is still there is asked at least every DISCONNECT_CHECK_S, also while
            # tokens keep coming (a reply nobody waits for must not run on to max_tokens).
            try:
                ev: TextEvent | None = await asyncio.wait_for(events.get(), timeout=DISCONNECT_CHECK_S)
            except TimeoutError:
                ev = None
            if ev is None or time.monotonic() - checked >= DISCONNECT_CHECK_S:
                checked = time.monotonic()
                if await request.is_disconnected():
                    req.cancelled.set()
                    log.info("chat %s: client went away; cancelled", req.id)
                    return Response(status_code=499)
            if ev is None:
                continue
            parts.append(ev.delta)
            if ev.finish is not None:
                finished = True
                break
    finally:
        if not finished:  # the handler was cancelled or failed: free the batch slot
            req.cancelled.set()
    if ev.finish == "timeout":
        raise ApiError(504, f"generation did not finish within {settings.request_timeout_s:.0f} s",
                       kind="timeout")  # fmt: skip
    if ev.finish == "error" or ev.finish == "cancelled":
        raise ApiError(500, ev.error or "generation was cancelled", kind="server_error")
    # With a response_format the reply is the grammar's JSON as generated (cut short only at max_tokens, a stop
    # string or the timeout: then it is returned as it is, with finish_reason "length" or "stop").
    content = "".join(parts)
    return JSONResponse({
        "id": rid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": ev.finish, "logprobs": None}],
        "usage": _usage(ev),
    })  # fmt: skip


def _usage(ev: TextEvent) -> dict[str, int]:
    return {"prompt_tokens": ev.prompt_tokens, "completion_tokens": ev.completion_tokens,
            "total_tokens": ev.prompt_tokens + ev.completion_tokens}  # fmt: skip


async def _stream(events: asyncio.Queue[TextEvent], req: Any, rid: str, created: int, model: str
                  ) -> AsyncIterator[str]:  # fmt: skip
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    done = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        while True:
            ev = await events.get()
            if ev.finish is None:
                if ev.delta:
                    yield chunk({"content": ev.delta})
                continue
            done = True
            if ev.finish in ("stop", "length"):
                if ev.delta:
                    yield chunk({"content": ev.delta})
                yield chunk({}, ev.finish, usage=_usage(ev))
            else:
                err = {"message": ev.error or f"generation ended: {ev.finish}", "type": ev.finish}
                yield f"data: {json.dumps({'error': err})}\n\n"
            yield "data: [DONE]\n\n"
            return
    finally:
        if not done:  # the client disconnected mid-stream: free the batch slot
            req.cancelled.set()
            log.info("chat %s: stream closed by the client; cancelled", req.id)


async def _images(body: ImageRequest, backends: Backends, settings: Settings) -> JSONResponse:
    if body.response_format != "b64_json":
        raise ApiError(400, f"response_format {body.response_format!r} is not supported; use 'b64_json'",
                       param="response_format")  # fmt: skip
    if not 1 <= body.n <= IMAGES_MAX:
        raise ApiError(400, f"n must be between 1 and {IMAGES_MAX} (got {body.n})", param="n")
    prompt = (body.prompt or "").strip()
    label = (body.label or "").strip()
    if not prompt and not label:
        raise ApiError(400, "give a prompt (e.g. 'a handwritten seven') or a label", param="prompt")
    try:
        service = await asyncio.to_thread(backends.images)
    except ModelUnavailableError as exc:
        raise _unavailable(exc) from exc
    try:
        index = await asyncio.to_thread(service.label_index, prompt=prompt or None, label=label or None)
    except UnknownLabel as exc:
        raise ApiError(422, str(exc), param="label" if label else "prompt") from exc
    try:
        job = service.submit(index, body.n, body.seed, timeout_s=settings.request_timeout_s)
    except (QueueFull, ShuttingDown) as exc:
        log.warning("images refused: %s", exc)
        raise _busy(exc) from exc
    try:
        arr = await asyncio.wait_for(asyncio.wrap_future(job.future), settings.request_timeout_s + 5)
    except TimeoutError as exc:
        job.future.cancel()
        raise ApiError(504, f"drawing did not finish within {settings.request_timeout_s:.0f} s",
                       kind="timeout") from exc  # fmt: skip
    except RuntimeError as exc:
        raise ApiError(500, str(exc), kind="server_error") from exc
    name = service.class_names[index]
    pngs = await asyncio.to_thread(_encode, arr, body.grid)
    return JSONResponse({
        "created": int(time.time()), "label": name, "n": body.n, "seed": body.seed,
        "data": [{"b64_json": base64.b64encode(p).decode("ascii")} for p in pngs],
    })  # fmt: skip


def _encode(arr: Any, grid: bool) -> list[bytes]:
    from generation.gan import grid_png

    if grid:
        return [grid_png(arr, scale=2)]
    from PIL import Image

    out = []
    for img in arr:
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


_HOST = re.compile(r"^[A-Za-z0-9.:\-\[\]]+$")


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service under uvicorn until SIGINT/SIGTERM; in-flight requests finish first."""
    import uvicorn

    if not _HOST.match(host):
        raise ValueError(f"not a host name or address: {host!r}")
    _check_device(settings.device)
    _check_port_free(host, port)  # before the models load (a minute), not after
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="info",
                            timeout_graceful_shutdown=int(settings.request_timeout_s) + 5)  # fmt: skip
    uvicorn.Server(config).run()


def _check_device(device: str) -> None:
    """An explicit TASKWRIGHT_DEVICE that this machine lacks stops the service with one line (ValueError)."""
    if device == "auto":
        return
    from generation.gan.train import pick_device

    try:
        pick_device(device)
    except ValueError as exc:
        log.error("TASKWRIGHT_DEVICE=%s: %s", device, exc)
        raise ValueError(f"TASKWRIGHT_DEVICE={device}: {exc} (use auto or cpu on this machine)") from None


def _check_port_free(host: str, port: int) -> None:
    """OSError naming the address when something already listens there (uvicorn would say so after loading)."""
    import socket

    if port == 0:
        return
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve the host {host!r}: {exc}") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no conflict
        try:
            probe.bind(addr)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %r", host, port, exc)
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror} "
                                     "(another server is using it? pick another --port)") from None


__all__ = ["ApiError", "ChatRequest", "ImageRequest", "Metrics", "create_app", "serve"]
