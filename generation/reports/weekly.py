"""The team's weekly report: per person done / in progress / overdue, workload against capacity, plans on
track or late, and a burndown replayed from the task audit log. Markdown plus PNG charts.

Every number comes from the store (tasks, members, task_events). The week is Monday to Sunday around
`today`, and statuses are replayed from the audit log as they stood at the end of `today`, so a report for
a past date counts what was true then (assignees and due dates are today's).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.types import Member, Plan, Task

log = logging.getLogger(__name__)


@dataclass
class Report:
    """markdown: the whole report; charts: PNG paths (workload, burndown); data: the numbers, JSON-able."""

    markdown: str
    charts: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def weekly_report(store: Any, *, today: dt.date, out_dir: Path) -> Report:
    """Build the report for the Monday-to-Sunday week containing `today` and write its charts to out_dir."""
    start = today - dt.timedelta(days=today.weekday())
    end = start + dt.timedelta(days=6)
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.timezone.utc)
    tasks = store.tasks_active_since(since)
    events = store.events_for_tasks([t.id for t in tasks])
    history = _status_history(events)
    tasks, done_on = _as_of(tasks, history, start, today)
    people = _people(store.members(), tasks, today)
    plans = _plans(store, tasks, today)
    burndown = _burndown(tasks, history, start, end, today)
    data = {"week_start": start.isoformat(), "week_end": end.isoformat(), "today": today.isoformat(),
            "people": people, "plans": plans, "burndown": burndown,
            "totals": {k: sum(p[k] for p in people) for k in ("done", "in_progress", "overdue", "proposed")},
            "overdue_tasks": [_task_row(t, today) for t in tasks if _overdue(t, today)],
            "done_tasks": [{**_task_row(t, today), "done_on": done_on[t.id].isoformat()}
                           for t in tasks if t.id in done_on]}
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = (_workload_chart(people, out_dir, start), _burndown_chart(burndown, out_dir, start))
    charts = [p for p in drawn if p]
    log.info("weekly report %s..%s: %d tasks, %d people, %d plans", start, end, len(tasks), len(people),
             len(plans))
    return Report(markdown=_markdown(data), charts=charts, data=data)


# -- the numbers ----------------------------------------------------------------------------------


def _status_history(events: list[dict[str, Any]]) -> dict[int, list[tuple[dt.datetime, str]]]:
    """task id -> [(when, status from then on)], from 'create' and every event whose change sets a status."""
    out: dict[int, list[tuple[dt.datetime, str]]] = {}
    for e in events:
        status = "proposed" if e["action"] == "create" else _after_status(e.get("after"))
        if status:
            out.setdefault(int(e["task_id"]), []).append((_when(e["at"]), status))
    return out


def _after_status(after: str | None) -> str | None:
    try:
        value = json.loads(after) if after else None
    except (TypeError, ValueError):
        return None
    return value.get("status") if isinstance(value, dict) else None


def _when(at: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(at)
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _status_at(history: list[tuple[dt.datetime, str]] | None, moment: dt.datetime,
               current: str) -> str | None:
    """The status at `moment`; None before the task existed. No history: the task's current status."""
    if not history:
        return current
    status = None
    for when, s in history:
        if when <= moment:
            status = s
    return status


def _as_of(tasks: list[Task], history: dict[int, list[tuple[dt.datetime, str]]], start: dt.date,
           today: dt.date) -> tuple[list[Task], dict[int, dt.date]]:
    """Each task with its status at the end of `today`, keeping those that existed by then and are open or
    were finished this week; plus the day each finished one was done."""
    end_of_today = dt.datetime.combine(today, dt.time.max, tzinfo=dt.timezone.utc)
    kept, done_on = [], {}
    for t in tasks:
        past = [h for h in history.get(t.id, []) if h[0] <= end_of_today]
        if t.id in history and not past:
            continue  # created after today
        status = past[-1][1] if past else t.status
        if status == "done":
            day = past[-1][0].astimezone(dt.timezone.utc).date() if past else None
            if day is None or day < start:
                continue
            done_on[t.id] = day
        kept.append(t.with_(status=status))
    return kept, done_on


def _overdue(t: Task, today: dt.date) -> bool:
    return t.status != "done" and t.due is not None and t.due < today


