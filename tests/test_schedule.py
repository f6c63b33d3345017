"""Earliest-start schedule: dependency order, hours to working days, weekends, deadline warnings, cycles."""

from __future__ import annotations

import datetime as dt

import pytest

from planner.errors import InvalidPlanError
from planner.schedule import schedule_plan, topological_order, workdays_between
from planner.types import Subtask

MON = dt.date(2026, 12, 7)  # a Monday
FRI = dt.date(2026, 12, 11)


def _by_id(slots):  # type: ignore[no-untyped-def]
    return {s.subtask_id: (s.start, s.due) for s in slots}


def test_dependencies_start_after_their_prerequisites() -> None:
    tasks = [Subtask("3", "ship", estimate_hours=6, depends_on=("1", "2")),
             Subtask("1", "draft", estimate_hours=12),
             Subtask("2", "review", estimate_hours=3, depends_on=("1",))]
    assert [t.id for t in topological_order(tasks)] == ["1", "2", "3"]
    slots, warnings = schedule_plan(tasks, today=MON, deadline=None)
    assert [s.subtask_id for s in slots] == ["3", "1", "2"]  # the caller's order
    assert _by_id(slots) == {
        "1": (MON, MON + dt.timedelta(days=1)),  # 12 h = two 6-hour days
        "2": (MON + dt.timedelta(days=2), MON + dt.timedelta(days=2)),
        "3": (MON + dt.timedelta(days=2), MON + dt.timedelta(days=3)),  # 3 h left on Wed, then 3 h Thu
    }
    assert warnings == []


def test_short_steps_share_a_day_and_parallel_steps_start_together() -> None:
    tasks = [Subtask("1", "a", estimate_hours=2), Subtask("2", "b", estimate_hours=3, depends_on=("1",)),
             Subtask("3", "c", estimate_hours=1)]
    slots, _ = schedule_plan(tasks, today=MON, deadline=MON)
    assert _by_id(slots) == {"1": (MON, MON), "2": (MON, MON), "3": (MON, MON)}


def test_weekends_are_skipped() -> None:
    sat = dt.date(2026, 12, 12)
    tasks = [Subtask("1", "a", estimate_hours=6), Subtask("2", "b", estimate_hours=12, depends_on=("1",))]
    slots, _ = schedule_plan(tasks, today=sat, deadline=None)
    mon2 = dt.date(2026, 12, 14)
    assert _by_id(slots) == {"1": (mon2, mon2), "2": (mon2 + dt.timedelta(days=1), mon2 + dt.timedelta(days=2))}
    slots, _ = schedule_plan(tasks[:1] + [Subtask("2", "b", estimate_hours=30, depends_on=("1",))],
                             today=FRI, deadline=None)
    assert _by_id(slots)["2"] == (mon2, dt.date(2026, 12, 18))
    calendar, _ = schedule_plan(tasks, today=sat, deadline=None, workdays_only=False)
    assert _by_id(calendar)["1"] == (sat, sat)
    assert workdays_between(MON, dt.date(2026, 12, 20)) == 10


def test_a_deadline_the_critical_path_misses_is_flagged() -> None:
    tasks = [Subtask("1", "a", estimate_hours=12), Subtask("2", "b", estimate_hours=18, depends_on=("1",)),
             Subtask("3", "c", estimate_hours=6, depends_on=("2",)), Subtask("4", "side", estimate_hours=3)]
    wed = dt.date(2026, 12, 9)
    slots, warnings = schedule_plan(tasks, today=MON, deadline=wed)
    assert warnings == [
        ("the plan needs 6 working days but the deadline Wed 2026-12-09 leaves 3: the longest chain 1 -> 2 -> 3 "
        "takes 36 h at 6 h a day; move the deadline, shorten those steps or split them")
    ]
    assert max(s.due for s in slots) == dt.date(2026, 12, 14)  # the real finish is shown, not clipped
    assert schedule_plan(tasks, today=MON, deadline=dt.date(2026, 12, 14))[1] == []


def test_a_past_deadline_is_flagged() -> None:
    _, warnings = schedule_plan([Subtask("1", "a")], today=FRI, deadline=MON)
    assert warnings == ["the deadline Mon 2026-12-07 is already past (today is Fri 2026-12-11)"]


def test_cycles_and_unknown_dependencies_raise() -> None:
    cyc = [Subtask("1", "a", depends_on=("3",)), Subtask("2", "b", depends_on=("1",)),
           Subtask("3", "c", depends_on=("2",)), Subtask("4", "d")]
    with pytest.raises(InvalidPlanError, match=r"cycle: 1 -> 3 -> 2 -> 1"):
        schedule_plan(cyc, today=MON, deadline=None)
    with pytest.raises(InvalidPlanError, match="depends on itself"):
        topological_order([Subtask("1", "a", depends_on=("1",))])
    with pytest.raises(InvalidPlanError, match="depends on '7', which is not in the plan"):
        topological_order([Subtask("1", "a", depends_on=("7",))])
    with pytest.raises(InvalidPlanError, match="hours_per_day"):
        schedule_plan([Subtask("1", "a")], today=MON, deadline=None, hours_per_day=0)
