"""Assign subtasks to team members: maximise skill fit, stay within free capacity, balance load.

The model (solved by planner.gap), for n subtasks: maximise
    sum fit[j, i] * x[j, i]  -  balance * n * U  -  B * (subtasks left out)
where U bounds the utilisation (open + assigned hours) / capacity of every member who can take work in this
plan, each member gets at most their free capacity (capacity - open hours), and each subtask goes to at
most one member. So `balance` is the fit per subtask worth giving up to lower the peak utilisation by 1
(0.25: raising someone to the peak by 0.2 must buy 0.05 of fit per subtask). B = (1 + balance) * n + 1
makes covering one more subtask worth more than any fit or balance gain, so a subtask stays unassigned
only when nobody can take it; it then gets a reason saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np

from planner.errors import TaskwrightError
from planner.fit import FitMatrix, SkillMatch
from planner.gap import GapModel, GapResult, solve_gap, solve_model
from planner.types import Assignment, Member, Subtask

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BALANCE", "DEFAULT_MIN_FIT", "GapResult", "assign_subtasks", "coverage_bonus", "next_best",
           "solve_assignment", "solve_gap"]

DEFAULT_MIN_FIT = 0.25  # below this nobody is trusted with the work (see planner.fit for the scale)
DEFAULT_BALANCE = 0.25


def assign_subtasks(
    subtasks: Sequence[Subtask],
    members: Sequence[Member],
    *,
    fit: FitMatrix,
    open_hours: Mapping[str, float] | None = None,
    time_limit_s: float = 0.5,
    exclude: Mapping[str, set[str]] | None = None,
    min_fit: float = DEFAULT_MIN_FIT,
    balance: float = DEFAULT_BALANCE,
) -> list[Assignment]:
    """One Assignment per subtask, in order; open_hours and exclude are keyed by member slack_id.

    A pair is allowed when the fit is at least min_fit, the estimate fits the member's free capacity and
    the member is not in exclude[subtask.id]. Members with capacity 0 never get work.
    """
    t0 = time.perf_counter()
    if not subtasks:
        return []
    _check(subtasks, members)
    open_hours, exclude = open_hours or {}, exclude or {}
    F = _fit_rows(subtasks, members, fit)
    hours = np.array([max(float(t.estimate_hours), 0.0) for t in subtasks])
    cap = np.array([max(float(m.capacity_hours), 0.0) for m in members])
    used = np.array([max(float(open_hours.get(m.slack_id, 0.0)), 0.0) for m in members])
    free = np.maximum(cap - used, 0.0)
    allowed = _allowed(subtasks, members, F, hours, free, cap, exclude, min_fit)
    left = 0.85 * (time_limit_s - (time.perf_counter() - t0))  # HiGHS may overrun a little; reasons follow
    asg = solve_assignment(F, hours, cap, used, allowed=allowed, balance=balance, time_limit_s=left).assignment
    out = _explain(subtasks, members, fit, F, hours, cap, used, free, allowed, asg, exclude, min_fit)
    log.info("assigned %d of %d subtasks in %.3f s", sum(a.member is not None for a in out), len(out),
             time.perf_counter() - t0)
    return out


def next_best(
    subtask: Subtask,
    members: Sequence[Member],
    *,
    fit: FitMatrix,
    open_hours: Mapping[str, float] | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
    min_fit: float = DEFAULT_MIN_FIT,
    balance: float = DEFAULT_BALANCE,
) -> Assignment:
    """The best member for one subtask apart from those in exclude (slack_ids), for Reassign.

    open_hours should not count this subtask's own hours for its current assignee.
    """
    return assign_subtasks([subtask], members, fit=fit, open_hours=open_hours,
                           exclude={subtask.id: set(exclude)}, min_fit=min_fit, balance=balance)[0]


def _check(subtasks: Sequence[Subtask], members: Sequence[Member]) -> None:
    ids = [t.id for t in subtasks]
    if len(set(ids)) != len(ids):
        raise TaskwrightError(f"subtask ids must be unique, got {ids}")
    slack = [m.slack_id for m in members]
    if len(set(slack)) != len(slack):
        raise TaskwrightError("two team members share a slack_id; fix the roster (`taskwright team list`)")


def _fit_rows(subtasks: Sequence[Subtask], members: Sequence[Member], fit: FitMatrix) -> np.ndarray:
    """Fit scores (subtasks x members) in the callers' order; members missing from the matrix fit 0."""
    rows = [fit.index(t.id) for t in subtasks]
    col = {mid: i for i, mid in enumerate(fit.member_ids)}
    F = np.zeros((len(subtasks), len(members)))
    for i, m in enumerate(members):
        if m.slack_id in col:
            F[:, i] = fit.scores[rows, col[m.slack_id]]
    return F


def _allowed(subtasks: Sequence[Subtask], members: Sequence[Member], F: np.ndarray, hours: np.ndarray,
             free: np.ndarray, cap: np.ndarray, exclude: Mapping[str, set[str]], min_fit: float) -> np.ndarray:
    ok = (F >= min_fit - 1e-12) & (hours[:, None] <= free[None, :] + 1e-9) & (cap[None, :] > 0)
    col = {m.slack_id: i for i, m in enumerate(members)}
    for j, t in enumerate(subtasks):
        for sid in exclude.get(t.id, ()):
            if sid in col:
                ok[j, col[sid]] = False
    return ok


