"""The Slack adapter: Slack payloads in, ChatRequest / ActionRequest to the service, Reply out as Web API calls.

Bolt acks at once; the service runs on our own worker pool (not bolt's listener pool), after a "planning…"
status in the thread; replies go to the thread (`thread_ts` passed explicitly), the status message turns
into the first reply. Events are de-duplicated on `event_id` in the store before any work, answering 200
so Slack stops retrying. Serves Socket Mode or HTTP (`POST /slack/events`, signatures verified by bolt).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.slack_render import (
    SlackFile,
    SlackMessage,
    clean_text,
    page_of_task,
    render,
    render_plan_page,
    to_action_request,
    to_chat_request,
)
from bot.types import ActionRequest, ChatRequest, DirectMessage, PlanReply, Reply, TextReply
from planner.errors import TaskwrightError

if TYPE_CHECKING:
    from bot.service import Assistant
    from bot.settings import Settings

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1_000_000
DEFAULT_STATUS = "Working on it… :hourglass_flowing_sand:"
STALE_BUTTON = TextReply(
    "That button doesn't belong to a task I know; ask me for the plan again.", kind="error"
)
OOPS = "Sorry, something went wrong on my side while answering that. The error is in the bot's log; please try again."


# ---- our replies -> Web API calls ---------------------------------------------------------------------


@dataclass
class Target:
    """Where replies go. status_ts: a status message to turn into the first reply; update_ts: a clicked message."""

    channel: str
    thread_ts: str | None
    user: str
    status_ts: str | None = None
    update_ts: str | None = None
    task_id: int | None = None
    errors_ephemeral: bool = False


def _click_target(body: dict[str, Any]) -> Target:
    """Where a click's answers go: the clicked message (to update), its thread, errors to the clicker only."""
    box = body.get("container") or {}
    channel = box.get("channel_id") or (body.get("channel") or {}).get("id", "")
    thread = box.get("thread_ts") or box.get("message_ts")
    user = (body.get("user") or {}).get("id", "")
    return Target(channel, thread, user, update_ts=box.get("message_ts"), errors_ephemeral=True)


