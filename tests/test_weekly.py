"""Weekly report on a real SQLite store seeded through its public API; event times set to a known week."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.store import Store
from generation.reports.weekly import weekly_report
from planner.types import Assignment, DraftPlan, Member, Slot, Subtask

TODAY = dt.date(2026, 3, 11)  # a Wednesday: the week is Mon 9 to Sun 15 March
ANA = Member("Ana", "U0ANA", {"python": 4}, capacity_hours=40)
BO = Member("Bo", "U0BO", {"sql": 3}, capacity_hours=10)
CY = Member("Cy", "U0CY", {"design": 5}, capacity_hours=20)


def _plan(store: Store, title: str, deadline: str, tasks: list[tuple[Member, float, str]]) -> list[int]:
    subs = tuple(Subtask(str(i + 1), f"{title} step {i + 1}", estimate_hours=h)
                 for i, (_, h, _) in enumerate(tasks))
    draft = DraftPlan(request=title, title=title, subtasks=subs, source="test",
                      deadline=dt.date.fromisoformat(deadline))
    assigns = [Assignment(s.id, m, "fits") for s, (m, _, _) in zip(subs, tasks)]
    slots = [Slot(s.id, dt.date(2026, 3, 2), dt.date.fromisoformat(due))
             for s, (_, _, due) in zip(subs, tasks)]
    plan = store.save_plan(draft, assigns, slots, requester="U0ANA")
    return [t.id for t in plan.tasks]


def _at(store: Store, task_id: int, action: str, when: str) -> None:
    """Move a task's audit event to a chosen time (the store stamps events with the real clock)."""
    store.db.execute("UPDATE task_events SET at = ? WHERE task_id = ? AND action = ?",
                     [when, task_id, action])
    store.db.conn.commit()


def _set(store: Store, task_id: int, status: str, when: str) -> None:
    store.set_status(task_id, status, actor="U0ANA")
    _at(store, task_id, status, when)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "home" / "taskwright.db")
    s.save_members([ANA, BO, CY])
    launch = _plan(s, "Launch", "2026-03-20",
                   [(ANA, 8, "2026-03-10"), (BO, 12, "2026-03-13"), (CY, 6, "2026-03-18")])
    hiring = _plan(s, "Hiring", "2026-03-20", [(ANA, 4, "2026-03-09")])
    old = _plan(s, "Old", "2026-03-06", [(BO, 2, "2026-03-05"), (CY, 3, "2026-03-06")])
    closed = _plan(s, "Closed", "2026-03-12", [(CY, 5, "2026-03-09")])
    later = _plan(s, "Later", "2026-03-30", [(CY, 1, "2026-03-25")])
    for tid in launch + hiring + old + closed:
        _at(s, tid, "create", "2026-03-02T09:00:00+00:00")
    _at(s, later[0], "create", "2026-03-12T09:00:00+00:00")  # after "today": not in this report
    _set(s, launch[0], "accepted", "2026-03-09T10:00:00+00:00")
    _set(s, launch[0], "done", "2026-03-10T15:00:00+00:00")
    _set(s, launch[1], "accepted", "2026-03-09T11:00:00+00:00")
    _set(s, hiring[0], "accepted", "2026-03-09T12:00:00+00:00")
    _set(s, old[0], "done", "2026-03-05T17:00:00+00:00")  # last week: not counted
    _set(s, closed[0], "done", "2026-03-09T16:00:00+00:00")
    return s


