"""Earliest-start schedule along a plan's dependencies, in working hours, checked against the deadline.

Each subtask starts when all its dependencies are finished (work is counted in hours, hours_per_day to a
working day, so two 3-hour steps can share a day) and is due on the day it finishes. People are not
modelled here: the assignment already keeps each member within capacity. A deadline the critical path
cannot meet gives a warning naming that path; it is never hidden.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence

from planner.errors import InvalidPlanError
from planner.types import Slot, Subtask

log = logging.getLogger(__name__)


def topological_order(subtasks: Sequence[Subtask]) -> list[Subtask]:
    """Subtasks with every dependency before its dependents (stable); raises on unknown ids and cycles."""
    by_id = {t.id: t for t in subtasks}
    if len(by_id) != len(subtasks):
        raise InvalidPlanError("two subtasks share an id; give every subtask its own id")
    for t in subtasks:
        for d in t.depends_on:
            if d not in by_id:
                raise InvalidPlanError(f"subtask {t.id} depends on {d!r}, which is not in the plan")
            if d == t.id:
                raise InvalidPlanError(f"subtask {t.id} depends on itself")
    order: list[Subtask] = []
    placed: set[str] = set()
    pending = list(subtasks)
    while pending:
        ready = [t for t in pending if all(d in placed for d in t.depends_on)]
        if not ready:
            raise InvalidPlanError(f"the dependencies form a cycle: {_cycle(pending)}; remove one of them")
        order.extend(ready)
        placed.update(t.id for t in ready)
        pending = [t for t in pending if t.id not in placed]
    return order


def _cycle(pending: list[Subtask]) -> str:
    """One cycle among subtasks that never became ready, e.g. "2 -> 3 -> 2"."""
    left = {t.id: t for t in pending}
    path = [pending[0].id]
    while True:
        nxt = next(d for d in left[path[-1]].depends_on if d in left)
        if nxt in path:
            return " -> ".join(path[path.index(nxt):] + [nxt])
        path.append(nxt)


def next_workday(day: dt.date, *, workdays_only: bool = True) -> dt.date:
    """day itself, or the Monday after it when it falls on a weekend."""
    while workdays_only and day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def add_workdays(day: dt.date, count: int, *, workdays_only: bool = True) -> dt.date:
    """The date count working days after day (day is assumed to be a working day)."""
    while count > 0:
        day = next_workday(day + dt.timedelta(days=1), workdays_only=workdays_only)
        count -= 1
    return day


def workdays_between(first: dt.date, last: dt.date, *, workdays_only: bool = True) -> int:
    """Working days from first to last, both included (0 when last is before first)."""
    days = (last - first).days + 1
    if days <= 0:
        return 0
    if not workdays_only:
        return days
    weeks, rest = divmod(days, 7)
    extra = sum(1 for k in range(rest) if (first.weekday() + k) % 7 < 5)
    return weeks * 5 + extra


def schedule_plan(
    subtasks: Sequence[Subtask],
    *,
    today: dt.date,
    deadline: dt.date | None,
    hours_per_day: float = 6.0,
    workdays_only: bool = True,
) -> tuple[list[Slot], list[str]]:
    """Earliest start and due date of every subtask (in the given order), plus warnings about the deadline."""
    if hours_per_day <= 0:
        raise InvalidPlanError(f"hours_per_day must be positive, not {hours_per_day}")
    order = topological_order(subtasks)
    first = next_workday(today, workdays_only=workdays_only)
    start_h: dict[str, float] = {}
    end_h: dict[str, float] = {}
    for t in order:
        start_h[t.id] = max((end_h[d] for d in t.depends_on), default=0.0)
        end_h[t.id] = start_h[t.id] + max(float(t.estimate_hours), 0.0)
    slots = []
    for t in subtasks:
        s_day = _day_index(start_h[t.id], hours_per_day, end=False)
        e_day = max(s_day, _day_index(end_h[t.id], hours_per_day, end=True))
        slots.append(Slot(subtask_id=t.id, start=add_workdays(first, s_day, workdays_only=workdays_only),
                          due=add_workdays(first, e_day, workdays_only=workdays_only)))
    warnings = _deadline_warnings(subtasks, end_h, today, first, deadline, hours_per_day, workdays_only)
    return slots, warnings


def _day_index(hours: float, per_day: float, *, end: bool) -> int:
    """Working-day index (0 = first day) an hour offset falls on; an end on a day boundary stays on it."""
    if end:
        return max(math.ceil(hours / per_day - 1e-9) - 1, 0)
    return math.floor(hours / per_day + 1e-9)


def _critical_path(subtasks: Sequence[Subtask], end_h: dict[str, float]) -> list[str]:
    by_id = {t.id: t for t in subtasks}
    node = max(subtasks, key=lambda t: end_h[t.id]).id
    path = [node]
    while by_id[node].depends_on:
        node = max(by_id[node].depends_on, key=lambda d: end_h[d])
        path.append(node)
    return path[::-1]


def _deadline_warnings(subtasks: Sequence[Subtask], end_h: dict[str, float], today: dt.date, first: dt.date,
                       deadline: dt.date | None, per_day: float, workdays_only: bool) -> list[str]:
    if deadline is None or not subtasks:
        return []
    label = deadline.strftime("%a %Y-%m-%d")
    if deadline < today:
        return [f"the deadline {label} is already past (today is {today.strftime('%a %Y-%m-%d')})"]
    total = max(end_h.values())
    need = max(math.ceil(total / per_day - 1e-9), 1)
    have = workdays_between(first, deadline, workdays_only=workdays_only)
    if need <= have:
        return []
    path = _critical_path(subtasks, end_h)
    hours = sum(max(float(t.estimate_hours), 0.0) for t in subtasks if t.id in set(path))
    unit = "working day" if workdays_only else "day"
    log.info("deadline %s cannot be met: %d %ss needed, %d left", deadline, need, unit, have)
    return [
        (f"the plan needs {need} {unit}s but the deadline {label} leaves {have}: the longest chain "
        f"{' -> '.join(path)} takes {hours:g} h at {per_day:g} h a day; move the deadline, shorten those "
        f"steps or split them")
    ]