def _people(members: list[Member], tasks: list[Task], today: dt.date) -> list[dict[str, Any]]:
    by_id: dict[str, Member] = {m.slack_id: m for m in members}
    for t in tasks:
        if t.assignee and t.assignee.slack_id not in by_id:
            by_id[t.assignee.slack_id] = t.assignee  # left the team but still holds work this week
    rows = []
    for sid, m in sorted(by_id.items(), key=lambda kv: kv[1].name.casefold()):
        mine = [t for t in tasks if t.assignee and t.assignee.slack_id == sid]
        open_ = [t for t in mine if t.status != "done"]
        rows.append({
            "name": m.name, "slack_id": sid,
            "done": sum(1 for t in mine if t.status == "done"),
            "done_hours": sum(t.estimate_hours for t in mine if t.status == "done"),
            "in_progress": sum(1 for t in mine if t.status == "accepted"),
            "proposed": sum(1 for t in mine if t.status == "proposed"),
            "overdue": sum(1 for t in mine if _overdue(t, today)),
            "open_hours": round(sum(t.estimate_hours for t in open_), 2),
            "capacity_hours": m.capacity_hours,
        })
    unassigned = [t for t in tasks if t.assignee is None and t.status != "done"]
    if unassigned:
        rows.append({"name": "(unassigned)", "slack_id": None, "done": 0, "done_hours": 0.0, "in_progress": 0,
                     "proposed": sum(1 for t in unassigned if t.status == "proposed"),
                     "overdue": sum(1 for t in unassigned if _overdue(t, today)),
                     "open_hours": round(sum(t.estimate_hours for t in unassigned), 2),
                     "capacity_hours": 0.0})
    return rows


def _plans(store: Any, tasks: list[Task], today: dt.date) -> list[dict[str, Any]]:
    rows = []
    for plan_id in sorted({t.plan_id for t in tasks}):
        plan: Plan | None = store.get_plan(plan_id)
        if plan is None:
            continue
        open_ = [t for t in plan.tasks if t.status != "done"]
        finish = max((t.due for t in open_ if t.due), default=None)
        reasons = []
        if any(_overdue(t, today) for t in open_):
            reasons.append(f"{sum(_overdue(t, today) for t in open_)} task(s) overdue")
        if plan.deadline and open_ and plan.deadline < today:
            reasons.append(f"deadline {plan.deadline} passed")
        elif plan.deadline and finish and finish > plan.deadline:
            reasons.append(f"scheduled to finish {finish}, after the deadline {plan.deadline}")
        status = "done" if not open_ else ("late" if reasons else "on track")
        rows.append({"id": plan.id, "title": plan.title,
                     "deadline": plan.deadline.isoformat() if plan.deadline else None,
                     "finish": finish.isoformat() if finish else None, "tasks": len(plan.tasks),
                     "done": len(plan.tasks) - len(open_), "status": status, "why": "; ".join(reasons)})
    return rows


def _burndown(tasks: list[Task], history: dict[int, list[tuple[dt.datetime, str]]], start: dt.date,
              end: dt.date, today: dt.date) -> list[dict[str, Any]]:
    """Open estimate hours at the start of the week and at the end of each day up to today, plus the ideal."""
    def remaining(moment: dt.datetime) -> float:
        total = 0.0
        for t in tasks:
            status = _status_at(history.get(t.id), moment, t.status)
            if status is not None and status != "done":
                total += t.estimate_hours
        return round(total, 2)

    week_start = dt.datetime.combine(start, dt.time(), tzinfo=dt.timezone.utc)
    first = remaining(week_start)
    points = [{"day": "start", "date": start.isoformat(), "remaining_hours": first, "ideal_hours": first}]
    for i in range(7):
        day = start + dt.timedelta(days=i)
        ideal = round(first * (1 - (i + 1) / 7), 2)
        moment = dt.datetime.combine(day, dt.time.max, tzinfo=dt.timezone.utc)
        value = remaining(moment) if day <= today else None
        points.append({"day": day.strftime("%a"), "date": day.isoformat(), "remaining_hours": value,
                       "ideal_hours": ideal})
    return points


def _task_row(t: Task, today: dt.date) -> dict[str, Any]:
    return {"id": t.id, "title": t.title, "assignee": t.assignee.name if t.assignee else None,
            "due": t.due.isoformat() if t.due else None, "days_late": (today - t.due).days if t.due else None,
            "status": t.status}


# -- the text -------------------------------------------------------------------------------------


