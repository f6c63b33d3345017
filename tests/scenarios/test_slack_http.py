"""The Slack app in HTTP mode on a free port, receiving really signed requests, its Web API a fake on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.slack import SlackHTTPServer, build_slack_app, make_http_server
from bot.slack_http import REQUEST_TIMEOUT_S, payload_problem, signature_ok
from bot.store import Store

from . import (
    BOT_USER_ID,
    SECRET,
    TEAM,
    FakeSlack,
    HttpRig,
    load_fixture,
    make_assistant,
    posted_ts,
    serve_http,
    sign,
    slack_settings,
)

CHANNEL = "C0000000001"
MENTION_TS = "1700000000.000100"


@pytest.fixture
def rig(
    store: Store, fake_slack: FakeSlack, env_setup: Path, request: pytest.FixtureRequest
) -> Iterator[HttpRig]:
    settings = slack_settings(env_setup, fake_slack.api_url)
    with serve_http(make_assistant(settings, store, request), settings) as rig:
        fake_slack.wait_for("auth.test")
        yield rig


def plan_in_thread(rig: HttpRig, fake: FakeSlack, event: dict[str, Any]) -> dict[str, Any]:
    """Send a mention; return the posted plan message (the status message, updated into the plan)."""
    status, _, seconds = rig.event(event)
    assert status == 200 and seconds < 3
    [status_post] = fake.wait_for("chat.postMessage", 1)[:1]
    [update] = fake.wait_for("chat.update", 1)[:1]
    assert (
        update.params["ts"] == "1800000000.000001"
        and update.params["channel"] == status_post.params["channel"]
    )
    fake.quiet()
    return {"status": status_post, "plan": update}


def test_url_verification_answers_the_challenge(rig: HttpRig, fake_slack: FakeSlack) -> None:
    status, body, _ = rig.event(load_fixture("url_verification.json"))
    assert status == 200 and json.loads(body) == {"challenge": "placeholder-challenge-string"}
    assert fake_slack.methods() == ["auth.test"]


def test_mention_plans_in_the_thread_dms_assignees_and_ignores_retries(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    event = load_fixture("events_app_mention.json")
    posted = plan_in_thread(rig, fake_slack, event)
    status_post = posted["status"].params
    assert status_post["channel"] == CHANNEL and status_post["thread_ts"] == MENTION_TS
    assert "Planning" in status_post["text"]
    blocks = posted["plan"].blocks
    assert blocks[0]["type"] == "header" and any(b.get("block_id", "").startswith("task-") for b in blocks)
    [plan] = store.plans()
    assert plan.requester == "U0000000001" and BOT_USER_ID not in plan.request
    assert "Q3 launch" in plan.request
    assert posted_ts(store, plan.id) == "1800000000.000001"  # where the plan was posted
    assignees = {t.assignee.slack_id for t in plan.tasks if t.assignee}
    assert assignees and {c.params["users"] for c in fake_slack.calls_of("conversations.open")} == assignees
    dm_posts = [c for c in fake_slack.calls_of("chat.postMessage") if c.params["channel"].startswith("D")]
    assert {c.params["channel"] for c in dm_posts} == {"D" + u[1:] for u in assignees}

    fake_slack.clear()
    status, _, _ = rig.event(event, retry=1)
    assert status == 200
    fake_slack.quiet()
    assert fake_slack.calls == [] and len(store.plans()) == 1


def test_bad_signature_or_stale_timestamp_gets_401_and_nothing_is_processed(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    event = load_fixture("events_app_mention.json")
    assert rig.event(event, secret="not-the-secret")[0] == 401
    assert rig.event(event, timestamp=int(time.time()) - 301)[0] == 401
    assert rig.post(json.dumps(event), content_type="application/json", headers={})[0] == 401
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []
    # the rejected copies claimed nothing: the genuine delivery is still handled
    plan_in_thread(rig, fake_slack, event)
    assert len(store.plans()) == 1


@pytest.mark.parametrize(
    "name",
    [
        "events_message_from_self_bot.json",
        "events_message_changed.json",
        "events_message_deleted.json",
        "events_assistant_thread_started.json",
    ],
)
def test_bots_edits_and_deletions_are_ignored(
    name: str, rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    status, _, _ = rig.event(load_fixture(name))
    assert status == 200  # not 404: Slack would retry
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []


def test_channel_messages_count_only_with_explicit_plan_syntax(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    base = load_fixture("events_message_im.json")
    chatter = json.loads(json.dumps(base))
    chatter["event"] |= {"channel": CHANNEL, "channel_type": "channel", "text": "we should plan the offsite"}
    chatter["event_id"] = "Ev00000000C1"
    assert rig.event(chatter)[0] == 200
    fake_slack.quiet()
    assert store.plans() == []
    explicit = json.loads(json.dumps(chatter))
    explicit["event"] |= {"text": "plan: the team offsite &amp; agenda", "ts": "1700000999.000100"}
    explicit["event_id"] = "Ev00000000C2"
    plan_in_thread(rig, fake_slack, explicit)
    [plan] = store.plans()
    assert "offsite & agenda" in plan.request
    assert fake_slack.calls_of("chat.postMessage")[0].params["thread_ts"] == "1700000999.000100"


def test_dm_with_escaped_unicode_reaches_the_service_unescaped(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    plan_in_thread(rig, fake_slack, load_fixture("events_message_im_unicode_escaped.json"))
    [plan] = store.plans()
    assert "revenue < cost & margin > 5%" in plan.request and "请总结这份报告" in plan.request
    first = fake_slack.calls_of("chat.postMessage")[0].params
    assert first["channel"] == "D0000000001" and first["thread_ts"] == "1700000150.000400"


def test_slash_command_acks_fast_then_posts_the_plan(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    status, _body, seconds = rig.form(load_fixture("slash_command.form.json"))
    assert status == 200 and seconds < 1.5
    status_post = fake_slack.wait_for("chat.postMessage")[0].params
    assert status_post["channel"] == CHANNEL and not status_post.get("thread_ts")  # starts its own thread
    fake_slack.wait_for("chat.update")
    fake_slack.quiet()
    [plan] = store.plans()
    assert "launch Q3 campaign" in plan.request and "<urgent>" in plan.request


def click(task_id: int, action: str, *, user: str, message_ts: str) -> dict[str, Any]:
    payload = load_fixture("block_actions_button.payload.json")
    payload["user"]["id"] = user
    payload["container"] |= {"message_ts": message_ts, "thread_ts": MENTION_TS}
    payload["actions"][0] |= {"action_id": f"task_{action}", "value": str(task_id)}
    return payload


def actions_of(blocks: list[dict[str, Any]], task_id: int) -> list[str]:
    for b in blocks:
        if b.get("block_id") == f"task-{task_id}-actions":
            return [e["action_id"] for e in b["elements"]]
    return []


def test_buttons_update_the_store_and_the_message(rig: HttpRig, fake_slack: FakeSlack, store: Store) -> None:
    plan_in_thread(rig, fake_slack, load_fixture("events_app_mention.json"))
    [plan] = store.plans()
    msg_ts = posted_ts(store, plan.id)
    assert msg_ts is not None
    first, second = [t for t in plan.tasks if t.assignee][:2]
    assert first.assignee is not None and second.assignee is not None

    fake_slack.clear()
    status, _, seconds = rig.interaction(
        click(first.id, "accept", user=first.assignee.slack_id, message_ts=msg_ts)
    )
    assert status == 200 and seconds < 1.5
    [update] = fake_slack.wait_for("chat.update")
    assert update.params["ts"] == msg_ts and update.params["channel"] == CHANNEL
    assert store.task(first.id).status == "accepted"  # type: ignore[union-attr]
    assert actions_of(update.blocks, first.id) == ["task_reassign", "task_done"]

    fake_slack.clear()
    rig.interaction(click(first.id, "done", user=first.assignee.slack_id, message_ts=msg_ts))
    [update] = fake_slack.wait_for("chat.update")
    assert store.task(first.id).status == "done" and actions_of(update.blocks, first.id) == []  # type: ignore[union-attr]

    fake_slack.clear()
    rig.interaction(click(second.id, "reassign", user="U0000000001", message_ts=msg_ts))
    fake_slack.wait_for("chat.update")
    fake_slack.quiet()
    moved = store.task(second.id)
    assert (
        moved is not None
        and moved.assignee is not None
        and moved.assignee.slack_id != second.assignee.slack_id
    )
    assert [c.params["users"] for c in fake_slack.calls_of("conversations.open")] in (
        [],
        [moved.assignee.slack_id],
    )


def test_a_refused_click_is_told_only_to_the_clicker(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    plan_in_thread(rig, fake_slack, load_fixture("events_app_mention.json"))
    [plan] = store.plans()
    task = next(t for t in plan.tasks if t.assignee)
    someone_else = next(m.slack_id for m in TEAM if m.slack_id != task.assignee.slack_id)  # type: ignore[union-attr]
    fake_slack.clear()
    rig.interaction(click(task.id, "accept", user=someone_else, message_ts="1800000000.000001"))
    [note] = fake_slack.wait_for("chat.postEphemeral")
    assert note.params["user"] == someone_else and note.params["channel"] == CHANNEL
    fake_slack.quiet()
    assert "chat.update" not in fake_slack.methods() and store.task(task.id).status == "proposed"  # type: ignore[union-attr]


def test_a_button_from_elsewhere_gets_a_clear_note(rig: HttpRig, fake_slack: FakeSlack) -> None:
    status, _, _ = rig.interaction(load_fixture("block_actions_button.payload.json"))  # value "task_001"
    assert status == 200
    [note] = fake_slack.wait_for("chat.postEphemeral")
    assert "doesn't belong to a task" in note.params["text"]


def test_a_crash_in_the_service_becomes_a_message_and_a_log_line(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.close()  # the service's database goes away under it
    with caplog.at_level(logging.ERROR):
        assert rig.event(load_fixture("events_app_mention.json"))[0] == 200
        fake_slack.wait_for("chat.update")
        fake_slack.quiet()
    final = fake_slack.calls_of("chat.update")[-1].params
    assert "went wrong" in final["text"] and final["ts"] == "1800000000.000001"
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


# ---- the HTTP front end against malformed requests ----------------------------------------------------

SLASH = {"command": "/plan", "text": "launch the pricing page", "user_id": "U0000000001",
         "channel_id": CHANNEL, "team_id": "T0000000001"}


def raw_exchange(port: int, data: bytes, *, half_close: bool = False, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def raw_post(body: bytes, *, length: str | None = None, extra: str = "") -> bytes:
    head = "POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return (head + extra + "\r\n").encode() + body


@pytest.fixture
def no_tracebacks(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The server threads must report through logging, never print a traceback on stderr."""
    yield
    assert "Traceback" not in capsys.readouterr().err


