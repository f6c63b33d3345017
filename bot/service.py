"""The assistant: one object behind every chat adapter. handle(ChatRequest) -> list[Reply].

It knows nothing of Slack or the console. Errors never escape: they come back as an error reply and a log
line with context, and nothing is half-written (the store writes a plan in one transaction).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from bot.data_desk import DataDesk
from bot.drafts import Drafts
from bot.files import FileFetcher, LocalFiles
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
• Buttons on a plan: *Accept*, *Reassign* (to the next best person), *Done*; *Generate draft* on text and image tasks
• *draw 8 sevens* (or `/generate image …`) — a grid of generated images in the thread
• *draft a reply to …*, *write an announcement for …* (or `/generate text …`) — a text draft in the thread
• Share a CSV/Excel/JSON/Parquet file with me — a summary with charts; then ask in the thread, e.g. *total Sales by Region*
• *weekly report* — done / in progress / overdue per person, workload and burndown charts"""


class Assistant:
    """Routes a request, runs the planner, keeps the store, and answers with platform-neutral replies."""

    def __init__(self, *, store: Store, planner: Planner | Callable[[], Planner],
                 today: Callable[[], dt.date] = dt.date.today, text_model: Any = None, image_model: Any = None,
                 files_dir: Path | None = None, max_file_mb: float = 200.0,
                 fetcher: FileFetcher | None = None) -> None:
        """text_model / image_model: a model or a zero-argument factory (built on first use), or None."""
        self.store = store
        self._planner = planner
        self._planner_lock = threading.Lock()
        self._today = today
        self.router = Router(embedder=self._loaded_embedder)
        self.files_dir = files_dir or store.path.parent / "files"
        self.fetcher: FileFetcher = fetcher or LocalFiles()
        self.drafts = Drafts(store, files_dir=self.files_dir, text_model=text_model, image_model=image_model)
        narrator = (lambda: self.drafts.model("text")) if text_model is not None else None
        self.data = DataDesk(store, files_dir=self.files_dir, max_file_bytes=int(max_file_mb * 1024 * 1024),
                             text_model=narrator, embedder=lambda: self.planner.embedder)

    @property
    def planner(self) -> Planner:
        with self._planner_lock:
            if not isinstance(self._planner, Planner):
                self._planner = self._planner()
            return self._planner

    def route(self, req: ChatRequest) -> Intent:
        """The router's intent, then chat context: a shared file is summarized, free text in a thread that
        has a table is a question about it."""
        intent = self.router.route(req.text)
        if req.files and (intent.fallback or intent.name in ("empty", "help", "summarize")):
            return Intent("summarize", intent.argument, slow=True, status_text="Reading the file… :bar_chart:")
        if intent.fallback and req.thread_ts and self.data.has_table(req):
            return Intent("question", req.text, slow=True, status_text="Computing… :bar_chart:")
        return intent

    def handle(self, req: ChatRequest, *, fetcher: FileFetcher | None = None) -> list[Reply]:
        """Answer one message; fetcher gets shared files (the adapter's; default: local paths)."""
        try:
            intent = self.route(req)
            return self._dispatch(intent, req, fetcher or self.fetcher)
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

    def _dispatch(self, intent: Intent, req: ChatRequest, fetcher: FileFetcher) -> list[Reply]:
        where = {"user": req.user, "channel": req.channel, "thread_ts": req.reply_thread or ""}
        if intent.name == "draw":
            return self.drafts.draw(intent.argument, **where)
        if intent.name == "write":
            return self.drafts.write(intent.argument, **where)
        if intent.name == "summarize":
            return self.data.summarize(req, intent.argument, fetcher)
        if intent.name == "question":
            return self.data.question(req)
        if intent.name == "report":
            return self.weekly_report(dt.date.fromisoformat(req.today) if req.today else self._today())
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

    def weekly_report(self, today: dt.date) -> list[Reply]:
        """The team's weekly report (Markdown and charts), for chat and the scheduled post."""
        return self.data.weekly(today)

    def _my_tasks(self, user: str) -> list[Reply]:
        tasks = self.store.tasks_for(user)
        if not tasks and self.store.member(user) is None:
            return [TextReply("You're not on the team roster yet, so nothing is assigned to you. "
                              "Ask an admin to run `taskwright team add`.")]
        return [TaskListReply("Your open tasks", tuple(tasks), "You have no open tasks.")]

    # -- buttons -----------------------------------------------------------------------------------

    def _act(self, act: ActionRequest) -> list[Reply]:
        if act.action == "retry":  # the id names a kept generation request, not a task
            return self.drafts.retry(act.task_id, user=act.user)
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
        elif act.action == "generate":
            if task.kind not in ("text", "image"):
                raise TaskwrightError(f"“{task.title}” is {task.kind} work; drafts are for text and image tasks.")
            return self.drafts.for_task(task, plan, user=act.user, channel=act.channel,
                                        thread_ts=act.thread_ts or act.message_ts or plan.thread_ts)
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


def build_assistant(settings: Settings, *, store: Store | None = None, planner: Planner | None = None,
                    text_model: Any = None, image_model: Any = None) -> Assistant:
    """The assistant for settings; the planner and generators load on first use unless given.

    Generators come from generation/client.py: HTTP when TASKWRIGHT_GENERATION_URL is set, else in-process.
    """
    from generation.client import build_image_model, build_text_model

    store = store or Store(settings.db_path)
    return Assistant(store=store, planner=planner or (lambda: build_playbook_planner(settings, with_llm=True)),
                     text_model=text_model or (lambda: build_text_model(settings)),
                     image_model=image_model or (lambda: build_image_model(settings)),
                     files_dir=settings.files_dir, max_file_mb=settings.max_file_mb)