def _markdown(d: dict[str, Any]) -> str:
    tot = d["totals"]
    lines = [f"# Weekly report: {d['week_start']} to {d['week_end']}",
             f"As of {d['today']}: {tot['done']} done this week, {tot['in_progress']} in progress, "
             f"{tot['overdue']} overdue, {tot['proposed']} waiting to be accepted.", "", "## People"]
    if d["people"]:
        lines += ["| Person | Done | In progress | Overdue | Open hours / capacity |",
                  "|---|--:|--:|--:|--:|"]
        for p in d["people"]:
            load = f"{p['open_hours']:g} / {p['capacity_hours']:g}"
            if p["capacity_hours"]:
                load += f" ({p['open_hours'] / p['capacity_hours']:.0%})"
            lines.append(f"| {p['name']} | {p['done']} | {p['in_progress']} | {p['overdue']} | {load} |")
    else:
        lines.append("No team members yet (`taskwright team import FILE`).")
    if d["overdue_tasks"]:
        lines += ["", "Overdue:"]
        lines += [f"- #{t['id']} {t['title']}: {t['assignee'] or 'unassigned'}, due {t['due']} "
                  f"({t['days_late']} day(s) late)" for t in d["overdue_tasks"]]
    lines += ["", "## Plans"]
    if d["plans"]:
        lines += ["| Plan | Done | Deadline | Finish | Status |", "|---|--:|---|---|---|"]
        for p in d["plans"]:
            status = p["status"] + (f" ({p['why']})" if p["why"] else "")
            lines.append(f"| #{p['id']} {p['title']} | {p['done']}/{p['tasks']} | {p['deadline'] or '—'} | "
                         f"{p['finish'] or '—'} | {status} |")
    else:
        lines.append("No open plans and nothing finished this week.")
    points = [p for p in d["burndown"][1:] if p["remaining_hours"] is not None]
    first = d["burndown"][0]["remaining_hours"]
    lines += ["", "## Burndown"]
    if points:
        last = points[-1]
        lines.append(f"Open estimate: {first:g} h at the start of the week, "
                     f"{last['remaining_hours']:g} h at the end of {last['day']} {last['date']} "
                     f"(ideal {last['ideal_hours']:g} h).")
    return "\n".join(lines) + "\n"


def to_mrkdwn(markdown: str) -> str:
    """The report as a Slack message: headings bold, each table a monospace block (Slack has no tables)."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
            out.append("```\n" + "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                                            for row in table) + "\n```")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                table.append(cells)
            continue
        flush()
        out.append(f"*{line.lstrip('#').strip()}*" if line.startswith("#") else line)
    flush()
    return "\n".join(out)


# -- the charts -----------------------------------------------------------------------------------


def _workload_chart(people: list[dict[str, Any]], out_dir: Path, start: dt.date) -> Path | None:
    shown = [p for p in people if p["slack_id"]]
    if not shown:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, max(2.5, 0.45 * len(shown) + 1)), dpi=100)
    ax = fig.add_subplot()
    names = [p["name"] for p in shown][::-1]
    ax.barh(names, [p["capacity_hours"] for p in shown][::-1], color="#dddddd", label="capacity")
    colors = ["#d62728" if p["open_hours"] > p["capacity_hours"] else "#1f77b4" for p in shown][::-1]
    ax.barh(names, [p["open_hours"] for p in shown][::-1], height=0.5, color=colors, label="open work")
    ax.set_xlabel("hours")
    ax.set_title(f"Workload against capacity, week of {start}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = out_dir / f"workload-{start}.png"
    fig.savefig(path)
    return path


def _burndown_chart(points: list[dict[str, Any]], out_dir: Path, start: dt.date) -> Path | None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4), dpi=100)
    ax = fig.add_subplot()
    labels = [p["day"] for p in points]
    ax.plot(labels, [p["ideal_hours"] for p in points], linestyle="--", color="#999999", label="ideal")
    actual = [(p["day"], p["remaining_hours"]) for p in points if p["remaining_hours"] is not None]
    ax.plot([a[0] for a in actual], [a[1] for a in actual], marker="o", color="#1f77b4",
            label="open estimate")
    ax.set_ylabel("hours")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Burndown, week of {start}")
    ax.legend()
    fig.tight_layout()
    path = out_dir / f"burndown-{start}.png"
    fig.savefig(path)
    return path
