"""Platform-neutral planning types: members, subtasks, plans and assignments.

Frozen dataclasses shared by the planner, the store and the chat adapters. Nothing here knows about
Slack, SQLite or a model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Literal

Kind = Literal["human", "text", "image", "data"]
KINDS: tuple[str, ...] = ("human", "text", "image", "data")
TaskStatus = Literal["proposed", "accepted", "done"]


@dataclass(frozen=True)
class Member:
    """A team member: skills map a skill name to a level from 1 to 5."""

    name: str
    slack_id: str
    skills: dict[str, int] = field(default_factory=dict)
    capacity_hours: float = 40.0
    email: str = ""
    timezone: str = "UTC"

    def skills_text(self) -> str:
        return ", ".join(f"{s} {lvl}/5" for s, lvl in sorted(self.skills.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True)
class Subtask:
    """One step of a plan. ids are short strings local to the plan ("1", "2", ...)."""

    id: str
    title: str
    description: str = ""
    skills: tuple[str, ...] = ()
    estimate_hours: float = 1.0
    depends_on: tuple[str, ...] = ()
    kind: Kind = "human"


@dataclass(frozen=True)
class DraftPlan:
    """What the planner proposes before anyone is assigned.

    source names the path that made it: "llm", "llm+repair" or "playbook:<name>".
    """

    request: str
    title: str
    subtasks: tuple[Subtask, ...]
    source: str
    deadline: dt.date | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assignment:
    """Who does a subtask and why; member is None when nobody fits, and why says so."""

    subtask_id: str
    member: Member | None
    why: str
    fit: float = 0.0


@dataclass(frozen=True)
class Slot:
    """When a subtask is scheduled: earliest start and its due date along dependencies."""

    subtask_id: str
    start: dt.date
    due: dt.date


@dataclass(frozen=True)
class Task:
    """A stored subtask with its assignment, dates and status."""

    id: int
    plan_id: int
    key: str
    title: str
    description: str
    skills: tuple[str, ...]
    estimate_hours: float
    depends_on: tuple[str, ...]
    kind: Kind
    assignee: Member | None
    why: str
    start: dt.date | None
    due: dt.date | None
    status: TaskStatus = "proposed"

    def with_(self, **changes: object) -> "Task":
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Plan:
    """A stored plan: the request, who asked, the path that made it, and its tasks."""

    id: int
    request: str
    title: str
    requester: str
    source: str
    created_at: dt.datetime
    deadline: dt.date | None
    tasks: tuple[Task, ...]
    warnings: tuple[str, ...] = ()
    channel: str = ""
    thread_ts: str = ""

    def to_json(self) -> dict[str, object]:
        """The `taskwright plan --json` shape."""
        return {
            "id": self.id,
            "request": self.request,
            "title": self.title,
            "source": self.source,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "subtasks": [
                {
                    "id": t.key,
                    "task_id": t.id,
                    "title": t.title,
                    "description": t.description,
                    "skills": list(t.skills),
                    "estimate_hours": t.estimate_hours,
                    "depends_on": list(t.depends_on),
                    "kind": t.kind,
                    "assignee": {"name": t.assignee.name, "slack_id": t.assignee.slack_id}
                    if t.assignee
                    else None,
                    "why": t.why,
                    "start": t.start.isoformat() if t.start else None,
                    "due": t.due.isoformat() if t.due else None,
                    "status": t.status,
                }
                for t in self.tasks
            ],
        }