BAD_BODIES = [
    ("{not json", "application/json", "not valid JSON"),
    ("[1, 2]", "application/json", "JSON list, not an object"),
    ('"text"', "application/json", "JSON str, not an object"),
    ("", "application/json", "body is empty"),
    ("payload=%7Bnot+json", "application/x-www-form-urlencoded", "payload field is not valid JSON"),
    ("payload=%5B1%5D", "application/x-www-form-urlencoded", "payload field is a JSON list"),
    ("&&&", "application/x-www-form-urlencoded", "neither JSON nor a form"),
]


@pytest.mark.parametrize("body, content_type, logged", BAD_BODIES, ids=[b[0] or "empty" for b in BAD_BODIES])
def test_a_malformed_body_is_checked_for_a_signature_first_then_refused_with_400(
    rig: HttpRig, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, no_tracebacks: None,
    body: str, content_type: str, logged: str,
) -> None:
    assert rig.post(body, content_type=content_type, headers={})[0] == 401  # unsigned: not even parsed
    assert not any(logged in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.WARNING, logger="bot.slack_http"):
        status, text, _ = rig.post(body, content_type=content_type, headers=sign(body))
    assert status == 400 and logged in text
    assert any(r.levelno == logging.WARNING and logged in r.getMessage() for r in caplog.records)
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"]


