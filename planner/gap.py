"""Generalized assignment (GAP) engine: fast heuristics first, then HiGHS warm-started from them.

solve_gap is the public entry for plain GAP instances (OR-Library, Yagiura); solve_model also takes a
peak-utilisation term and a cost for leaving a job out, which planner.assign uses. Inside, objectives are
minimised. Order of work: greedy starts and local search, and for a pure GAP a Lagrangian heuristic from
the LP duals (planner.gap_search, about a fifth of the time limit; it may already prove optimality), then
HiGHS with the rest of the time, keeping the better solution and the better bound.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from planner.errors import TaskwrightError
from planner.gap_search import search

log = logging.getLogger(__name__)

EPS = 1e-9
TOL = 1e-9
_highs_lock = threading.Lock()
_highs_banner_done = False
MIP_OPTIONS: dict[str, object] = {}  # extra HiGHS options, for experiments
PRESOLVE_MAX_COLS = 10_000  # above this HiGHS's presolve made setup take 20x longer on synthetic teams
SETUP_S_PER_COL = 40e-6  # HiGHS setup time per column seen on 2 busy cores (27 s for 1M), to skip hopeless starts


@dataclass(frozen=True)
class GapResult:
    """assignment[j] is the agent of job j (-1 = unassigned); objective and bound are in the caller's sense."""

    assignment: np.ndarray
    objective: float
    bound: float
    proved_optimal: bool
    seconds: float
    method: str
    feasible: bool

    @property
    def gap(self) -> float:
        """Relative distance between objective and bound (0 when proved optimal, nan when no bound)."""
        if not np.isfinite(self.bound) or not self.feasible:
            return float("nan")
        return abs(self.bound - self.objective) / max(1.0, abs(self.bound))


@dataclass
class GapModel:
    """Minimise sum cost*x + lam * peak utilisation (+ skip_cost per job left out when not require_all).

    cost is inf where a pair is forbidden; utilisation is (load0 + assigned weight) / ucap per agent.
    """

    cost: np.ndarray
    weight: np.ndarray
    cap: np.ndarray
    require_all: bool = True
    lam: float = 0.0
    load0: np.ndarray | None = None
    ucap: np.ndarray | None = None
    skip_cost: float = 0.0

    @property
    def allowed(self) -> np.ndarray:
        return np.isfinite(self.cost) & (self.weight <= self.cap[:, None] + EPS)


def solve_gap(
    profit_or_cost: np.ndarray,
    weight: np.ndarray,
    capacity: np.ndarray,
    *,
    sense: Literal["max", "min"] = "max",
    time_limit_s: float = 10.0,
    start: np.ndarray | None = None,
    require_all: bool = True,
) -> GapResult:
    """Solve a generalized assignment problem (agents x jobs); forbidden pairs may be given as nan/inf."""
    c = np.asarray(profit_or_cost, dtype=float)
    w, b = np.asarray(weight, dtype=float), np.asarray(capacity, dtype=float)
    if c.ndim != 2 or w.shape != c.shape or b.shape != (c.shape[0],):
        raise TaskwrightError(f"GAP shapes do not agree: cost {c.shape}, weight {w.shape}, capacity {b.shape}")
    if sense not in ("max", "min"):
        raise TaskwrightError(f"sense must be 'max' or 'min', not {sense!r}")
    cost = np.where(np.isfinite(c), -c if sense == "max" else c, np.inf)
    res = solve_model(GapModel(cost, w, b, require_all), time_limit_s=time_limit_s, start=start)
    flip = -1.0 if sense == "max" else 1.0
    return GapResult(res.assignment, flip * res.objective, flip * res.bound, res.proved_optimal,
                     res.seconds, res.method, res.feasible)


def solve_model(model: GapModel, *, time_limit_s: float, start: np.ndarray | None = None) -> GapResult:
    """Heuristic start, then HiGHS under what is left of the time limit; objective is minimised."""
    t0 = time.perf_counter()
    m, n = model.cost.shape
    if n == 0:
        return GapResult(np.zeros(0, dtype=int), 0.0, 0.0, True, 0.0, "empty", True)
    mip_ok = m > 0 and _mip_columns(model) * SETUP_S_PER_COL <= 0.5 * time_limit_s
    share = 0.2 if mip_ok else 1.0  # when HiGHS cannot start in time, the search gets all of it
    duals = _lp_duals(model) if mip_ok and model.require_all and not model.lam else None
    asg, method, low = search(model, start, t0 + max(0.02, share * time_limit_s), duals=duals)
    ok = _is_valid(model, asg)
    obj = _objective(model, asg) if ok else np.inf
    bound = low if np.isfinite(low) else np.nan
    proved = ok and np.isfinite(low) and obj - low < (1 - 1e-6 if _integral(model) else 1e-9)
    left = time_limit_s - (time.perf_counter() - t0)
    if left > 0.01 and mip_ok and not proved:
        mip_asg, mip_bound, proved = _mip(model, asg if ok else None, left)
        if not np.isnan(mip_bound):
            bound = mip_bound if np.isnan(bound) else max(bound, mip_bound)
        if mip_asg is not None and _is_valid(model, mip_asg):
            mip_obj = _objective(model, mip_asg)
            if mip_obj < obj - TOL:
                asg, obj, ok, method = mip_asg, mip_obj, True, method + "+highs"
    if ok and _integral(model) and np.isfinite(bound):
        bound = float(np.ceil(bound - 1e-6))
        proved = proved or obj <= bound + 1e-6
    return GapResult(asg, float(obj) if ok else float("nan"), float(bound), bool(proved and ok),
                     time.perf_counter() - t0, method, ok)


