"""The one store: a SQLite file through sqlite-utils. SQL appears nowhere else.

Migrations run on open, so new and old databases take the same path. Writes that touch several rows run
in one transaction (`db.atomic()`); every change to a task is recorded in `task_events` (who, what, when,
why). One connection shared by the bot's worker threads, guarded by a lock; WAL lets a CLI read meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sqlite_utils import Database

from bot.migrations import migrations
from planner.types import Assignment, DraftPlan, Member, Plan, Slot, Task

log = logging.getLogger(__name__)

OPEN_STATUSES = ("proposed", "accepted")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


class Store:
    """Members, plans, tasks, the task audit trail and processed Slack event ids."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.path = path
        self.db = Database(conn)
        self._lock = threading.RLock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            migrations.apply(self.db)

    def close(self) -> None:
        self.db.conn.close()

    # -- members -----------------------------------------------------------------------------------

    def members(self, *, active_only: bool = True) -> list[Member]:
        where = "active = 1" if active_only else None
        with self._lock:
            rows = list(self.db["members"].rows_where(where, order_by="name"))
        return [_member(r) for r in rows]

    def member(self, slack_id: str) -> Member | None:
        with self._lock:
            rows = list(self.db["members"].rows_where("slack_id = ? and active = 1", [slack_id]))
        return _member(rows[0]) if rows else None

    def has_team(self) -> bool:
        with self._lock:
            return self.db["members"].count_where("active = 1") > 0

    def save_members(self, members: Sequence[Member], *, replace: bool = False, actor: str = "cli") -> None:
        """Add or update members in one transaction; replace=True deactivates everyone not listed."""
        with self._lock, self.db.atomic():
            if replace:
                self.db.execute("UPDATE members SET active = 0")
            for m in members:
                self.db["members"].upsert(
                    {
                        "slack_id": m.slack_id,
                        "name": m.name,
                        "email": m.email,
                        "skills": json.dumps(m.skills, ensure_ascii=False),
                        "capacity_hours": float(m.capacity_hours),
                        "timezone": m.timezone,
                        "active": 1,
                        "created_at": _now(),
                    },
                    pk="slack_id",
                    alter=False,
                )

    def remove_member(self, slack_id: str, *, actor: str = "cli") -> list[Task]:
        """Deactivate a member (history stays) and unassign their open tasks, each with an event."""
        with self._lock, self.db.atomic():
            if not self.db["members"].count_where("slack_id = ? and active = 1", [slack_id]):
                return []
            self.db.execute("UPDATE members SET active = 0 WHERE slack_id = ?", [slack_id])
            ids = [r["id"] for r in self._open_task_rows("assignee = ?", [slack_id])]
            for task_id in ids:
                self._change_task(task_id, actor, "unassign", {"assignee": None,
                                  "why": f"unassigned: {slack_id} left the team", "status": "proposed"})
        return [t for t in (self.task(i) for i in ids) if t]

    def open_hours(self) -> dict[str, float]:
        """Hours of open (proposed or accepted) work assigned to each member."""
        sql = (
            "SELECT assignee, SUM(estimate_hours) AS h FROM tasks WHERE assignee IS NOT NULL "
            f"AND status IN {OPEN_STATUSES!r} GROUP BY assignee"
        )
        with self._lock:
            return {r[0]: float(r[1]) for r in self.db.execute(sql).fetchall()}

    # -- plans and tasks ---------------------------------------------------------------------------

    def save_plan(
        self,
        draft: DraftPlan,
        assignments: Sequence[Assignment],
        slots: Sequence[Slot],
        *,
        requester: str,
        channel: str = "",
        thread_ts: str = "",
        warnings: Iterable[str] = (),
    ) -> Plan:
        """Write a plan, its tasks and their assignments in one transaction."""
        by_task = {a.subtask_id: a for a in assignments}
        by_slot = {s.subtask_id: s for s in slots}
        now = _now()
        with self._lock, self.db.atomic():
            plan_id = self.db["plans"].insert(
                {
                    "request": draft.request,
                    "title": draft.title,
                    "requester": requester,
                    "source": draft.source,
                    "deadline": draft.deadline.isoformat() if draft.deadline else None,
                    "warnings": json.dumps(list(draft.warnings) + list(warnings), ensure_ascii=False),
                    "created_at": now,
                    "channel": channel,
                    "thread_ts": thread_ts,
                    "message_ts": None,
                }
            ).last_pk
            for sub in draft.subtasks:
                a, slot = by_task.get(sub.id), by_slot.get(sub.id)
                row = {
                    "plan_id": plan_id,
                    "key": sub.id,
                    "title": sub.title,
                    "description": sub.description,
                    "skills": json.dumps(list(sub.skills), ensure_ascii=False),
                    "estimate_hours": float(sub.estimate_hours),
                    "depends_on": json.dumps(list(sub.depends_on)),
                    "kind": sub.kind,
                    "assignee": a.member.slack_id if a and a.member else None,
                    "why": a.why if a else "not assigned",
                    "start": slot.start.isoformat() if slot else None,
                    "due": slot.due.isoformat() if slot else None,
                    "status": "proposed",
                    "updated_at": now,
                }
                task_id = self.db["tasks"].insert(row).last_pk
                self._event(task_id, plan_id, requester, "create", None, row["assignee"], row["why"])
        plan = self.get_plan(int(plan_id))
        assert plan is not None
        return plan

    def get_plan(self, plan_id: int) -> Plan | None:
        with self._lock:
            rows = list(self.db["plans"].rows_where("id = ?", [plan_id]))
            if not rows:
                return None
            tasks = self._tasks("plan_id = ?", [plan_id], order_by="id")
        r = rows[0]
        return Plan(
            id=r["id"],
            request=r["request"],
            title=r["title"],
            requester=r["requester"],
            source=r["source"],
            created_at=dt.datetime.fromisoformat(r["created_at"]),
            deadline=_date(r["deadline"]),
            tasks=tuple(tasks),
            warnings=tuple(json.loads(r["warnings"] or "[]")),
            channel=r["channel"] or "",
            thread_ts=r["thread_ts"] or "",
        )

    def plans(self, *, limit: int = 20) -> list[Plan]:
        with self._lock:
            ids = [r["id"] for r in self.db["plans"].rows_where(order_by="id desc", limit=limit)]
        return [p for p in (self.get_plan(i) for i in ids) if p]

    def set_plan_message(self, plan_id: int, channel: str, ts: str) -> None:
        with self._lock, self.db.atomic():
            self.db["plans"].update(plan_id, {"channel": channel, "message_ts": ts})

    def task(self, task_id: int) -> Task | None:
        with self._lock:
            found = self._tasks("id = ?", [task_id])
        return found[0] if found else None

    def tasks_for(self, slack_id: str, *, open_only: bool = True) -> list[Task]:
        where = "assignee = ?" + (f" AND status IN {OPEN_STATUSES!r}" if open_only else "")
        with self._lock:
            return self._tasks(where, [slack_id], order_by="due IS NULL, due, id")

    def open_tasks(self) -> list[Task]:
        with self._lock:
            return self._tasks(f"status IN {OPEN_STATUSES!r}", [], order_by="due IS NULL, due, id")

    def set_status(self, task_id: int, status: str, *, actor: str, why: str = "") -> Task:
        with self._lock, self.db.atomic():
            self._change_task(task_id, actor, status, {"status": status}, why=why)
        task = self.task(task_id)
        assert task is not None
        return task

    def reassign(self, task_id: int, member: Member | None, *, actor: str, why: str) -> Task:
        with self._lock, self.db.atomic():
            changes = {"assignee": member.slack_id if member else None, "why": why, "status": "proposed"}
            self._change_task(task_id, actor, "reassign", changes, why=why)
        task = self.task(task_id)
        assert task is not None
        return task

    def task_events(self, task_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db["task_events"].rows_where("task_id = ?", [task_id], order_by="id"))

    # -- reports (weekly report: generation/reports/weekly.py) --------------------------------------

    def tasks_active_since(self, since: dt.datetime) -> list[Task]:
        """Open tasks plus every task with an audit event at or after `since` (UTC): a report's scope."""
        at = since.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
        where = f"status IN {OPEN_STATUSES!r} OR id IN (SELECT task_id FROM task_events WHERE at >= ?)"
        with self._lock:
            return self._tasks(where, [at], order_by="due IS NULL, due, id")

    def events_for_tasks(self, task_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The audit events of these tasks, oldest first (the burndown replays them)."""
        ids = list(dict.fromkeys(int(i) for i in task_ids))
        out: list[dict[str, Any]] = []
        with self._lock:
            for i in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                out += self.db["task_events"].rows_where(f"task_id IN ({marks})", chunk, order_by="at, id")
        return sorted(out, key=lambda r: (r["at"], r["id"]))

    # -- Slack events ------------------------------------------------------------------------------

    def claim_event(self, event_id: str) -> bool:
        """True the first time an event id is seen; False for a retry or duplicate delivery."""
        with self._lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO slack_events (event_id, received_at) VALUES (?, ?)", [event_id, _now()]
            )
            self.db.conn.commit()
            return cur.rowcount == 1

    # -- generations, thread tables, scheduled posts -----------------------------------------------

    def record_generation(self, kind: str, prompt: str, *, requester: str, channel: str = "",
                          thread_ts: str = "", n: int = 1, seed: int | None = None,
                          task_id: int | None = None) -> Generation:
        """Keep a generation request before calling the generator, so a failure can be retried later."""
        now = _now()
        with self._lock, self.db.atomic():
            gen_id = self.db["generations"].insert(
                {"kind": kind, "prompt": prompt, "n": n, "seed": seed, "requester": requester,
                 "channel": channel, "thread_ts": thread_ts, "task_id": task_id, "status": "pending",
                 "error": None, "result_path": None, "result_text": None, "created_at": now, "updated_at": now}
            ).last_pk
        gen = self.generation(int(gen_id))
        assert gen is not None
        return gen

    def generation(self, gen_id: int) -> Generation | None:
        with self._lock:
            rows = list(self.db["generations"].rows_where("id = ?", [gen_id]))
        return _generation(rows[0]) if rows else None

    def pending_generations(self) -> list[Generation]:
        """Requests kept because the generator was unavailable, oldest first."""
        with self._lock:
            return [_generation(r) for r in self.db["generations"].rows_where("status = 'pending'", order_by="id")]

    def generations_for_task(self, task_id: int) -> list[Generation]:
        with self._lock:
            return [_generation(r) for r in self.db["generations"].rows_where("task_id = ?", [task_id], order_by="id")]

    def note_generation_error(self, gen_id: int, error: str, *, final: bool) -> None:
        """Record why a try failed; final=True (the input was refused) closes the request."""
        changes = {"error": error[:1000], "updated_at": _now()} | ({"status": "failed"} if final else {})
        with self._lock, self.db.atomic():
            self.db["generations"].update(gen_id, changes)

    def finish_generation(self, gen_id: int, *, actor: str, result_path: str | None = None,
                          result_text: str | None = None) -> Generation:
        """Mark a request done with its output; a task's draft is also recorded in the task's audit trail."""
        with self._lock, self.db.atomic():
            self.db["generations"].update(gen_id, {"status": "done", "result_path": result_path,
                                                   "result_text": result_text, "error": None,
                                                   "updated_at": _now()})
            row = self.db["generations"].get(gen_id)
            if row["task_id"] is not None:
                task = self.db["tasks"].get(row["task_id"])
                self._event(row["task_id"], task["plan_id"], actor, "draft", None,
                            json.dumps({"generation": gen_id, "kind": row["kind"], "path": result_path}),
                            f"{row['kind']} draft generated")
        gen = self.generation(gen_id)
        assert gen is not None
        return gen

    def remember_table(self, channel: str, thread_ts: str, path: str | Path, name: str) -> None:
        """The table a thread talks about, so follow-up questions there are answered from it."""
        with self._lock, self.db.atomic():
            self.db["thread_tables"].upsert({"channel": channel, "thread_ts": thread_ts, "path": str(path),
                                             "name": name, "created_at": _now()}, pk=("channel", "thread_ts"))

    def table_for(self, channel: str, thread_ts: str | None) -> tuple[Path, str] | None:
        """(stored file, display name) remembered for the thread, or None."""
        if not thread_ts:
            return None
        with self._lock:
            rows = list(self.db["thread_tables"].rows_where("channel = ? AND thread_ts = ?", [channel, thread_ts]))
        return (Path(rows[0]["path"]), rows[0]["name"]) if rows else None

    def claim_scheduled(self, key: str) -> bool:
        """True the first time a scheduled post (e.g. "weekly:2026-12-04") is claimed; False if already made."""
        with self._lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO scheduled_posts (key, posted_at) VALUES (?, ?)", [key, _now()]
            )
            self.db.conn.commit()
            return cur.rowcount == 1

    # -- internals ---------------------------------------------------------------------------------

    def _open_task_rows(self, where: str, params: list[Any]) -> list[dict[str, Any]]:
        return list(self.db["tasks"].rows_where(f"({where}) AND status IN {OPEN_STATUSES!r}", params))

    def _tasks(self, where: str, params: list[Any], *, order_by: str = "id") -> list[Task]:
        rows = list(self.db["tasks"].rows_where(where, params, order_by=order_by))
        slack_ids = {r["assignee"] for r in rows if r["assignee"]}
        members = {}
        if slack_ids:
            marks = ",".join("?" * len(slack_ids))
            for m in self.db["members"].rows_where(f"slack_id IN ({marks})", list(slack_ids)):
                members[m["slack_id"]] = _member(m)
        return [_task(r, members.get(r["assignee"] or "")) for r in rows]

    def _change_task(self, task_id: int, actor: str, action: str, changes: Mapping[str, Any],
                     *, why: str = "") -> None:
        rows = list(self.db["tasks"].rows_where("id = ?", [task_id]))
        if not rows:
            raise KeyError(f"no task {task_id}")
        before = {k: rows[0][k] for k in changes}
        self.db["tasks"].update(task_id, {**changes, "updated_at": _now()})
        self._event(task_id, rows[0]["plan_id"], actor, action, json.dumps(before), json.dumps(dict(changes)),
                    why or str(changes.get("why", "")))

    def _event(self, task_id: int, plan_id: int, actor: str, action: str, before: Any, after: Any,
               why: str) -> None:
        self.db["task_events"].insert(
            {"task_id": task_id, "plan_id": plan_id, "actor": actor, "action": action,
             "before": before, "after": after, "why": why, "at": _now()}
        )


@dataclass(frozen=True)
class Generation:
    """One generation request (an image grid or a text draft) and where it stands."""

    id: int
    kind: str
    prompt: str
    n: int
    seed: int | None
    requester: str
    channel: str
    thread_ts: str
    task_id: int | None
    status: str
    error: str
    result_path: str
    result_text: str


def _generation(r: Mapping[str, Any]) -> Generation:
    return Generation(id=r["id"], kind=r["kind"], prompt=r["prompt"] or "", n=int(r["n"] or 1), seed=r["seed"],
                      requester=r["requester"] or "", channel=r["channel"] or "", thread_ts=r["thread_ts"] or "",
                      task_id=r["task_id"], status=r["status"], error=r["error"] or "",
                      result_path=r["result_path"] or "", result_text=r["result_text"] or "")


def _member(r: Mapping[str, Any]) -> Member:
    return Member(
        name=r["name"],
        slack_id=r["slack_id"],
        skills={k: int(v) for k, v in json.loads(r["skills"] or "{}").items()},
        capacity_hours=float(r["capacity_hours"] or 0),
        email=r["email"] or "",
        timezone=r["timezone"] or "UTC",
    )


def _task(r: Mapping[str, Any], assignee: Member | None) -> Task:
    return Task(
        id=r["id"],
        plan_id=r["plan_id"],
        key=r["key"],
        title=r["title"],
        description=r["description"] or "",
        skills=tuple(json.loads(r["skills"] or "[]")),
        estimate_hours=float(r["estimate_hours"]),
        depends_on=tuple(json.loads(r["depends_on"] or "[]")),
        kind=r["kind"],
        assignee=assignee,
        why=r["why"] or "",
        start=_date(r["start"]),
        due=_date(r["due"]),
        status=r["status"],
    )
