"""Block Kit rendering: limits, pagination, escaping and buttons, checked on the JSON Slack would get."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from bot.slack_render import (
    MAX_BLOCKS,
    TASKS_PER_PAGE,
    TEXT_FILE_CHARS,
    SlackFile,
    SlackMessage,
    clean_text,
    escape,
    escape_text,
    page_of_task,
    plan_pages,
    ref_id,
    render,
    split_text,
    to_action_request,
    to_chat_request,
)
from bot.types import DirectMessage, PlanReply, TaskListReply, TeamReply, TextReply
from planner.types import Member, Plan, Task

ANN = Member("Ann", "U0000000001", {"python": 4, "writing": 3}, capacity_hours=30)
BOB = Member("Bob <script>", "U0000000002", {"design": 4}, capacity_hours=20)


def make_task(i: int, *, status: str = "proposed", assignee: Member | None = ANN, **kw: object) -> Task:
    fields: dict[str, object] = {
        "id": 100 + i,
        "plan_id": 7,
        "key": str(i),
        "title": f"Step {i}",
        "description": "",
        "skills": ("writing",),
        "estimate_hours": 4.0,
        "depends_on": (str(i - 1),) if i > 1 else (),
        "kind": "human",
        "assignee": assignee,
        "why": "skills writing 3/5 ≈ 'copy' 0.81; 4 of 30 h used",
        "start": dt.date(2024, 12, 2),
        "due": dt.date(2024, 12, 6),
        "status": status,
    }
    fields.update(kw)
    return Task(**fields)  # type: ignore[arg-type]


def make_plan(tasks: list[Task], **kw: object) -> Plan:
    fields: dict[str, object] = {
        "id": 7,
        "request": "launch the pricing page by Dec 20",
        "title": "Launch the pricing page",
        "requester": "U0000000001",
        "source": "playbook:product-launch",
        "created_at": dt.datetime(2024, 12, 1, 9, 0),
        "deadline": dt.date(2024, 12, 20),
        "tasks": tuple(tasks),
        "warnings": (),
    }
    fields.update(kw)
    return Plan(**fields)  # type: ignore[arg-type]


def messages(reply: object) -> list[SlackMessage]:
    out = render(reply)  # type: ignore[arg-type]
    assert all(isinstance(m, SlackMessage) for m in out)
    return out  # type: ignore[return-value]


def buttons(msg: SlackMessage, task_id: int) -> list[str]:
    for b in msg.blocks:
        if b.get("block_id") == f"task-{task_id}-actions":
            assert all(e["value"] == str(task_id) for e in b["elements"])
            return [e["action_id"] for e in b["elements"]]
    return []


def test_plan_has_header_context_tasks_and_buttons_by_status() -> None:
    tasks = [
        make_task(1),
        make_task(2, status="accepted"),
        make_task(3, status="done"),
        make_task(4, assignee=None, why="nobody has free capacity for design"),
    ]
    [msg] = messages(PlanReply(make_plan(tasks)))
    types = [b["type"] for b in msg.blocks]
    assert types[:2] == ["header", "context"]
    assert msg.blocks[0]["text"]["text"] == "Launch the pricing page"
    context = msg.blocks[1]["elements"][0]["text"]
    assert "<@U0000000001>" in context and "playbook:product-launch" in context and "2024-12-20" in context
    first = next(b for b in msg.blocks if b.get("block_id") == "task-101")["text"]["text"]
    assert (
        "*1. Step 1*" in first and "<@U0000000001>" in first and "4 h" in first and "due 2024-12-06" in first
    )
    second = next(b for b in msg.blocks if b.get("block_id") == "task-102")["text"]["text"]
    assert "after #1" in second and "accepted" in second
    assert buttons(msg, 101) == ["task_accept", "task_reassign", "task_done"]
    assert buttons(msg, 102) == ["task_reassign", "task_done"]
    assert buttons(msg, 103) == []
    assert buttons(msg, 104) == ["task_reassign", "task_done"]  # nobody to accept it
    assert "_unassigned_" in next(b for b in msg.blocks if b.get("block_id") == "task-104")["text"]["text"]
    assert "Plan #7" in msg.text and "4 subtasks" in msg.text


def test_model_text_cannot_mention_anyone_or_break_out() -> None:
    evil = "<!channel> ping & <@U0000000009> <https://evil.example|click>"
    task = make_task(1, title=evil, description=evil, assignee=BOB)
    plan = make_plan([task], title=evil, warnings=(evil,))
    [msg] = messages(PlanReply(plan, note="reassigned by <@U0000000001>: <!channel>"))
    dumped = json.dumps(msg.blocks) + msg.text
    assert "<!channel>" not in dumped and "<@U0000000009>" not in dumped and "<https://evil" not in dumped
    assert "&lt;!channel&gt; ping &amp; &lt;@U0000000009&gt;" in dumped
    assert "<@U0000000002>" in dumped  # our own mention of the assignee
    assert "<@U0000000001>: " in dumped  # the service's note may mention a user
    assert "Bob &lt;script&gt;" not in dumped  # a member with a real id is shown as a mention


def test_escape_text_keeps_user_mentions_only() -> None:
    assert escape_text("hi <@U0000000001> <!here> <#C0000000001> a<b") == (
        "hi <@U0000000001> &lt;!here&gt; &lt;#C0000000001&gt; a&lt;b"
    )
    assert escape("a & b") == "a &amp; b"


def test_members_without_slack_ids_show_escaped_names() -> None:
    console = Member("Dee <b>", "dee@console", {})
    [msg] = messages(PlanReply(make_plan([make_task(1, assignee=console)], requester="console")))
    text = json.dumps(msg.blocks)
    assert "Dee &lt;b&gt;" in text and "<@dee" not in text


def test_long_plans_paginate_with_stable_pages() -> None:
    tasks = [make_task(i) for i in range(1, 46)]
    plan = make_plan(tasks)
    pages = messages(PlanReply(plan))
    assert len(pages) == plan_pages(plan) == 3
    assert all(len(m.blocks) <= MAX_BLOCKS for m in pages)
    assert [m.blocks[0]["text"]["text"] for m in pages] == [
        f"Launch the pricing page ({n}/3)" for n in (1, 2, 3)
    ]
    assert page_of_task(plan, 100 + TASKS_PER_PAGE + 1) == 1
    assert f"task-{100 + TASKS_PER_PAGE + 1}" in json.dumps(pages[1].blocks)
    # marking tasks done drops buttons but keeps every task on its page
    done = make_plan([t.with_(status="done") for t in tasks])
    assert [len(m.blocks) for m in messages(PlanReply(done))] == [len(m.blocks) for m in pages]


def test_block_limits_hold_for_huge_fields() -> None:
    task = make_task(1, title="T" * 5000, description="d " * 6000, why="w" * 9000)
    plan = make_plan([task], title="H" * 400, request="r" * 20000, warnings=("x" * 5000,))
    [msg] = messages(PlanReply(plan, note="n" * 5000))
    assert len(msg.blocks[0]["text"]["text"]) <= 150
    for b in msg.blocks:
        text = (b.get("text") or {}).get("text", "")
        assert len(text) <= 3000
        for el in b.get("elements", []):
            assert len(el.get("text", "") if isinstance(el.get("text"), str) else "") <= 3000
    assert len(msg.text) <= 3000


def test_long_text_splits_into_sections_and_messages_then_a_file() -> None:
    para = ("word " * 200 + "\n") * 10  # ~10,000 chars
    out = messages(TextReply(para))
    assert len(out) >= 1
    sections = [b for m in out for b in m.blocks]
    assert len(sections) >= 4 and all(len(b["text"]["text"]) <= 3000 for b in sections)
    assert "".join(b["text"]["text"] for b in sections).replace("\n", "").replace(" ", "") == para.replace(
        "\n", ""
    ).replace(" ", "")
    [upload] = render(TextReply("x" * (TEXT_FILE_CHARS + 1)))
    assert isinstance(upload, SlackFile) and len(upload.content) == TEXT_FILE_CHARS + 1


def test_split_text_never_cuts_an_entity() -> None:
    text = escape("<" * 2000)  # "&lt;" x 2000, no spaces
    chunks = split_text(text, 2900)
    assert "".join(chunks) == text
    assert all(c.startswith("&lt;") and c.endswith("&lt;") and len(c) <= 2900 for c in chunks)


def test_error_text_is_marked() -> None:
    [msg] = messages(TextReply("No team yet <run> `taskwright team import`", kind="error"))
    assert msg.blocks[0]["text"]["text"].startswith(":warning: No team yet &lt;run&gt;")


def test_team_and_task_lists() -> None:
    [team] = messages(TeamReply((ANN, BOB), {"U0000000001": 12.0}))
    text = json.dumps(team.blocks)
    assert "12 / 30 h used" in text and "0 / 20 h used" in text and "<@U0000000002>" in text
    [empty] = messages(TaskListReply("Your open tasks", (), "You have no open tasks."))
    assert "You have no open tasks." in json.dumps(empty.blocks)
    many = tuple(make_task(i) for i in range(1, 90))
    pages = messages(TaskListReply("Team board", many))
    assert len(pages) == 3 and all(len(p.blocks) <= MAX_BLOCKS for p in pages)
    assert "actions" not in json.dumps([p.blocks for p in pages])


def test_direct_message_renders_its_body() -> None:
    body = TaskListReply("New from <@U0000000001>'s plan “<!here>”", (make_task(1),))
    [msg] = messages(DirectMessage("U0000000002", body))
    head = msg.blocks[0]["text"]["text"]
    assert "<@U0000000001>" in head and "<!here>" not in head


# ---- incoming text ---------------------------------------------------------------------------------


def test_clean_text_strips_the_bot_and_unescapes() -> None:
    raw = "<@U000000BOT1>: plan: fix &lt;b&gt; &amp; ship <https://x.example/a|the doc> in <#C0000000001|launch> <!here>"
    assert clean_text(raw, bot_user_id="U000000BOT1") == "plan: fix <b> & ship the doc in #launch @here"
    assert (
        clean_text("ask <@U0000000002> about <mailto:a@b.example>")
        == "ask <@U0000000002> about mailto:a@b.example"
    )
    assert clean_text("&amp;lt;") == "&lt;"  # unescaped once, not twice


def test_which_events_reach_the_service() -> None:
    from bot.slack_render import to_chat_request

    def req(**event: object) -> object:
        base = {"type": "message", "user": "U0000000001", "text": "hi", "channel": "C1", "ts": "1.1"}
        return to_chat_request(base | event, event_id="Ev1", bot_user_id="U000000BOT1")

    assert req(channel_type="im") is not None  # any DM
    assert req(channel_type="channel") is None  # channel chatter
    assert req(channel_type="channel", text="PLAN: x") is not None  # explicit syntax
    assert req(channel_type="channel", text="<@U000000BOT1> plan: x") is None  # app_mention carries it
    assert req(channel_type="im", bot_id="B1") is None
    assert req(channel_type="im", user="U000000BOT1") is None
    assert req(channel_type="im", subtype="message_changed") is None
    assert req(channel_type="im", subtype="channel_join") is None
    dm = req(channel_type="im", subtype="file_share", files=[{"id": "F1", "name": "a.csv", "size": 3}])
    assert dm is not None and dm.files[0].name == "a.csv" and dm.is_dm  # type: ignore[attr-defined]
    mention = to_chat_request(
        {
            "type": "app_mention",
            "user": "U0000000001",
            "text": "<@U000000BOT1> team",
            "channel": "C1",
            "ts": "2.2",
            "thread_ts": "1.1",
        },
        event_id="Ev2",
        bot_user_id="U000000BOT1",
    )
    assert mention is not None and mention.text == "team" and mention.reply_thread == "1.1"


def _event(**fields: object) -> dict[str, object]:
    return {"type": "app_mention", "user": "U0000000001", "text": "<@U000000BOT1> plan: x",
            "channel": "C0000000001", "ts": "1700000000.000100"} | fields


@pytest.mark.parametrize("fields, named", [
    ({"text": 42}, "text"), ({"text": ["plan", "x"]}, "text"), ({"user": ["U1"]}, "user"),
    ({"channel": None}, "channel"), ({"ts": 1.5}, "ts"), ({"files": "F1"}, "files"), ({"files": [None]}, "files"),
])
def test_events_with_fields_slack_never_sends_are_refused_by_name(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=f"event's .*{named}"):
        to_chat_request(_event(**fields), event_id="Ev1", bot_user_id="U000000BOT1")


def test_odd_file_fields_do_not_break_a_message() -> None:
    files = [{"id": "F1", "name": None, "size": "big", "url_private": 5}, {"id": "F2", "size": -3}]
    req = to_chat_request(_event(files=files), event_id="Ev1", bot_user_id="U000000BOT1")
    assert req is not None and req.text == "plan: x"
    assert [(f.id, f.name, f.size, f.url) for f in req.files] == [("F1", "F1", 0, ""), ("F2", "F2", 0, "")]


def test_clicks_read_user_and_channel_in_either_shape() -> None:
    action = {"action_id": "task_done", "value": "12"}
    box = {"channel_id": "C0000000001", "message_ts": "1.2", "thread_ts": 5}
    act = to_action_request({"user": "U0000000001", "container": box}, action)
    assert (act.user, act.channel, act.message_ts, act.thread_ts, act.task_id) == (
        "U0000000001", "C0000000001", "1.2", None, 12)
    act = to_action_request({"user": {"id": "U0000000002"}, "channel": {"id": "C0000000002"}}, action)
    assert (act.user, act.channel) == ("U0000000002", "C0000000002")
    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "12"), ({"user": {"id": 5}}, "12"), ({"user": "U1", "container": "x"}, "12"), ({"user": "U1"}, "²")
    ]
    for body, value in bad:
        with pytest.raises(ValueError):
            to_action_request(body, action | {"value": value})
    assert [ref_id(r) for r in ("U1", {"id": "U2"}, {"id": 3}, None, 7)] == ["U1", "U2", "", "", ""]