class SlackAdapter:
    """Runs the service for Slack requests on a worker pool and posts what it answers."""

    def __init__(self, assistant: Assistant, client: WebClient, *, worker: Executor) -> None:
        self.assistant = assistant
        self.client = client
        self.worker = worker
        self._dm_channels: dict[str, str] = {}

    # -- entry points (called on bolt's threads; they only queue work) ---------------------------------

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        self.worker.submit(self._guarded, job, *args)

    def _guarded(self, job: Callable[..., None], *args: Any) -> None:
        try:
            job(*args)
        except Exception:
            log.exception("Slack job %s failed (args=%.300r)", getattr(job, "__name__", job), args)

    # -- jobs (on the worker) -------------------------------------------------------------------------

    def answer(self, req: ChatRequest) -> None:
        """Route, show a status if the work is slow, run the service, deliver its replies in the thread."""
        target = Target(channel=req.channel, thread_ts=req.reply_thread, user=req.user)
        try:
            intent = self.assistant.route(req)
            if intent.slow:
                status = self._post(
                    target, SlackMessage(text=intent.status_text or DEFAULT_STATUS, blocks=[])
                )
                target.status_ts = status
                target.thread_ts = target.thread_ts or status
            replies = self.assistant.handle(req)
        except Exception:
            log.exception("Slack: answering failed (user=%s channel=%s ts=%s)", req.user, req.channel, req.ts)
            replies = [TextReply(OOPS, kind="error")]
        self.deliver(replies, target)

    def act(self, act: ActionRequest) -> None:
        """Run a button click through the service; update the clicked message, other replies in the thread."""
        target = Target(
            channel=act.channel,
            thread_ts=act.thread_ts or act.message_ts,
            user=act.user,
            update_ts=act.message_ts,
            task_id=act.task_id,
            errors_ephemeral=True,
        )
        self.deliver(self.assistant.handle_action(act), target)

    def deliver(self, replies: Sequence[Reply], target: Target) -> None:
        """Post (or update into place) each reply; a failure is logged and reported, the rest still go out."""
        for reply in replies:
            try:
                self._deliver_one(reply, target)
            except Exception as e:
                log.exception(
                    "Slack: delivering %s failed (channel=%s)", type(reply).__name__, target.channel
                )
                self._report_failure(target, e)
        if target.status_ts:  # nothing replaced the status message
            self._call_quietly(self.client.chat_delete, channel=target.channel, ts=target.status_ts)

    def _deliver_one(self, reply: Reply, target: Target) -> None:
        if isinstance(reply, DirectMessage):
            self._send_dm(reply)
            return
        if isinstance(reply, TextReply) and reply.kind == "error" and target.errors_ephemeral:
            self._post_ephemeral(target, reply)
            return
        if isinstance(reply, PlanReply) and reply.update and target.update_ts:
            page = page_of_task(reply.plan, target.task_id) if target.task_id is not None else 0
            msg = render_plan_page(reply.plan, page, note=reply.note)
            self.client.chat_update(
                channel=target.channel, ts=target.update_ts, text=msg.text, blocks=msg.blocks
            )
            return
        for i, out in enumerate(render(reply)):
            ts = self._post(target, out)
            if isinstance(reply, PlanReply) and i == 0 and ts:
                self.assistant.store.set_plan_message(reply.plan.id, target.channel, ts)

    def _post(self, target: Target, out: SlackMessage | SlackFile) -> str | None:
        """Post one message in the thread (or turn the status message into it); returns its ts."""
        if isinstance(out, SlackFile):
            self.client.files_upload_v2(
                channel=target.channel,
                thread_ts=target.thread_ts,
                content=out.content,
                filename=out.filename,
                title=out.title,
                initial_comment=out.comment,
            )
            return None
        if target.status_ts:
            status_ts, target.status_ts = target.status_ts, None
            self.client.chat_update(channel=target.channel, ts=status_ts, text=out.text, blocks=out.blocks)
            return status_ts
        kwargs: dict[str, Any] = {"blocks": out.blocks} if out.blocks else {}
        resp = self.client.chat_postMessage(
            channel=target.channel, thread_ts=target.thread_ts, text=out.text, **kwargs
        )
        ts: str | None = resp.get("ts")
        target.thread_ts = target.thread_ts or ts
        return ts

    def _post_ephemeral(self, target: Target, reply: TextReply) -> None:
        """An error only the clicking user sees (e.g. "only the assignee can accept")."""
        for out in render(reply):
            text = out.text if isinstance(out, SlackMessage) else out.comment
            self.client.chat_postEphemeral(
                channel=target.channel, user=target.user, text=text, thread_ts=target.thread_ts
            )

    def _send_dm(self, dm: DirectMessage) -> None:
        """conversations.open (cached per user) then the rendered body; several messages thread under the first."""
        channel = self._dm_channels.get(dm.user)
        if channel is None:
            channel = self.client.conversations_open(users=dm.user)["channel"]["id"]
            self._dm_channels[dm.user] = channel
        target = Target(channel=channel, thread_ts=None, user=dm.user)
        for out in render(dm.body):
            self._post(target, out)

    def _report_failure(self, target: Target, error: Exception) -> None:
        detail = error.response.get("error", "") if isinstance(error, SlackApiError) else ""
        why = f" (Slack said: {detail})" if detail else ""
        text = f"Sorry, I couldn't post part of my answer{why}. The details are in the bot's log."
        self._call_quietly(
            self.client.chat_postMessage, channel=target.channel, thread_ts=target.thread_ts, text=text
        )

    def _call_quietly(self, method: Callable[..., Any], **kwargs: Any) -> None:
        try:
            method(**kwargs)
        except Exception:
            log.exception("Slack: %s failed (%.200r)", getattr(method, "__name__", method), kwargs)


# ---- the bolt app -------------------------------------------------------------------------------------


def build_web_client(settings: Settings) -> WebClient:
    """A WebClient for the bot token; base_url from TASKWRIGHT_SLACK_API_URL; retries 429s and connection errors."""
    if not settings.slack_bot_token:
        raise TaskwrightError(
            "Slack needs a bot token: set SLACK_BOT_TOKEN (xoxb-…) in the environment or .env."
        )
    base_url = settings.slack_api_url or WebClient.BASE_URL
    return WebClient(
        token=settings.slack_bot_token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        retry_handlers=[ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)],
    )


def build_slack_app(
    assistant: Assistant,
    settings: Settings,
    *,
    client: WebClient | None = None,
    worker: Executor | None = None,
) -> App:
    """The bolt App with our listeners. App() calls auth.test once, so the Web API must answer.

    Without SLACK_SIGNING_SECRET a random secret is used: Socket Mode works, every HTTP request gets 401.
    Args:
        worker: where the service runs (default: a pool of 2 threads; the caller shuts a given one down).
    """
    client = client or build_web_client(settings)
    try:
        app = App(
            client=client,
            signing_secret=settings.slack_signing_secret or secrets.token_hex(32),
            name="taskwright",
            logger=logging.getLogger("taskwright.bolt"),
        )
    except (BoltError, OSError) as e:  # auth.test refused the token, or Slack is unreachable
        raise TaskwrightError(
            f"Slack did not accept the bot token at {client.base_url}auth.test ({e}). "
            "Check SLACK_BOT_TOKEN (xoxb-…) and that the app is installed to the workspace."
        ) from e
    adapter = SlackAdapter(
        assistant,
        client,
        worker=worker or ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskwright-slack"),
    )
    _register(app, adapter)
    return app