def test_a_body_that_is_not_utf8_gets_400(rig: HttpRig) -> None:
    body = b'{"type": "\xff\xfe"}'
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    headers = f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: v0={digest}\r\n"
    answer = raw_exchange(rig.server.port, raw_post(body, length=str(len(body)), extra=headers))
    assert answer.startswith(b"HTTP/1.0 400") and b"not UTF-8" in answer


@pytest.mark.parametrize(
    "length, extra, status",
    [
        ("abc", "", b"400"),
        ("-1", "", b"400"),
        ("1e3", "", b"400"),
        ("\u0663", "", b"400"),  # an Arabic-Indic digit: str.isdigit() says yes, int() would take it
        ("10\r\nContent-Length: 20", "", b"400"),  # two different lengths: request smuggling
        (None, "", b"411"),
        (None, "Transfer-Encoding: chunked\r\n", b"411"),
    ],
)
def test_a_bad_content_length_gets_a_clear_answer_at_once(
    rig: HttpRig, no_tracebacks: None, length: str | None, extra: str, status: bytes
) -> None:
    t0 = time.perf_counter()
    answer = raw_exchange(rig.server.port, raw_post(b"{}", length=length, extra=extra))
    assert answer.startswith(b"HTTP/1.0 " + status) and time.perf_counter() - t0 < 2