def _integral(model: GapModel) -> bool:
    fin = model.cost[np.isfinite(model.cost)]
    return model.lam == 0 and bool(np.all(fin == np.round(fin)))


def _utils(model: GapModel, asg: np.ndarray) -> np.ndarray:
    """Utilisation per agent: (base load + assigned weight) / utilisation capacity."""
    m, _ = model.cost.shape
    load = _loads(model.weight, asg, m)
    if model.ucap is None:
        return load / np.maximum(model.cap, EPS)
    base = model.load0 if model.load0 is not None else np.zeros(m)
    return (base + load) / np.maximum(model.ucap, EPS)


def _loads(weight: np.ndarray, asg: np.ndarray, m: int) -> np.ndarray:
    on = asg >= 0
    return np.bincount(asg[on], weights=weight[asg[on], np.nonzero(on)[0]], minlength=m)[:m]


def _objective(model: GapModel, asg: np.ndarray) -> float:
    on = asg >= 0
    total = float(model.cost[asg[on], np.nonzero(on)[0]].sum()) + model.skip_cost * float(np.sum(~on))
    if model.lam:
        total += model.lam * float(_utils(model, asg).max(initial=0.0))
    return total


def _is_valid(model: GapModel, asg: np.ndarray) -> bool:
    m, n = model.cost.shape
    if asg.shape != (n,) or np.any(asg >= m) or (model.require_all and np.any(asg < 0)):
        return False
    on = asg >= 0
    if not np.all(np.isfinite(model.cost[asg[on], np.nonzero(on)[0]])):
        return False
    return bool(np.all(_loads(model.weight, asg, m) <= model.cap + 1e-7))


# ---------------------------------------------------------------- exact: HiGHS MIP, warm-started


def _new_highs():  # type: ignore[no-untyped-def]
    """A silent Highs; the one-time banner its constructor prints on fd 1 is kept off stdout (JSON output)."""
    global _highs_banner_done
    import highspy

    with _highs_lock:
        if _highs_banner_done:
            h = highspy.Highs()
        else:
            saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, 1)
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(null)
            _highs_banner_done = True
    h.setOptionValue("output_flag", bool(os.environ.get("TW_HIGHS_LOG")))
    return h


def _mip_columns(model: GapModel) -> int:
    _m, n = model.cost.shape
    return int(model.allowed.sum()) + (n if not model.require_all and model.skip_cost else 0) + 1


def _columns(model: GapModel) -> dict[str, np.ndarray]:
    """The MIP in column-wise form: one binary per allowed (job, agent), then skip columns, then U.

    Rows: one per job (= 1, or <= 1 when jobs may be left out at no cost), one capacity row per agent,
    and with a peak term one row per agent: (load0 + sum weight*x) / ucap <= U.
    """
    m, n = model.cost.shape
    jj, ii = np.nonzero(model.allowed.T)
    k, peak = len(jj), model.lam > 0
    skip = not model.require_all and model.skip_cost != 0
    wv = model.weight[ii, jj]
    ucap = np.maximum(model.ucap if model.ucap is not None else model.cap, EPS)
    per = 3 if peak else 2
    index = np.stack([jj, n + ii] + ([n + m + ii] if peak else []), axis=1).ravel()
    value = np.stack([np.ones(k), wv] + ([wv / ucap[ii]] if peak else []), axis=1).ravel()
    starts = [np.arange(0, per * k, per)]
    cost, upper = [model.cost[ii, jj]], [np.ones(k)]
    if skip:
        starts.append(per * k + np.arange(n))
        index, value = np.concatenate([index, np.arange(n)]), np.concatenate([value, np.ones(n)])
        cost.append(np.full(n, float(model.skip_cost)))
        upper.append(np.ones(n))
    row_lo = [np.full(n, 0.0 if not model.require_all and not skip else 1.0), np.full(m, -np.inf)]
    row_hi = [np.ones(n), model.cap.astype(float)]
    if peak:
        base = model.load0 if model.load0 is not None else np.zeros(m)
        starts.append(np.array([len(index)]))
        index, value = np.concatenate([index, n + m + np.arange(m)]), np.concatenate([value, -np.ones(m)])
        cost.append(np.array([model.lam]))
        upper.append(np.array([np.inf]))
        row_lo.append(np.full(m, -np.inf))
        row_hi.append(-base / ucap)
    col_cost = np.concatenate(cost)
    integ = np.ones(len(col_cost), dtype=np.int32)
    if peak:
        integ[-1] = 0
    return {"jj": jj, "ii": ii, "start": np.append(np.concatenate(starts), len(index)).astype(np.int32),
            "index": index.astype(np.int32), "value": value, "cost": col_cost, "upper": np.concatenate(upper),
            "integ": integ, "row_lo": np.concatenate(row_lo), "row_hi": np.concatenate(row_hi)}