def _register(app: App, adapter: SlackAdapter) -> None:
    store = adapter.assistant.store

    @app.middleware
    def dedupe_events(body: dict[str, Any], next: Callable[[], BoltResponse]) -> BoltResponse | None:
        event_id = body.get("event_id")
        if body.get("type") == "event_callback" and event_id:
            try:
                first = store.claim_event(str(event_id))
            except Exception:
                log.exception("Slack: could not record event %s; handling it anyway", event_id)
                first = True
            if not first:
                log.info("Slack: event %s already handled; answering 200 so Slack stops retrying", event_id)
                return BoltResponse(status=200, body="")
        return next()

    def on_event(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        req = to_chat_request(event, event_id=body.get("event_id"), bot_user_id=context.bot_user_id)
        if req is not None:
            adapter.submit(adapter.answer, req)

    app.event("app_mention")(on_event)
    app.event("message")(on_event)

    @app.event(re.compile(r".*"))  # last: any other subscribed event gets its 200, or Slack retries it
    def on_other_event(event: dict[str, Any]) -> None:
        log.debug("Slack: ignoring a %s event", event.get("type"))

    @app.command("/plan")
    def on_plan_command(ack: Callable[..., None], command: dict[str, Any]) -> None:
        ack()
        text = "plan: " + clean_text(command.get("text") or "")
        req = ChatRequest(user=command["user_id"], text=text.strip(), channel=command["channel_id"])
        adapter.submit(adapter.answer, req)

    @app.action(re.compile(r"^task_[a-z]+$"))
    def on_task_button(ack: Callable[..., None], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        try:
            act = to_action_request(body, action)
        except (ValueError, KeyError) as e:
            log.warning("Slack: ignoring a button click: %s", e)
            adapter.submit(adapter.deliver, [STALE_BUTTON], _click_target(body))
            return
        adapter.submit(adapter.act, act)


# ---- serving ------------------------------------------------------------------------------------------


class SlackHTTPServer(ThreadingHTTPServer):
    """Serves the Events API, slash commands and interactivity at POST /slack/events (one thread a request)."""

    daemon_threads = True

    def __init__(self, app: App, address: tuple[str, int], *, path: str = EVENTS_PATH) -> None:
        self.app = app
        self.events_path = path
        super().__init__(address, _SlackRequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _SlackRequestHandler(BaseHTTPRequestHandler):
    server: SlackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)

    def do_GET(self) -> None:
        self._send(404, {}, "not found")

    def do_POST(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        if path != self.server.events_path:
            self._send(404, {}, "not found")
            return
        if length > MAX_BODY_BYTES:
            self._send(413, {}, "request too large")
            return
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        headers: dict[str, str | Sequence[str]] = {
            k.lower(): self.headers.get_all(k) or [] for k in self.headers
        }
        resp = self.server.app.dispatch(BoltRequest(body=body, query=query, headers=headers))
        self._send(resp.status, resp.headers, resp.body)

    def _send(self, status: int, headers: dict[str, Sequence[str]], body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        for k, values in headers.items():
            if k.lower() != "content-length":
                for v in values:
                    self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_http_server(
    app: App, *, host: str = "0.0.0.0", port: int = 3000, path: str = EVENTS_PATH
) -> SlackHTTPServer:
    """An HTTP server for app (not started: call serve_forever); port 0 picks a free port."""
    return SlackHTTPServer(app, (host, port), path=path)


def run_http(assistant: Assistant, settings: Settings, *, port: int = 3000, host: str = "0.0.0.0") -> None:
    """Serve the app over HTTP until interrupted; needs SLACK_SIGNING_SECRET to verify requests."""
    if not settings.slack_signing_secret:
        raise TaskwrightError(
            "HTTP mode verifies every request: set SLACK_SIGNING_SECRET (Basic Information page)."
        )
    worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskwright-slack")
    server = make_http_server(build_slack_app(assistant, settings, worker=worker), host=host, port=port)
    log.info("Slack HTTP mode: listening on http://%s:%d%s", host, server.port, EVENTS_PATH)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        worker.shutdown(wait=True, cancel_futures=True)


def dispatch_socket_frame(app: App, frame: dict[str, Any]) -> BoltResponse | None:
    """Dispatch one Socket Mode frame the way SocketModeHandler does; None for hello/disconnect frames.

    A 200 response is what the handler acks with `{"envelope_id": ...}` (plus the body as payload, if any).
    """
    from slack_bolt.adapter.socket_mode.internals import run_bolt_app
    from slack_sdk.socket_mode.request import SocketModeRequest

    req = SocketModeRequest.from_dict(frame)
    return run_bolt_app(app, req) if req is not None else None


def run_socket_mode(assistant: Assistant, settings: Settings) -> None:
    """Connect over Socket Mode (no public URL needed) until interrupted; needs SLACK_APP_TOKEN."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if not settings.slack_app_token:
        raise TaskwrightError(
            "Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-…, connections:write)."
        )
    worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskwright-slack")
    app = build_slack_app(assistant, settings, worker=worker)
    try:
        SocketModeHandler(app, app_token=settings.slack_app_token).start()
    finally:
        worker.shutdown(wait=True, cancel_futures=True)
