"""Socket Mode frames through the app (as SocketModeHandler passes them), and delivery edge cases."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from bot.slack import SlackAdapter, Target, build_slack_app, build_web_client, dispatch_socket_frame
from bot.slack_render import TASKS_PER_PAGE, TEXT_FILE_CHARS
from bot.store import Store
from bot.types import ActionRequest, DirectMessage, PlanReply, Reply, TextReply
from planner.errors import TaskwrightError
from planner.types import Assignment, DraftPlan, Slot, Subtask

from . import TEAM, FakeSlack, load_fixture, make_assistant, posted_ts, slack_settings


@pytest.fixture
def settings(env_setup: Path, fake_slack: FakeSlack) -> Settings:
    return slack_settings(env_setup, fake_slack.api_url)


@pytest.fixture
def assistant(settings: Settings, store: Store, request: pytest.FixtureRequest) -> Any:
    return make_assistant(settings, store, request)


@pytest.fixture
def app(assistant: Any, settings: Settings) -> Iterator[Any]:
    worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-socket-worker")
    yield build_slack_app(assistant, settings, worker=worker)
    worker.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def adapter(assistant: Any, settings: Settings) -> Iterator[SlackAdapter]:
    worker = ThreadPoolExecutor(max_workers=1)
    yield SlackAdapter(assistant, build_web_client(settings), worker=worker)
    worker.shutdown(wait=True)


def test_first_delivery_with_retry_attempt_zero_plans_and_the_retry_does_not(
    app: Any, fake_slack: FakeSlack, store: Store
) -> None:
    first = load_fixture("socket_mode_envelope_events_api.json")
    assert first["retry_attempt"] == 0  # bolt turns this into x-slack-retry-num: "0"
    resp = dispatch_socket_frame(app, first)
    assert resp is not None and resp.status == 200
    status = fake_slack.wait_for("chat.postMessage")[0].params
    assert status["thread_ts"] == "1700000000.000100"
    fake_slack.wait_for("chat.update")
    fake_slack.quiet()
    assert len(store.plans()) == 1

    fake_slack.clear()
    resp = dispatch_socket_frame(app, load_fixture("socket_mode_envelope_events_api_retry.json"))
    assert resp is not None and resp.status == 200
    fake_slack.quiet()
    assert fake_slack.calls == [] and len(store.plans()) == 1


def test_connection_frames_are_not_requests(app: Any, fake_slack: FakeSlack) -> None:
    assert dispatch_socket_frame(app, load_fixture("socket_mode_hello.json")) is None
    assert dispatch_socket_frame(app, load_fixture("socket_mode_disconnect.json")) is None
    assert fake_slack.methods() == ["auth.test"]


def test_slash_command_and_button_over_socket_mode(app: Any, fake_slack: FakeSlack, store: Store) -> None:
    resp = dispatch_socket_frame(app, load_fixture("socket_mode_envelope_slash_commands.json"))
    assert resp is not None and resp.status == 200
    fake_slack.wait_for("chat.update")
    fake_slack.quiet()
    [plan] = store.plans()
    task = next(t for t in plan.tasks if t.assignee)
    assert task.assignee is not None
    ts = fake_slack.calls_of("chat.update")[0].params["ts"]

    frame = load_fixture("socket_mode_envelope_interactive.json")
    frame["payload"]["user"]["id"] = task.assignee.slack_id
    frame["payload"]["container"]["message_ts"] = ts
    frame["payload"]["actions"][0]["value"] = str(task.id)
    fake_slack.clear()
    resp = dispatch_socket_frame(app, frame)
    assert resp is not None and resp.status == 200
    [update] = fake_slack.wait_for("chat.update")
    assert update.params["ts"] == ts and store.task(task.id).status == "accepted"  # type: ignore[union-attr]


def big_plan(store: Store, n: int) -> Any:
    subs = tuple(Subtask(str(i), f"Step {i}", estimate_hours=0.5) for i in range(1, n + 1))
    draft = DraftPlan(request="a long plan", title="A long plan", subtasks=subs, source="playbook:test")
    assigns = [Assignment(s.id, TEAM[i % len(TEAM)], "test") for i, s in enumerate(subs)]
    slots = [Slot(s.id, dt.date(2024, 1, 1), dt.date(2024, 1, 5)) for s in subs]
    return store.save_plan(draft, assigns, slots, requester="U0000000001", channel="C0000000001")


def test_a_paginated_plan_posts_pages_and_a_click_updates_its_own_page(
    adapter: SlackAdapter, fake_slack: FakeSlack, store: Store
) -> None:
    plan = big_plan(store, 2 * TASKS_PER_PAGE + 5)
    adapter.deliver([PlanReply(plan)], Target("C0000000001", "1700000000.000100", "U0000000001"))
    pages = fake_slack.calls_of("chat.postMessage")
    assert len(pages) == 3 and all(len(p.blocks) <= 50 for p in pages)
    assert all(p.params["thread_ts"] == "1700000000.000100" for p in pages)
    assert posted_ts(store, plan.id) == "1800000000.000001"

    last = plan.tasks[-1]
    act = ActionRequest("U0000000001", "done", last.id, channel="C0000000001", message_ts="1800000000.000003")
    fake_slack.clear()
    adapter.act(act)
    [update] = fake_slack.calls_of("chat.update")
    assert update.params["ts"] == "1800000000.000003"
    assert update.blocks[0]["text"]["text"].endswith("(3/3)")
    assert f"task-{last.id}" in {b.get("block_id") for b in update.blocks}


def test_rate_limited_calls_are_retried(adapter: SlackAdapter, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "0"})
    adapter.deliver([TextReply("hello")], Target("C0000000001", "1700000000.000100", "U0000000001"))
    posts = fake_slack.calls_of("chat.postMessage")
    assert len(posts) == 2 and posts[1].params["text"] == "hello"


def test_very_long_text_is_uploaded_as_a_file_in_the_thread(
    adapter: SlackAdapter, fake_slack: FakeSlack
) -> None:
    text = "line of the report\n" * (TEXT_FILE_CHARS // 10)
    adapter.deliver([TextReply(text)], Target("C0000000001", "1700000000.000100", "U0000000001"))
    assert fake_slack.methods() == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    [upload] = fake_slack.calls_of("upload")
    assert upload.raw.decode() == text.strip()
    done = fake_slack.calls_of("files.completeUploadExternal")[0].params
    assert done["channel_id"] == "C0000000001" and done["thread_ts"] == "1700000000.000100"


def test_a_slack_error_is_logged_reported_and_the_rest_still_goes_out(
    adapter: SlackAdapter, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.fail_next("chat.postMessage", "msg_too_long")
    replies: list[Reply] = [TextReply("first"), DirectMessage("U0000000002", TextReply("for you"))]
    with caplog.at_level(logging.ERROR, logger="bot.slack"):
        adapter.deliver(replies, Target("C0000000001", "1700000000.000100", "U0000000001"))
    posts = [c.params for c in fake_slack.calls_of("chat.postMessage")]
    assert "msg_too_long" in posts[1]["text"] and posts[1]["thread_ts"] == "1700000000.000100"
    assert posts[2] == posts[2] | {"channel": "D0000000002", "text": "for you"}
    assert any("delivering TextReply failed" in r.getMessage() for r in caplog.records)


def test_dm_channels_are_opened_once_per_user(adapter: SlackAdapter, fake_slack: FakeSlack) -> None:
    dm = DirectMessage("U0000000002", TextReply("one"))
    adapter.deliver([dm, dm], Target("C0000000001", None, "U0000000001"))
    assert fake_slack.methods().count("conversations.open") == 1
    assert [c.params["channel"] for c in fake_slack.calls_of("chat.postMessage")] == ["D0000000002"] * 2


def test_a_rejected_token_is_a_clear_error(assistant: Any, settings: Settings, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("auth.test", "invalid_auth")
    with pytest.raises(TaskwrightError, match="SLACK_BOT_TOKEN"):
        build_slack_app(assistant, settings, worker=ThreadPoolExecutor(max_workers=1))
    with pytest.raises(TaskwrightError, match="SLACK_BOT_TOKEN"):
        build_web_client(settings.model_copy(update={"slack_bot_token": None}))


@pytest.mark.parametrize("change", [
    {"event": None}, {"event": {"text": "no type"}}, {"authorizations": 5},
], ids=["event-null", "event-without-type", "authorizations-number"])
def test_malformed_socket_mode_payloads_are_acked_and_ignored(
    app: Any, fake_slack: FakeSlack, store: Store, caplog: pytest.LogCaptureFixture, change: dict[str, Any]
) -> None:
    frame = load_fixture("socket_mode_envelope_events_api.json")
    frame["payload"] |= change
    with caplog.at_level(logging.WARNING, logger="bot.slack"):
        resp = dispatch_socket_frame(app, frame)
    assert resp is not None and resp.status == 200  # acked, so Slack does not redeliver it
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []
    assert any("malformed" in r.getMessage() for r in caplog.records)


def test_unusable_socket_mode_frames_are_dropped_with_a_warning(
    app: Any, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    frame = load_fixture("socket_mode_envelope_events_api.json")
    with caplog.at_level(logging.WARNING, logger="bot.slack"):
        assert dispatch_socket_frame(app, frame | {"payload": None}) is None
        resp = dispatch_socket_frame(app, frame | {"retry_attempt": 1, "retry_reason": 5})
    assert resp is not None and resp.status == 200
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_a_slash_command_without_a_channel_over_socket_mode_is_ignored(
    app: Any, fake_slack: FakeSlack, store: Store
) -> None:
    frame = load_fixture("socket_mode_envelope_slash_commands.json")
    del frame["payload"]["channel_id"]
    resp = dispatch_socket_frame(app, frame)
    assert resp is not None and resp.status == 200
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []


class RecordingSocketClient:
    """Stands in for the WebSocket client (no Slack to connect to): records the acks the handler sends."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("test.socket")
        self.sent: list[dict[str, Any]] = []

    def send_socket_mode_response(self, response: Any) -> None:
        self.sent.append(response.to_dict())


def test_the_socket_mode_handler_acks_malformed_envelopes_without_running_bolt(
    app: Any, fake_slack: FakeSlack, store: Store
) -> None:
    from slack_sdk.socket_mode.request import SocketModeRequest

    from bot.slack import socket_mode_handler

    handler = socket_mode_handler(app, "xapp-placeholder")
    try:
        client = RecordingSocketClient()
        bad = load_fixture("socket_mode_envelope_events_api.json")
        bad["payload"]["event"] = None
        handler.handle(client, SocketModeRequest.from_dict(bad))
        good = load_fixture("socket_mode_envelope_events_api.json")
        handler.handle(client, SocketModeRequest.from_dict(good))
        fake_slack.wait_for("chat.update")
        fake_slack.quiet()
    finally:
        handler.close()
    assert client.sent == [{"envelope_id": bad["envelope_id"]}, {"envelope_id": good["envelope_id"]}]
    assert len(store.plans()) == 1
