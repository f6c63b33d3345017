"""The assistant: one object behind every chat adapter. handle(ChatRequest) -> list[Reply].

It knows nothing of Slack or the console. Errors never escape: they come back as an error reply and a log
line with context, and nothing is half-written (the store writes a plan in one transaction).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from typing import Callable

from bot.router import Router
from bot.settings import Settings
from bot.store import Store
from bot.types import (
    ActionRequest,
    ChatRequest,
    DirectMessage,
    Intent,
    PlanReply,
    Reply,
    TaskListReply,
    TeamReply,
    TextReply,
)
from planner.core import Planner
from planner.embed import Embedder
from planner.errors import TaskwrightError
from planner.types import Plan, Task

log = logging.getLogger(__name__)

_MAX_TASK_ID = 2**63 - 1  # SQLite's INTEGER range: a larger id from a forged button names no task

HELP = """I turn requests into planned, assigned work.
• *plan: <request>* (or mention me, DM me, or `/plan <request>`) — split it into subtasks, assign each to the best-fitting teammate with free capacity, and schedule it against the deadline. Example: `plan: launch the pricing page by Dec 20`
• *my tasks* — your open tasks
• *board* — everyone's open tasks
• *team* — the team, skills and hours used
• Buttons on a plan: *Accept*, *Reassign* (to the next best person), *Done*"""


class Assistant:
    """Routes a request, runs the planner, keeps the store, and answers with platform-neutral replies."""

    def __init__(self, *, store: Store, planner: Planner | Callable[[], Planner],
                 today: Callable[[], dt.date] = dt.date.today) -> None:
        self.store = store
        self._planner = planner
        self._planner_lock = threading.Lock()
        self._today = today
        self.router = Router(embedder=self._loaded_embedder)

    @property
    def planner(self) -> Planner:
        with self._planner_lock:
            if not isinstance(self._planner, Planner):
                self._planner = self._planner()
            return self._planner

    def route(self, req: ChatRequest) -> Intent:
        return self.router.route(req.text)

    def handle(self, req: ChatRequest) -> list[Reply]:
        try:
            intent = self.route(req)
            return self._dispatch(intent, req)
        except TaskwrightError as e:
            log.info("request refused: %s (user=%s channel=%s)", e, req.user, req.channel)
            return [TextReply(str(e), kind="error")]
        except Exception:
            log.exception("request failed (user=%s channel=%s text=%.120r)", req.user, req.channel, req.text)
            return [TextReply("Sorry, something went wrong on my side and nothing was saved. "
                              "The error is in the bot's log; please try again.", kind="error")]

    def handle_action(self, act: ActionRequest) -> list[Reply]:
        try:
            return self._act(act)
        except TaskwrightError as e:
            return [TextReply(str(e), kind="error")]
        except Exception:
            log.exception("action failed (user=%s action=%s task=%s)", act.user, act.action, act.task_id)
            return [TextReply("Sorry, that click failed on my side; nothing was changed.", kind="error")]

    # -- intents -----------------------------------------------------------------------------------

    def _dispatch(self, intent: Intent, req: ChatRequest) -> list[Reply]:
        if intent.name == "plan":
            if not intent.argument.strip():
                return [TextReply("What should I plan? Try: `plan: launch the pricing page by Dec 20`", "error")]
            return self._plan(intent.argument, req)
        if intent.name == "my_tasks":
            return self._my_tasks(req.user)
        if intent.name == "team":
            return [TeamReply(tuple(self.store.members()), self.store.open_hours())]
        if intent.name == "board":
            return [TaskListReply("Team board: open tasks", tuple(self.store.open_tasks()), "Nothing open.")]
        return [TextReply(HELP)]

    def _plan(self, request: str, req: ChatRequest) -> list[Reply]:
        today = dt.date.fromisoformat(req.today) if req.today else self._today()
        team = self.store.members()
        result = self.planner.plan(request, today=today, requester=req.user, team=team,
                                   open_hours=self.store.open_hours())
        plan = self.store.save_plan(result.draft, result.assignments, result.slots, requester=req.user,
                                    channel=req.channel, thread_ts=req.reply_thread or "",
                                    warnings=result.warnings)
        log.info("plan %s saved: %d tasks via %s (%s)", plan.id, len(plan.tasks), plan.source,
                 ", ".join(f"{k}={v:.2f}" for k, v in result.timings.items()))
        return [PlanReply(plan), *self._notify_assignees(plan)]

    def _notify_assignees(self, plan: Plan) -> list[Reply]:
        per_member: dict[str, list[Task]] = defaultdict(list)
        for t in plan.tasks:
            if t.assignee:
                per_member[t.assignee.slack_id].append(t)
        return [
            DirectMessage(uid, TaskListReply(f"New from <@{plan.requester}>'s plan “{plan.title}”: "
                                             f"{len(tasks)} task(s) for you", tuple(tasks)))
            for uid, tasks in per_member.items()
        ]

    def _my_tasks(self, user: str) -> list[Reply]:
        tasks = self.store.tasks_for(user)
        if not tasks and self.store.member(user) is None:
            return [TextReply("You're not on the team roster yet, so nothing is assigned to you. "
                              "Ask an admin to run `taskwright team add`.")]
        return [TaskListReply("Your open tasks", tuple(tasks), "You have no open tasks.")]

    # -- buttons -----------------------------------------------------------------------------------

    def _act(self, act: ActionRequest) -> list[Reply]:
        task = self.store.task(act.task_id) if 0 < act.task_id <= _MAX_TASK_ID else None
        if task is None:
            raise TaskwrightError(f"Task {act.task_id} no longer exists.")
        plan = self.store.get_plan(task.plan_id)
        assert plan is not None
        owner = task.assignee.slack_id if task.assignee else None
        if act.action == "accept":
            if owner != act.user:
                raise TaskwrightError(f"Only {_who(owner)} can accept “{task.title}”.")
            if task.status == "done":  # a stale Accept button must not reopen finished work
                raise TaskwrightError(f"“{task.title}” is already done.")
            if task.status != "accepted":
                self.store.set_status(task.id, "accepted", actor=act.user, why="accepted by the assignee")
        elif act.action == "done":
            if act.user not in (owner, plan.requester):
                raise TaskwrightError(f"Only {_who(owner)} or the requester can mark “{task.title}” done.")
            if task.status != "done":  # a double click records one event, not two
                self.store.set_status(task.id, "done", actor=act.user, why="marked done")
        elif act.action == "reassign":
            if act.user not in (owner, plan.requester) and self.store.member(act.user) is None:
                raise TaskwrightError(f"Only the team, the requester or {_who(owner)} can reassign "
                                      f"“{task.title}”.")
            return self._reassign(task, act)
        else:
            raise TaskwrightError(f"Unknown action {act.action!r}.")
        return [PlanReply(self._plan_or_fail(plan.id), update=True)]

    def _reassign(self, task: Task, act: ActionRequest) -> list[Reply]:
        if task.status == "done":
            raise TaskwrightError(f"“{task.title}” is already done.")
        choice = self.planner.next_best(task, self.store.members(), self.store.open_hours())
        why = f"reassigned by <@{act.user}>: {choice.why}"
        updated = self.store.reassign(task.id, choice.member, actor=act.user, why=why)
        replies: list[Reply] = [PlanReply(self._plan_or_fail(task.plan_id), update=True)]
        if choice.member:
            replies.append(DirectMessage(choice.member.slack_id,
                                         TaskListReply(f"<@{act.user}> reassigned a task to you", (updated,))))
        return replies

    def _plan_or_fail(self, plan_id: int) -> Plan:
        plan = self.store.get_plan(plan_id)
        if plan is None:
            raise TaskwrightError(f"Plan {plan_id} no longer exists.")
        return plan

    def _loaded_embedder(self) -> Embedder | None:
        p = self._planner
        return p.embedder if isinstance(p, Planner) else None


def _who(slack_id: str | None) -> str:
    return f"<@{slack_id}>" if slack_id else "the assignee"


def build_playbook_planner(settings: Settings | None = None, *, embedder: Embedder | None = None,
                           with_llm: bool = False) -> Planner:
    """The planner over the default embedder and playbooks; with_llm adds the configured LLM (lazily loaded)."""
    from planner.core import preload
    from planner.embed import default_embedder
    from planner.playbooks import PlaybookLibrary, load_playbooks

    factory = None
    if with_llm and settings is not None:
        from planner.proposer import build_proposer

        factory = preload(lambda: build_proposer(settings))  # loads while the embedder loads
    emb = embedder or default_embedder()
    return Planner(library=PlaybookLibrary(load_playbooks(), emb), embedder=emb, proposer_factory=factory,
                   assign_time_limit_s=settings.assign_time_limit_s if settings else 0.5)


def build_assistant(settings: Settings, *, store: Store | None = None, planner: Planner | None = None) -> Assistant:
    """The assistant for settings; the planner (models) loads on first use unless one is given."""
    store = store or Store(settings.db_path)
    return Assistant(store=store, planner=planner or (lambda: build_playbook_planner(settings, with_llm=True)))