def _lp_duals(model: GapModel) -> np.ndarray | None:
    """Duals of the job rows in the LP relaxation (multipliers for the Lagrangian heuristic)."""
    lp = _columns(model)
    n, ncol = model.cost.shape[1], len(lp["cost"])
    if len(lp["jj"]) == 0:
        return None
    h = _new_highs()
    h.passModel(ncol, len(lp["row_lo"]), len(lp["value"]), 1, 1, 0.0, lp["cost"], np.zeros(ncol), lp["upper"],
                lp["row_lo"], lp["row_hi"], lp["start"], lp["index"], lp["value"], np.zeros(ncol, dtype=np.int32))
    h.setOptionValue("time_limit", 5.0)
    h.run()
    if h.getModelStatus() != _highs_status("kOptimal"):
        return None
    return np.asarray(h.getSolution().row_dual)[:n]


def _highs_status(name: str):  # type: ignore[no-untyped-def]
    import highspy

    return getattr(highspy.HighsModelStatus, name)


def _warm_start(model: GapModel, lp: dict[str, np.ndarray], start: np.ndarray) -> np.ndarray:
    m, n = model.cost.shape
    jj, ii, k = lp["jj"], lp["ii"], len(lp["jj"])
    x = np.zeros(len(lp["cost"]))
    pos = np.full((n, m), -1)
    pos[jj, ii] = np.arange(k)
    on = np.nonzero(start >= 0)[0]
    x[pos[on, start[on]]] = 1.0
    if not model.require_all and model.skip_cost != 0:
        x[k + np.nonzero(start < 0)[0]] = 1.0
    if model.lam > 0:
        x[-1] = float(_utils(model, start).max(initial=0.0))
    return x


def _mip(model: GapModel, start: np.ndarray | None, time_limit: float) -> tuple[np.ndarray | None, float, bool]:
    """Solve the MIP with HiGHS (2 threads); returns (assignment or None, lower bound, proved optimal).

    HiGHS does not check its time limit while it sets up a large model (presolve, clique table), so
    presolve is off for big models and a model whose setup alone would overrun the limit is not started.
    """
    import highspy

    _m, n = model.cost.shape
    lp = _columns(model)
    ncol = len(lp["cost"])
    if len(lp["jj"]) == 0 or ncol * SETUP_S_PER_COL > 0.5 * time_limit:
        log.info("HiGHS skipped: %d columns will not set up within %.1f s", ncol, time_limit)
        return None, np.nan, False
    h = _new_highs()
    h.passModel(ncol, len(lp["row_lo"]), len(lp["value"]), 1, 1, 0.0, lp["cost"], np.zeros(ncol), lp["upper"],
                lp["row_lo"], lp["row_hi"], lp["start"], lp["index"], lp["value"], lp["integ"])
    h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
    h.setOptionValue("threads", 2)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1 - 1e-6 if _integral(model) else 1e-7)
    if ncol > PRESOLVE_MAX_COLS:
        h.setOptionValue("presolve", "off")
    for key, val in MIP_OPTIONS.items():
        h.setOptionValue(key, val)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = _warm_start(model, lp, start)
        h.setSolution(sol)
    h.run()
    info, status = h.getInfo(), h.getModelStatus()
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else np.nan
    if status == highspy.HighsModelStatus.kInfeasible:
        return None, np.inf, False
    if info.primal_solution_status != 2:
        return None, bound, False
    x = np.asarray(h.getSolution().col_value)[: len(lp["jj"])]
    asg = np.full(n, -1)
    on = x > 0.5
    asg[lp["jj"][on]] = lp["ii"][on]
    return asg, bound, status == highspy.HighsModelStatus.kOptimal
