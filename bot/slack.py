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
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.slack_http import EVENTS_PATH, SlackHTTPServer, make_http_server, payload_problem
from bot.files import SlackFiles
from bot.slack_render import (
    SlackFile,
    SlackMessage,
    SlackUpload,
    clean_text,
    page_of_task,
    ref_id,
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

__all__ = ["SlackAdapter", "SlackHTTPServer", "Target", "build_slack_app", "build_web_client",
           "dispatch_socket_frame", "make_http_server", "run_http", "run_socket_mode", "socket_mode_handler"]

log = logging.getLogger(__name__)

_ID = re.compile(r"[A-Z][A-Z0-9]{2,40}")  # a Slack user or channel id

DEFAULT_STATUS = "Working on it… :hourglass_flowing_sand:"
STALE_BUTTON = TextReply(
    "That button doesn't belong to a task I know; ask me for the plan again.", kind="error"
)
OOPS = "Sorry, something went wrong on my side while answering that. The error is in the bot's log; please try again."
UNREADABLE = TextReply(
    "Sorry, I couldn't read that request (Slack sent it in a shape I don't expect). Please send it again.",
    kind="error",
)


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
    errors_ephemeral: bool = False  # error replies go to `user` only (chat.postEphemeral)...
    ephemeral_thread_ts: str | None = None
    posted: bool = False  # ...until the answer has posted into the thread: then they follow it there


def _click_target(body: dict[str, Any]) -> Target:
    """Where a click's answers go: the clicked message (to update), its thread, errors to the clicker only."""
    box = body.get("container") or {}
    channel = box.get("channel_id") or ref_id(body.get("channel"))
    thread = box.get("thread_ts") or box.get("message_ts")
    user = ref_id(body.get("user"))
    return Target(channel, thread, user, update_ts=box.get("message_ts"), errors_ephemeral=True,
                  ephemeral_thread_ts=thread)


def _chat_target(req: ChatRequest) -> Target:
    """Replies go in the request's thread. Errors in a channel outside a thread (slash commands, top-level
    mentions) go only to the person who asked; in DMs and threads they are posted normally."""
    private = not req.is_dm and req.thread_ts is None
    return Target(channel=req.channel, thread_ts=req.reply_thread, user=req.user, errors_ephemeral=private)


class SlackAdapter:
    """Runs the service for Slack requests on a worker pool and posts what it answers."""

    def __init__(self, assistant: Assistant, client: WebClient, *, worker: Executor) -> None:
        self.assistant = assistant
        self.client = client
        self.worker = worker
        self._dm_channels: dict[str, str] = {}
        self.files = SlackFiles(client.token or "", self._file_info)

    def _file_info(self, file_id: str) -> dict[str, Any]:
        info: dict[str, Any] = self.client.files_info(file=file_id)["file"]
        return info

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
        target = _chat_target(req)
        try:
            intent = self.assistant.route(req)
            if intent.slow:
                status = self._post(
                    target, SlackMessage(text=intent.status_text or DEFAULT_STATUS, blocks=[])
                )
                target.status_ts = status
                target.thread_ts = target.thread_ts or status
            replies = self.assistant.handle(req, fetcher=self.files)
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
            ephemeral_thread_ts=act.thread_ts or act.message_ts,
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
        # a status message up: replace it in place; an answer already in the thread: errors follow it there
        private = target.errors_ephemeral and not target.status_ts and not target.posted
        if isinstance(reply, TextReply) and reply.kind == "error" and private:
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
        target.posted = True
        if isinstance(out, SlackUpload):
            source: dict[str, Any] = {"file": out.path} if out.path else {"content": out.data or b""}
            self.client.files_upload_v2(
                channel=target.channel,
                thread_ts=target.thread_ts,
                filename=out.filename,
                title=out.title,
                alt_txt=out.alt_text or None,
                initial_comment=out.comment or None,
                **source,
            )
            return None
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
        """An error only the asking or clicking user sees (e.g. "only the assignee can accept")."""
        for out in render(reply):
            text = out.text if isinstance(out, SlackMessage) else out.comment or out.title
            self.client.chat_postEphemeral(
                channel=target.channel, user=target.user, text=text, thread_ts=target.ephemeral_thread_ts
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
    app._taskwright_adapter = adapter  # type: ignore[attr-defined]
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
        try:
            req = to_chat_request(event, event_id=body.get("event_id"), bot_user_id=context.bot_user_id,
                                  thread_has_table=_thread_has_table)
        except ValueError as e:
            addressed = event.get("type") == "app_mention" or event.get("channel_type") == "im"
            what = f"a {event.get('type')} event ({body.get('event_id')})"
            _refuse_malformed(adapter, what, e, event.get("user") if addressed else None, event.get("channel"))
            return
        if req is not None:
            adapter.submit(adapter.answer, req)

    def _thread_has_table(channel: str, thread_ts: str) -> bool:
        try:
            return store.table_for(channel, thread_ts) is not None
        except Exception:
            log.exception("Slack: could not look up the table of thread %s/%s", channel, thread_ts)
            return False

    app.event("app_mention")(on_event)
    app.event("message")(on_event)

    @app.event(re.compile(r".*"))  # last: any other subscribed event gets its 200, or Slack retries it
    def on_other_event(event: dict[str, Any]) -> None:
        log.debug("Slack: ignoring a %s event", event.get("type"))

    @app.command("/plan")
    def on_plan_command(ack: Callable[..., None], command: dict[str, Any]) -> None:
        ack()
        user, channel, text = command.get("user_id"), command.get("channel_id"), command.get("text") or ""
        if not (_is_id(user) and _is_id(channel) and isinstance(text, str)):
            _refuse_malformed(adapter, "a /plan command", "user_id, channel_id or text missing or not text",
                              user, channel)
            return
        req = ChatRequest(user=str(user), text=("plan: " + clean_text(text)).strip(), channel=str(channel))
        adapter.submit(adapter.answer, req)

    def on_command(prefix: str) -> Callable[..., None]:
        def handler(ack: Callable[..., None], command: dict[str, Any]) -> None:
            ack()
            user, channel, text = command.get("user_id"), command.get("channel_id"), command.get("text") or ""
            if not (_is_id(user) and _is_id(channel) and isinstance(text, str)):
                _refuse_malformed(adapter, f"a {command.get('command')} command",
                                  "user_id, channel_id or text missing or not text", user, channel)
                return
            req = ChatRequest(user=str(user), text=f"{prefix} {clean_text(text)}".strip(), channel=str(channel))
            adapter.submit(adapter.answer, req)

        return handler

    app.command("/generate")(on_command("/generate"))  # /generate image …, /generate text …
    app.command("/summarize")(on_command("/summarize"))  # /summarize <file link or id>
    app.command("/report")(on_command("weekly report"))

    @app.action(re.compile(r"^task_[a-z]+$"))
    def on_task_button(ack: Callable[..., None], body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        try:
            act = to_action_request(body, action)
        except ValueError as e:
            log.warning("Slack: ignoring a button click: %s", e)
            adapter.submit(adapter.deliver, [STALE_BUTTON], _click_target(body))
            return
        adapter.submit(adapter.act, act)


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _refuse_malformed(adapter: SlackAdapter, what: str, problem: object, user: Any, channel: Any) -> None:
    """Log a payload we cannot use; tell its sender privately when there is a user and a channel to answer."""
    log.warning("Slack: ignoring %s: %s (user=%.40r channel=%.40r)", what, problem, user, channel)
    if _is_id(user) and _is_id(channel):
        adapter.submit(adapter.deliver, [UNREADABLE], Target(channel, None, user, errors_ephemeral=True))


# ---- serving ------------------------------------------------------------------------------------------


def run_http(assistant: Assistant, settings: Settings, *, port: int = 3000, host: str = "0.0.0.0") -> None:
    """Serve the app over HTTP until interrupted; needs SLACK_SIGNING_SECRET to verify requests."""
    if not settings.slack_signing_secret:
        raise TaskwrightError(
            "HTTP mode verifies every request: set SLACK_SIGNING_SECRET (Basic Information page)."
        )
    worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskwright-slack")
    app = build_slack_app(assistant, settings, worker=worker)
    server = make_http_server(app, host=host, port=port)
    scheduler = start_report_scheduler(app, settings)
    log.info("Slack HTTP mode: listening on http://%s:%d%s", host, server.port, EVENTS_PATH)
    try:
        server.serve_forever()
    finally:
        if scheduler:
            scheduler.stop()
        server.server_close()
        worker.shutdown(wait=True, cancel_futures=True)


def dispatch_socket_frame(app: App, frame: dict[str, Any]) -> BoltResponse | None:
    """Dispatch one Socket Mode frame the way our handler does; None for hello/disconnect frames.

    A 200 response is what the handler acks with `{"envelope_id": ...}` (plus the body as payload, if any).
    """
    from slack_sdk.socket_mode.request import SocketModeRequest

    try:
        req = SocketModeRequest.from_dict(frame)
    except ValueError as e:  # the SDK's client logs and drops such a frame before any handler sees it
        log.warning("Slack Socket Mode: dropping a frame with an unusable payload (%s)", e)
        return None
    return _dispatch_socket_request(app, req) if req is not None else None


def _dispatch_socket_request(app: App, req: Any) -> BoltResponse:
    """bolt's run_bolt_app, after the payload check the HTTP front end makes (200 for a malformed payload)."""
    from slack_bolt.adapter.socket_mode.internals import run_bolt_app

    problem = payload_problem(req.payload)
    if problem:
        log.warning("Slack Socket Mode: ignoring a malformed %s payload (%s)", req.type, problem)
        return BoltResponse(status=200, body="")
    try:
        return run_bolt_app(app, req)  # type: ignore[no-any-return]
    except ValueError as e:  # BoltRequest refused the envelope (e.g. a retry_reason that is not text)
        log.warning("Slack Socket Mode: ignoring a %s envelope bolt cannot read (%s)", req.type, e)
        return BoltResponse(status=200, body="")


def socket_mode_handler(app: App, app_token: str) -> Any:
    """bolt's SocketModeHandler (not connected yet), with our payload check before each dispatch."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_bolt.adapter.socket_mode.internals import send_response

    class CheckedSocketModeHandler(SocketModeHandler):
        def handle(self, client: Any, req: Any) -> None:
            send_response(client, req, _dispatch_socket_request(self.app, req), time.time())

    return CheckedSocketModeHandler(app, app_token=app_token)


def run_socket_mode(assistant: Assistant, settings: Settings) -> None:
    """Connect over Socket Mode (no public URL needed) until interrupted; needs SLACK_APP_TOKEN."""
    if not settings.slack_app_token:
        raise TaskwrightError(
            "Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-…, connections:write)."
        )
    worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskwright-slack")
    app = build_slack_app(assistant, settings, worker=worker)
    scheduler = start_report_scheduler(app, settings)
    try:
        socket_mode_handler(app, settings.slack_app_token).start()
    finally:
        if scheduler:
            scheduler.stop()
        worker.shutdown(wait=True, cancel_futures=True)


def slack_adapter(app: App) -> SlackAdapter:
    """The adapter build_slack_app attached to app (for the scheduler and tests)."""
    adapter: SlackAdapter = app._taskwright_adapter  # type: ignore[attr-defined]
    return adapter


def start_report_scheduler(app: App, settings: Settings) -> Any:
    """Post the weekly report to settings.report_channel at settings.report_schedule; None when not set."""
    from bot.scheduler import ReportScheduler, parse_schedule

    if not settings.report_channel or not settings.report_schedule.strip():
        log.info("weekly report: not scheduled (set TASKWRIGHT_REPORT_CHANNEL and TASKWRIGHT_REPORT_SCHEDULE)")
        return None
    adapter = slack_adapter(app)
    channel = settings.report_channel

    def post(today: Any) -> None:
        adapter.deliver(adapter.assistant.weekly_report(today), Target(channel, None, "scheduler"))

    scheduler = ReportScheduler(parse_schedule(settings.report_schedule), post, store=adapter.assistant.store)
    scheduler.start()
    return scheduler