def test_people_counts(store: Store, tmp_path: Path) -> None:
    r = weekly_report(store, today=TODAY, out_dir=tmp_path / "out")
    people = {p["name"]: p for p in r.data["people"]}
    assert set(people) == {"Ana", "Bo", "Cy"}
    assert (people["Ana"]["done"], people["Ana"]["in_progress"], people["Ana"]["overdue"]) == (1, 1, 1)
    assert (people["Bo"]["done"], people["Bo"]["in_progress"], people["Bo"]["overdue"]) == (0, 1, 0)
    assert (people["Cy"]["done"], people["Cy"]["proposed"], people["Cy"]["overdue"]) == (1, 2, 1)
    assert (people["Ana"]["open_hours"], people["Bo"]["open_hours"], people["Cy"]["open_hours"]) == (4, 12, 9)
    assert r.data["totals"] == {"done": 2, "in_progress": 2, "overdue": 2, "proposed": 2}
    assert {t["title"] for t in r.data["overdue_tasks"]} == {"Hiring step 1", "Old step 2"}
    assert "| Bo | 0 | 1 | 0 | 12 / 10 (120%) |" in r.markdown
    assert "2 done this week, 2 in progress, 2 overdue" in r.markdown


def test_plans_on_track_or_late(store: Store, tmp_path: Path) -> None:
    r = weekly_report(store, today=TODAY, out_dir=tmp_path / "out")
    plans = {p["title"]: p for p in r.data["plans"]}
    assert set(plans) == {"Launch", "Hiring", "Old", "Closed"}
    assert plans["Launch"]["status"] == "on track" and plans["Launch"]["done"] == 1
    assert plans["Hiring"]["status"] == "late" and "1 task(s) overdue" in plans["Hiring"]["why"]
    assert plans["Old"]["status"] == "late" and "deadline 2026-03-06 passed" in plans["Old"]["why"]
    assert plans["Closed"]["status"] == "done"


def test_burndown_replays_the_audit_log(store: Store, tmp_path: Path) -> None:
    r = weekly_report(store, today=TODAY, out_dir=tmp_path / "out")
    points = r.data["burndown"]
    # In scope: 8 + 12 + 6 + 4 + 3 + 5 = 38 h open on Monday morning; Cy's 5 h done Monday, Ana's 8 h Tuesday.
    assert [p["remaining_hours"] for p in points] == [38, 33, 25, 25, None, None, None, None]
    assert points[-1]["ideal_hours"] == 0 and points[0]["ideal_hours"] == 38
    assert "38 h at the start of the week, 25 h at the end of Wed 2026-03-11" in r.markdown
    assert [c.name for c in r.charts] == ["workload-2026-03-09.png", "burndown-2026-03-09.png"]
    assert all(c.read_bytes()[:4] == b"\x89PNG" for c in r.charts)


def test_a_past_day_counts_what_was_true_then(store: Store, tmp_path: Path) -> None:
    r = weekly_report(store, today=dt.date(2026, 3, 9), out_dir=tmp_path / "out")
    people = {p["name"]: p for p in r.data["people"]}
    assert people["Ana"]["done"] == 0 and people["Ana"]["in_progress"] == 2  # task 1 was done on Tuesday
    assert [p["remaining_hours"] for p in r.data["burndown"][:2]] == [38, 33]


def test_empty_store(tmp_path: Path) -> None:
    r = weekly_report(Store(tmp_path / "empty.db"), today=TODAY, out_dir=tmp_path / "out")
    assert "No team members yet" in r.markdown and "No open plans" in r.markdown
    assert r.data["totals"] == {"done": 0, "in_progress": 0, "overdue": 0, "proposed": 0}


def test_cli_prints_markdown_and_writes_charts(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "charts"
    result = CliRunner().invoke(cli, ["report", "weekly", "--today", "2026-03-11", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "# Weekly report: 2026-03-09 to 2026-03-15" in result.output
    assert "| Ana | 1 | 1 | 1 |" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["burndown-2026-03-09.png", "workload-2026-03-09.png"]
    bad = CliRunner().invoke(cli, ["report", "weekly", "--today", "11/03/2026"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
    no_channel = CliRunner().invoke(cli, ["report", "weekly", "--today", "2026-03-11", "--post"])
    assert no_channel.exit_code != 0 and "TASKWRIGHT_REPORT_CHANNEL" in no_channel.output