def coverage_bonus(n_subtasks: int, balance: float) -> float:
    """Penalty per subtask left out: more than any fit or balance gain, so coverage comes first."""
    return (1.0 + balance) * n_subtasks + 1.0


def solve_assignment(
    fit: np.ndarray,
    hours: np.ndarray,
    capacity: np.ndarray,
    open_hours: np.ndarray,
    *,
    allowed: np.ndarray | None = None,
    balance: float = DEFAULT_BALANCE,
    time_limit_s: float = 0.5,
) -> GapResult:
    """The array form of assign_subtasks: fit is (subtasks x members); result.assignment[j] is a member index.

    result.objective and result.bound are in model units, minimised: -fit per assigned subtask, plus
    coverage_bonus per subtask left out, plus balance * n * peak utilisation.
    """
    n, _m = fit.shape
    cap = np.maximum(np.asarray(capacity, dtype=float), 0.0)
    used = np.maximum(np.asarray(open_hours, dtype=float), 0.0)
    free = np.maximum(cap - used, 0.0)
    if allowed is None:
        allowed = (hours[:, None] <= free[None, :] + 1e-9) & (cap[None, :] > 0)
    takers = allowed.any(axis=0)
    if not takers.any():
        return GapResult(np.full(n, -1), 0.0, 0.0, True, 0.0, "nobody", True)
    cost = np.where(allowed.T, -fit.T, np.inf)[takers]
    ucap = np.where(cap > 0, cap, np.inf)[takers]
    model = GapModel(cost=cost, weight=np.tile(hours.astype(float), (int(takers.sum()), 1)),
                     cap=free[takers], require_all=False, lam=balance * n, load0=used[takers], ucap=ucap,
                     skip_cost=coverage_bonus(n, balance))
    res = solve_model(model, time_limit_s=max(time_limit_s, 0.02))
    idx = np.nonzero(takers)[0]
    asg = np.where(res.assignment >= 0, idx[np.maximum(res.assignment, 0)], -1)
    return GapResult(asg, res.objective, res.bound, res.proved_optimal, res.seconds, res.method, res.feasible)


def _h(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _explain(subtasks: Sequence[Subtask], members: Sequence[Member], fit: FitMatrix, F: np.ndarray,
             hours: np.ndarray, cap: np.ndarray, used: np.ndarray, free: np.ndarray, allowed: np.ndarray,
             asg: np.ndarray, exclude: Mapping[str, set[str]], min_fit: float) -> list[Assignment]:
    running = used.copy()
    left = free - np.bincount(asg[asg >= 0], weights=hours[asg >= 0], minlength=len(members))
    out = []
    for j, t in enumerate(subtasks):
        i = int(asg[j])
        if i < 0:
            why = _why_not(t, j, members, F, hours, cap, free, left, exclude, min_fit)
            out.append(Assignment(subtask_id=t.id, member=None, why=why, fit=0.0))
            continue
        running[i] += hours[j]
        _, pair = fit.cell(t.id, members[i].slack_id)
        skill = _skill_text(pair, t)
        why = f"{skill}; {_h(running[i])} of {_h(cap[i])} h used after this"
        out.append(Assignment(subtask_id=t.id, member=members[i], why=why, fit=round(float(F[j, i]), 4)))
    return out


def _skill_text(pair: SkillMatch | None, t: Subtask) -> str:
    if pair is not None:
        return f"skills {pair.describe()}"
    if not t.skills:
        return "no skills listed, so chosen for free capacity"
    return "fit by default"


def _why_not(t: Subtask, j: int, members: Sequence[Member], F: np.ndarray, hours: np.ndarray,
             cap: np.ndarray, free: np.ndarray, left: np.ndarray, exclude: Mapping[str, set[str]],
             min_fit: float) -> str:
    """A checkable sentence for why subtask j has nobody."""
    avail = [i for i, m in enumerate(members) if cap[i] > 0 and m.slack_id not in exclude.get(t.id, ())]
    if not avail:
        if any(cap > 0):
            names = ", ".join(m.name for m in members if m.slack_id in exclude.get(t.id, ()))
            return f"no other member is available (excluded: {names})"
        return "the team has no member with capacity for work; add members with `taskwright team add`"
    best = max(avail, key=lambda i: F[j, i])
    if F[j, best] < min_fit:
        skills = ", ".join(f"'{s}'" for s in t.skills)
        return f"no member's skills fit {skills} (best {F[j, best]:.2f}: {members[best].name})"
    fits = [i for i in avail if F[j, i] >= min_fit]
    roomiest = max(fits, key=lambda i: free[i])
    if free[roomiest] + 1e-9 < hours[j]:
        who = "nobody" if max(free[i] for i in avail) + 1e-9 < hours[j] else "nobody whose skills fit"
        return (f"{who} has free capacity for {_h(hours[j])} h "
                f"(most free: {members[roomiest].name} {_h(free[roomiest])} h)")
    after = max(fits, key=lambda i: left[i])
    return (f"the members who fit are booked by other subtasks of this plan "
            f"(most free after it: {members[after].name} {_h(max(left[after], 0.0))} h)")
