"""Platform-neutral chat types: what an adapter hands the service and what the service hands back.

Adapters (bot/slack.py, bot/console.py) translate platform payloads to ChatRequest / ActionRequest and
render each Reply; the service (bot/service.py) never sees a platform object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from planner.types import Member, Plan, Task


@dataclass(frozen=True)
class FileRef:
    """A file attached to a message (id and name; the adapter knows how to fetch it)."""

    id: str
    name: str
    url: str = ""
    size: int = 0
    mimetype: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """One person's message. thread_ts is the thread to answer in (None: the message starts one)."""

    user: str
    text: str
    channel: str = "console"
    ts: str | None = None
    thread_ts: str | None = None
    is_dm: bool = False
    files: tuple[FileRef, ...] = ()
    event_id: str | None = None
    today: str | None = None  # YYYY-MM-DD override (CLI --today, tests)

    @property
    def reply_thread(self) -> str | None:
        return self.thread_ts or self.ts


ActionName = Literal["accept", "reassign", "done"]
ACTIONS: tuple[str, ...] = ("accept", "reassign", "done")


@dataclass(frozen=True)
class ActionRequest:
    """A button click on a task: accept, reassign or done."""

    user: str
    action: ActionName
    task_id: int
    channel: str = "console"
    message_ts: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True)
class TextReply:
    """Plain text (Slack mrkdwn-safe: the renderer escapes it)."""

    text: str
    kind: Literal["info", "error", "status"] = "info"


@dataclass(frozen=True)
class PlanReply:
    """A plan with its tasks and buttons. update=True: replace the message the action came from."""

    plan: Plan
    update: bool = False
    note: str = ""


@dataclass(frozen=True)
class TaskListReply:
    """A list of tasks ("my tasks", a board); empty_text is shown when there are none."""

    title: str
    tasks: tuple[Task, ...]
    empty_text: str = "No tasks."


@dataclass(frozen=True)
class TeamReply:
    """The team: each member with open assigned hours against capacity."""

    members: tuple[Member, ...]
    open_hours: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectMessage:
    """Send body to a user privately (Slack: conversations.open + chat.postMessage)."""

    user: str
    body: "Reply"


Reply = Union[TextReply, PlanReply, TaskListReply, TeamReply, DirectMessage]


@dataclass(frozen=True)
class Intent:
    """What the router made of a request. slow: show a "working on it" status first."""

    name: Literal["plan", "my_tasks", "team", "board", "help", "empty", "unknown"]
    argument: str = ""
    slow: bool = False
    status_text: str = ""