def test_a_body_shorter_than_declared_gets_400_when_the_client_stops_sending(rig: HttpRig) -> None:
    answer = raw_exchange(rig.server.port, raw_post(b"{}", length="100"), half_close=True)
    assert answer.startswith(b"HTTP/1.0 400") and b"ended after 2 of 100 bytes" in answer


@pytest.fixture
def quick_server(
    store: Store, fake_slack: FakeSlack, env_setup: Path, request: pytest.FixtureRequest
) -> Iterator[SlackHTTPServer]:
    """The app served with a 0.5 s socket timeout, to see slow clients cut off without waiting 10 s."""
    settings = slack_settings(env_setup, fake_slack.api_url)
    worker = ThreadPoolExecutor(max_workers=1)
    app = build_slack_app(make_assistant(settings, store, request), settings, worker=worker)
    server = make_http_server(app, host="127.0.0.1", port=0, request_timeout_s=0.5)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    worker.shutdown(wait=True)


@pytest.mark.parametrize("data", [raw_post(b"{", length="100"), b"POST /slack/events HTTP/1.1\r\nHost: x\r\n"],
                         ids=["body-stalls", "headers-stall"])
def test_a_stalled_client_is_cut_off_by_the_socket_timeout(
    quick_server: SlackHTTPServer, caplog: pytest.LogCaptureFixture, no_tracebacks: None, data: bytes
) -> None:
    t0 = time.perf_counter()
    assert raw_exchange(quick_server.port, data, timeout=10) == b""  # closed without an answer
    assert 0.4 < time.perf_counter() - t0 < 3
    assert REQUEST_TIMEOUT_S == 10  # the default for real servers
    body = json.dumps(load_fixture("url_verification.json"))
    answer = raw_exchange(quick_server.port, raw_post(body.encode(), length=str(len(body)),
                                                      extra="".join(f"{k}: {v}\r\n" for k, v in sign(body).items())))
    assert answer.startswith(b"HTTP/1.0 200")  # the server still answers


def test_a_10_mb_body_gets_a_clean_413(rig: HttpRig, fake_slack: FakeSlack, no_tracebacks: None) -> None:
    body = "x" * 10_000_000
    status, text, seconds = rig.post(body, content_type="application/json", headers=sign(body))
    assert status == 413 and "the limit is 1,000,000" in text and seconds < 5
    status, _, _ = rig.post(body, content_type="application/json", headers={})
    assert status == 413
    assert fake_slack.methods() == ["auth.test"]


