"""Platform-neutral chat types: what an adapter hands the service and what the service hands back.

Adapters (bot/slack.py, bot/console.py) translate platform payloads to ChatRequest / ActionRequest and
render each Reply; the service (bot/service.py) never sees a platform object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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


ActionName = Literal["accept", "reassign", "done", "generate", "retry"]
ACTIONS: tuple[str, ...] = ("accept", "reassign", "done", "generate", "retry")


@dataclass(frozen=True)
class ActionRequest:
    """A button click: accept, reassign, done or generate (a draft) on a task; retry on a kept generation.

    task_id is the id the button names: a task, or for "retry" the kept generation request.
    """

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
    generated: bool = False  # model output: rendered fully escaped, so it can never mention anyone


@dataclass(frozen=True)
class FileReply:
    """A file for the thread: bytes (data) or a file on disk (path, under settings.files_dir)."""

    filename: str
    title: str = ""
    data: bytes | None = None
    path: Path | None = None
    alt_text: str = ""
    comment: str = ""

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError(f"{self.filename}: a FileReply needs data or a path")
        return self.path.read_bytes()


@dataclass(frozen=True)
class ImageReply(FileReply):
    """A PNG (an image grid, a chart): Slack shows it inline with alt_text."""


@dataclass(frozen=True)
class Button:
    """A button on a ButtonsReply: action is an ActionName, value the id it names."""

    label: str
    action: str
    value: int
    primary: bool = False


@dataclass(frozen=True)
class ButtonsReply:
    """A short service message with buttons (e.g. "Retry" for a kept generation request)."""

    text: str
    buttons: tuple[Button, ...]
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


Reply = Union[TextReply, PlanReply, TaskListReply, TeamReply, DirectMessage, FileReply, ButtonsReply]


@dataclass(frozen=True)
class Intent:
    """What the router made of a request. slow: show a "working on it" status first."""

    name: Literal["plan", "my_tasks", "team", "board", "help", "empty", "unknown", "draw", "write",
                  "summarize", "question", "report"]
    argument: str = ""
    slow: bool = False
    status_text: str = ""
    fallback: bool = False  # nothing explicit matched: free text taken as a work request
