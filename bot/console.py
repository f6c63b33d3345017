"""The console adapter: the same assistant over stdin/stdout, no Slack account needed.

Replies render as readable text with the same content Slack shows; buttons become commands
(`accept 12`, `reassign 12`, `done 12`, `generate 12`, `retry 3`), and `as U0DEMOANA` switches who you are.
Images and charts are written under settings.files_dir and their paths printed; `summarize FILE` reads a
local file, and later lines are follow-up questions about it (the console is one thread).
"""

from __future__ import annotations

import logging
import re
from typing import Callable, TextIO

from bot.service import Assistant
from bot.types import (
    ACTIONS,
    ActionRequest,
    ButtonsReply,
    ChatRequest,
    DirectMessage,
    FileReply,
    PlanReply,
    Reply,
    TaskListReply,
    TeamReply,
    TextReply,
)
from planner.types import Plan, Task

log = logging.getLogger(__name__)

_ACTION = re.compile(r"^\s*(accept|reassign|done|generate|retry)\s+#?(\d+)\s*$", re.IGNORECASE)
THREAD = "console"  # the console is one conversation thread (follow-up questions find its table)
_AS = re.compile(r"^\s*as\s+([UW](?=[A-Z]*[0-9])[A-Z0-9]{2,})\s*$", re.IGNORECASE)
# A command word with nothing or one bad token after it ("done abc", "reassign -1", "as bob") is a typo,
# not a work request: answering it with a usage line beats planning it.
_COMMAND_TYPO = re.compile(r"^\s*(accept|reassign|done|generate|retry|as)(?:\s+(\S+))?\s*$", re.IGNORECASE)
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")


def render_text(reply: Reply, *, names: dict[str, str] | None = None) -> str:
    """Plain text for one reply; names maps Slack ids to display names for mentions."""
    names = names or {}
    if isinstance(reply, TextReply):
        prefix = "error: " if reply.kind == "error" else ""
        return _mentions(prefix + reply.text, names)
    if isinstance(reply, PlanReply):
        return _mentions(_plan_text(reply.plan), names)
    if isinstance(reply, TaskListReply):
        lines = [reply.title] + ([f"  {_task_line(t)}" for t in reply.tasks] or [f"  {reply.empty_text}"])
        return _mentions("\n".join(lines), names)
    if isinstance(reply, TeamReply):
        if not reply.members:
            return "The team is empty. Import one: taskwright team import FILE (or `taskwright team demo`)."
        lines = [f"Team ({len(reply.members)})"]
        for m in reply.members:
            used = reply.open_hours.get(m.slack_id, 0.0)
            lines.append(f"  {m.name} ({m.slack_id}) {used:g}/{m.capacity_hours:g} h — {m.skills_text()}")
        return "\n".join(lines)
    if isinstance(reply, FileReply):
        where = str(reply.path) if reply.path is not None else reply.filename
        kind = "image" if reply.filename.lower().endswith(".png") else "file"
        return f"[{kind}] {reply.title or reply.filename}: {where}" + (f"\n{reply.comment}" if reply.comment else "")
    if isinstance(reply, ButtonsReply):
        prefix = "error: " if reply.kind == "error" else ""
        keys = ", ".join(f"`{b.action} {b.value}`" for b in reply.buttons)
        return _mentions(f"{prefix}{reply.text}\n(buttons: {keys})", names)
    if isinstance(reply, DirectMessage):
        who = names.get(reply.user, reply.user)
        body = render_text(reply.body, names=names).replace("\n", "\n  ")
        return f"→ DM to {who}:\n  {body}"
    return str(reply)


def _plan_text(plan: Plan) -> str:
    head = f"Plan #{plan.id}: {plan.title}"
    meta = [f"request: {plan.request[:200]}", f"made by: {plan.source}"]
    if plan.deadline:
        meta.append(f"deadline: {plan.deadline:%a %Y-%m-%d}")
    lines = [head, "=" * min(len(head), 80), *meta, ""]
    for t in plan.tasks:
        lines.append(_task_line(t))
        lines.append(f"      why: {t.why}")
    if plan.warnings:
        lines.append("")
        lines.extend(f"⚠ {w}" for w in plan.warnings)
    lines.append("")
    lines.append("Commands: accept N | reassign N | done N | my tasks | board | team | help")
    return "\n".join(lines)


def _task_line(t: Task) -> str:
    who = f"<@{t.assignee.slack_id}>" if t.assignee else "unassigned"
    deps = f" after {', '.join(t.depends_on)}" if t.depends_on else ""
    due = f" due {t.due:%a %m-%d}" if t.due else ""
    return f"#{t.id} [{t.key}] {t.title} — {who}, {t.estimate_hours:g} h{deps}{due} ({t.status})"


def _mentions(text: str, names: dict[str, str]) -> str:
    return _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)


class Console:
    """A chat loop over text streams; run() reads lines until EOF or `quit`."""

    def __init__(self, assistant: Assistant, *, user: str, out: Callable[[str], None] = print,
                 today: str | None = None) -> None:
        self.assistant = assistant
        self.user = user
        self.out = out
        self.today = today
        self._written = 0

    def names(self) -> dict[str, str]:
        return {m.slack_id: m.name for m in self.assistant.store.members()}

    def send(self, line: str) -> list[Reply]:
        """Handle one line and print the replies; returns them for tests."""
        if m := _AS.match(line):
            self.user = m.group(1).upper()
            self.out(f"(you are now {self.names().get(self.user, self.user)})")
            return []
        if m := _ACTION.match(line):
            action = m.group(1).lower()
            assert action in ACTIONS
            replies = self.assistant.handle_action(ActionRequest(self.user, action, int(m.group(2)),  # type: ignore[arg-type]
                                                                 thread_ts=THREAD))
        elif m := _COMMAND_TYPO.match(line):
            word = m.group(1).lower()
            usage = ("`as` needs a Slack user id, like `as U0DEMOANA`" if word == "as" else
                     "`retry` needs a kept request number, like `retry 3` (the number the error message gave)"
                     if word == "retry" else
                     f"`{word}` needs a task number, like `{word} 12` (see `my tasks` or `board`)")
            replies = [TextReply(usage, kind="error")]
        else:
            replies = self.assistant.handle(ChatRequest(self.user, line, today=self.today, is_dm=True,
                                                        thread_ts=THREAD))
        names = self.names()
        replies = [self._on_disk(r) for r in replies]
        for r in replies:
            self.out(render_text(r, names=names))
        return replies

    def _on_disk(self, reply: Reply) -> Reply:
        """A file reply held in memory is written under files_dir, so the printed path can be opened."""
        if not isinstance(reply, FileReply) or reply.path is not None:
            return reply
        out = self.assistant.files_dir / "console"
        out.mkdir(parents=True, exist_ok=True)
        self._written += 1
        path = out / f"{self._written:03d}-{reply.filename}"
        path.write_bytes(reply.read_bytes())
        return type(reply)(filename=reply.filename, title=reply.title, path=path, alt_text=reply.alt_text,
                           comment=reply.comment)

    def run(self, stdin: TextIO) -> None:
        self.out(f"Taskwright console — you are {self.names().get(self.user, self.user)}. "
                 "Type `help`, a request like `plan: launch the pricing page by Dec 20`, or `quit`.")
        interactive = stdin.isatty()
        while True:
            try:
                line = input("> ") if interactive else stdin.readline()
            except (EOFError, KeyboardInterrupt):
                return
            if (not line and not interactive) or line.strip().lower() in ("quit", "exit"):
                return
            if line.strip():
                self.send(line.strip())
