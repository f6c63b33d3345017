"""The Slack app in HTTP mode on a free port, receiving really signed requests, its Web API a fake on loopback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.store import Store

from . import (
    BOT_USER_ID,
    TEAM,
    FakeSlack,
    HttpRig,
    load_fixture,
    make_assistant,
    posted_ts,
    serve_http,
    slack_settings,
)

CHANNEL = "C0000000001"
MENTION_TS = "1700000000.000100"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "t.db")
    store.save_members(TEAM)
    yield store
    store.close()


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