def test_a_post_elsewhere_gets_a_clean_404(rig: HttpRig) -> None:
    body = b"x" * 200_000
    answer = raw_exchange(rig.server.port, b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + body)
    assert answer.startswith(b"HTTP/1.0 404")


@pytest.mark.parametrize(
    "timestamp, signature",
    [("abc", "v0=00"), ("1e9", None), ("+now", None), ("now", "v0=\u00e9" * 3),
     ("now", "v1=" + "0" * 64), ("now", "")],
)
def test_garbled_signature_headers_get_401_and_nothing_is_processed(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, no_tracebacks: None, timestamp: str, signature: str | None
) -> None:
    body = json.dumps(load_fixture("events_app_mention.json"))
    stamp = timestamp.replace("now", str(int(time.time())))
    good = sign(body)["X-Slack-Signature"]
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": good if signature is None else signature}
    assert rig.post(body, content_type="application/json", headers=headers)[0] == 401
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []


def mention(text: Any, *, event_id: str = "EvBad0000001", **event: Any) -> dict[str, Any]:
    payload = load_fixture("events_app_mention.json")
    payload["event_id"] = event_id
    payload["event"] |= {"text": text, **event}
    return payload


def test_a_slash_command_without_a_user_is_acked_logged_and_dropped(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.slack"):
        status, _, seconds = rig.form({k: v for k, v in SLASH.items() if k != "user_id"})
        assert status == 200 and seconds < 1.5
        fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []
    assert any("ignoring a /plan command" in r.getMessage() and CHANNEL in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("payload", [
    mention(42, event_id="EvNum"), mention(["plan", "x"], event_id="EvList"),
    {**SLASH, "text": ["launch", "it"]},  # a JSON-bodied command with a list for text
], ids=["text-number", "text-list", "command-text-list"])
def test_unreadable_text_from_a_person_gets_a_private_note(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, caplog: pytest.LogCaptureFixture, payload: dict[str, Any]
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.slack"):
        assert rig.event(payload)[0] == 200
        [note] = fake_slack.wait_for("chat.postEphemeral")
        fake_slack.quiet()
    assert note.params["user"] == "U0000000001" and note.params["channel"] == CHANNEL
    assert "couldn't read that request" in note.params["text"]
    assert "chat.postMessage" not in fake_slack.methods() and store.plans() == []
    assert any("ignoring" in r.getMessage() and "text" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("change", [
    {"event": None}, {"event": "x"}, {"event": [1]}, {"event": {"text": "no type"}},
    {"event": {"type": "app_mention", "user": {"id": 5}, "channel": CHANNEL}},
    {"authorizations": None}, {"authorizations": [5]}, {"team": 7},
], ids=lambda c: json.dumps(c)[:40])
def test_malformed_signed_events_are_acked_with_200_and_do_nothing(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, caplog: pytest.LogCaptureFixture, no_tracebacks: None,
    change: dict[str, Any],
) -> None:
    payload = load_fixture("events_app_mention.json") | change
    with caplog.at_level(logging.WARNING, logger="bot.slack_http"):
        assert rig.event(payload)[0] == 200  # anything else and Slack retries the same garbage
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []
    assert any("malformed payload" in r.getMessage() for r in caplog.records)


def test_unaddressed_channel_chatter_with_unreadable_text_gets_no_answer(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    payload = load_fixture("events_message_im.json")
    payload["event"] |= {"channel": CHANNEL, "channel_type": "channel", "text": {"rich": "text"}}
    assert rig.event(payload)[0] == 200
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"] and store.plans() == []


@pytest.mark.parametrize("actions", [[None], [{"action_id": 5, "value": "1"}], [{"value": "1"}], [], "x"])
def test_malformed_clicks_are_acked_and_ignored(
    rig: HttpRig, fake_slack: FakeSlack, no_tracebacks: None, actions: Any
) -> None:
    payload = load_fixture("block_actions_button.payload.json")
    payload["actions"] = actions
    assert rig.interaction(payload)[0] == 200
    fake_slack.quiet()
    assert fake_slack.methods() == ["auth.test"]


# ---- where error replies go -----------------------------------------------------------------------------


def test_an_empty_request_at_the_top_of_a_channel_is_answered_privately(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    assert rig.event(mention(f"<@{BOT_USER_ID}> plan:"))[0] == 200
    [note] = fake_slack.wait_for("chat.postEphemeral")
    fake_slack.quiet()
    assert note.params["user"] == "U0000000001" and note.params["channel"] == CHANNEL
    assert "What should I plan?" in note.params["text"] and "thread_ts" not in note.params
    assert "chat.postMessage" not in fake_slack.methods() and store.plans() == []


@pytest.mark.parametrize("where", ["thread", "dm"])
def test_an_empty_request_in_a_thread_or_dm_is_answered_there(
    rig: HttpRig, fake_slack: FakeSlack, where: str
) -> None:
    if where == "thread":
        payload = mention(f"<@{BOT_USER_ID}> plan:", thread_ts="1699999999.000100")
    else:
        payload = load_fixture("events_message_im.json")
        payload["event"]["text"] = "plan:"
    assert rig.event(payload)[0] == 200
    [answer] = fake_slack.wait_for("chat.postMessage")
    fake_slack.quiet()
    assert "What should I plan?" in answer.params["text"] and "chat.postEphemeral" not in fake_slack.methods()
    expected = "1699999999.000100" if where == "thread" else payload["event"]["ts"]
    assert answer.params["thread_ts"] == expected


# ---- the checks themselves -----------------------------------------------------------------------------


def test_every_fixture_payload_passes_the_shape_check() -> None:
    from tests.scenarios import FIXTURES

    names = sorted(p.name for p in FIXTURES.glob("*.json")) if FIXTURES.exists() else []
    if not names:
        pytest.skip("the fixtures folder is missing")
    for name in names:
        data = load_fixture(name)
        payload = data.get("payload", data) if name.startswith("socket_mode") else data
        if isinstance(payload, dict) and "envelope_id" not in payload:
            assert payload_problem(payload) is None, name


@pytest.mark.parametrize("body, problem", [
    ({"type": 5}, "payload.type is a int"),
    ({"type": "event_callback", "event": None}, "payload.event is a NoneType"),
    ({"type": "event_callback", "event": {}}, "payload.event has no type"),
    ({"type": "event_callback", "event": {"type": "message", "channel": 5}}, "payload.event.channel is neither"),
    ({"type": "event_callback", "event": {"type": "message", "message": {"user": [1]}}}, "event.message.user"),
    ({"type": "event_callback", "event": {"type": "assistant_thread_started", "assistant_thread": {}}},
     "lacks a channel_id"),
    ({"type": "block_actions", "actions": []}, "actions is empty"),
    ({"type": "block_actions", "actions": [{"action_id": "a", "value": 1}]}, "actions[0].value is a int"),
    ({"type": "view_submission", "view": {"callback_id": "x"}}, "view has no type"),
    ({"response_urls": None}, "response_urls is not a list"),
], ids=lambda v: str(v)[:30])
def test_the_shape_check_names_the_field(body: dict[str, Any], problem: str) -> None:
    found = payload_problem(body)
    assert found is not None and problem in found


@pytest.mark.parametrize("timestamp, signature", [("abc", "v0=" + "0" * 64), ("12", "v0=zz"), ("", ""),
                                                   ("1" * 40, "v0=" + "0" * 64)])
def test_signature_check_is_false_for_garbled_headers_never_an_exception(timestamp: str, signature: str) -> None:
    assert signature_ok(SECRET, b"{}", timestamp, signature) is False


def test_signature_check_accepts_slacks_signature_and_its_window() -> None:
    headers = sign("{}", timestamp=1_700_000_000)
    ts, sig = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    assert signature_ok(SECRET, b"{}", ts, sig, now=1_700_000_300)
    assert not signature_ok(SECRET, b"{}", ts, sig, now=1_700_000_301)
    assert not signature_ok(SECRET, b"{ }", ts, sig, now=1_700_000_000)
