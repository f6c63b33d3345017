"""The GAP engine's heuristic side: greedy starts, move/swap/ejection-chain local search, Lagrangian search.

Works on a minimisation model (planner.gap.GapModel). When jobs may stay unassigned, a dummy agent (the
last row, unlimited capacity, cost = the model's skip_cost) stands for "unassigned", so every move below
also covers assigning and unassigning. Everything is vectorised with numpy and stops at a deadline.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from planner.gap import GapModel

log = logging.getLogger(__name__)

EPS = 1e-9
TOL = 1e-9
LR_STALL = 5
LR_THETA = 0.1
LR_SHAKE = 0.02
LR_POLISH = 0.05  # polish (full local search) candidates within 5 % of the best


def search(model: GapModel, start: np.ndarray | None, deadline: float, *,
           duals: np.ndarray | None = None) -> tuple[np.ndarray, str, float]:
    """Best of a plain greedy, several regret-greedy runs and a valid start, improved by local search.

    For a pure GAP with integer weights, a Lagrangian heuristic starting from duals (the LP duals of
    the job rows, when given) then searches further and also yields a lower bound (else -inf).
    """
    ext = Extended(model)
    starts: list[tuple[np.ndarray, str]] = []
    if start is not None:
        s = np.where(np.asarray(start, dtype=int) < 0, ext.dummy if ext.dummy is not None else -1, start)
        if not np.any(s < 0) and ext.feasible(s):
            starts.append((s, "start"))
    starts.append((_first_fit(ext), "greedy"))
    for d in ext.desirabilities():  # past the deadline only while no start places every job
        complete = any(not np.any(a < 0) for a, _ in starts)
        if complete and time.perf_counter() > deadline:
            break
        found = _regret_greedy(ext, d, deadline if complete else np.inf)
        if found is not None:
            starts.append((found, "greedy"))
    best, why = min(starts, key=lambda s: ext.score(s[0]))
    score0, low = ext.score(best), -np.inf
    if _knapsack_ready(ext):
        found, low = _lagrangian(ext, best.copy() if score0[0] == 0 else None, deadline, v0=duals)
        if found is not None and ext.score(found) < score0:
            best, why = found, "lagrangian+ls"
    elif score0[0] == 0:
        improved = best.copy()
        _descend(ext, improved, deadline)
        if ext.score(improved) < score0:
            best, why = improved, why + "+ls"
    return ext.to_plain(best), why, low


class Extended:
    """The model as dense arrays, with the dummy agent appended when jobs may stay unassigned."""

    def __init__(self, model: GapModel) -> None:
        m, n = model.cost.shape
        self.m_real = m
        allowed = model.allowed
        c, w, cap = np.where(allowed, model.cost, 0.0), model.weight.astype(float), model.cap.astype(float)
        ucap = model.ucap if model.ucap is not None else np.maximum(cap, EPS)
        load0 = model.load0 if model.load0 is not None else np.zeros(m)
        if not model.require_all:
            c, w = np.vstack([c, np.full(n, float(model.skip_cost))]), np.vstack([w, np.zeros(n)])
            allowed = np.vstack([allowed, np.ones(n, dtype=bool)])
            cap, ucap, load0 = np.append(cap, np.inf), np.append(ucap, np.inf), np.append(load0, 0.0)
        self.c, self.w, self.cap, self.allowed = c, w, cap, allowed
        self.ucap, self.load0, self.lam = np.maximum(ucap, EPS), load0, model.lam
        self.dummy = None if model.require_all else m

    def desirabilities(self) -> list[np.ndarray]:
        """Greedy orders to try (smaller is better); the dummy agent always comes last."""
        rel = self.w / np.maximum(self.cap[:, None], EPS)
        span = float(np.ptp(self.c)) or 1.0
        ds = [self.c, rel, (self.c - self.c.min()) / span + rel]
        if self.lam:
            per_job = self.lam / max(self.c.shape[1], 1)  # the peak term spread over the jobs
            ds.insert(0, self.c + per_job * self.w / self.ucap[:, None])
        if self.dummy is not None:
            ds = [np.vstack([d[:-1], np.full(d.shape[1], d[:-1].max(initial=0) + 1e6)]) for d in ds]
        return ds

    def loads(self, asg: np.ndarray) -> np.ndarray:
        on = asg >= 0
        return np.bincount(asg[on], weights=self.w[asg[on], np.nonzero(on)[0]], minlength=len(self.cap))

    def utils(self, asg: np.ndarray) -> np.ndarray:
        return (self.load0 + self.loads(asg)) / self.ucap

    def feasible(self, asg: np.ndarray) -> bool:
        if asg.max(initial=0) >= len(self.cap) or not np.all(self.allowed[asg, np.arange(len(asg))]):
            return False
        return bool(np.all(self.loads(asg) <= self.cap + 1e-7))

    def score(self, asg: np.ndarray) -> tuple[int, float]:
        """(jobs without an agent, objective) for comparing assignments."""
        on = asg >= 0
        obj = float(self.c[asg[on], np.nonzero(on)[0]].sum())
        if self.lam:
            obj += self.lam * float(self.utils(asg)[: self.m_real].max(initial=0.0))
        return int(np.sum(~on)), obj

    def to_plain(self, asg: np.ndarray) -> np.ndarray:
        out = asg.copy()
        if self.dummy is not None:
            out[out == self.dummy] = -1
        return out


# ---------------------------------------------------------------- construction


def _best_two(ext: Extended, d: np.ndarray, rem: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    feas = ext.allowed[:, cols] & (ext.w[:, cols] <= rem[:, None] + EPS)
    vals = np.where(feas, d[:, cols], np.inf)
    if vals.shape[0] == 1:
        return np.zeros(len(cols), dtype=int), vals[0], np.full(len(cols), np.inf)
    part = np.argpartition(vals, 1, axis=0)[:2]
    v = np.take_along_axis(vals, part, axis=0)
    return part[0], v[0], v[1]


def _first_fit(ext: Extended) -> np.ndarray:
    """Each job in order to its cheapest agent that still has room (the plain baseline; may leave gaps)."""
    rem = ext.cap.copy()
    asg = np.full(ext.c.shape[1], -1)
    for j in range(len(asg)):
        ok = ext.allowed[:, j] & (ext.w[:, j] <= rem + EPS)
        if ok.any():
            i = int(np.argmin(np.where(ok, ext.c[:, j], np.inf)))
            asg[j] = i
            rem[i] -= ext.w[i, j]
    return _repair(ext, asg)


def _regret_greedy(ext: Extended, d: np.ndarray, deadline: float, start: np.ndarray | None = None,
                   *, repair: bool = True) -> np.ndarray | None:
    """Martello-Toth regret greedy: place the job whose best and second-best agents differ most first.

    Jobs already placed in start stay; None when the deadline passes first.
    """
    n = d.shape[1]
    asg = np.full(n, -1) if start is None else start.copy()
    rem = ext.cap - ext.loads(asg)
    free = asg < 0
    first, v0, v1 = np.zeros(n, dtype=int), np.full(n, np.inf), np.full(n, np.inf)
    cols = np.nonzero(free)[0]
    first[cols], v0[cols], v1[cols] = _best_two(ext, d, rem, cols)
    for step in range(len(cols)):
        if step % 256 == 255 and time.perf_counter() > deadline:
            return None
        with np.errstate(invalid="ignore"):
            regret = np.where(np.isfinite(v1), v1 - v0, 1e30 - np.nan_to_num(v0, posinf=0))
        j = int(np.argmax(np.where(free, regret, -np.inf)))
        free[j] = False
        if not np.isfinite(v0[j]):
            continue
        i = int(first[j])
        asg[j] = i
        rem[i] -= ext.w[i, j]
        stale = free & ((first == i) | (d[i] <= v1)) & (ext.w[i] > rem[i] + EPS)
        cols = np.nonzero(stale)[0]
        if len(cols):
            first[cols], v0[cols], v1[cols] = _best_two(ext, d, rem, cols)
    return _repair(ext, asg) if repair else asg


def _repair(ext: Extended, asg: np.ndarray) -> np.ndarray:
    """Place jobs the greedy left out by moving one job elsewhere to make room (depth-one ejection)."""
    rem = ext.cap - ext.loads(asg)
    for j in np.nonzero(asg < 0)[0]:
        best: tuple[float, int, int, int] | None = None
        for i in np.nonzero(ext.allowed[:, j])[0]:
            need = ext.w[i, j] - rem[i]
            for k in np.nonzero((asg == i) & (ext.w[i] >= need - EPS))[0]:
                room = ext.allowed[:, k] & (ext.w[:, k] <= rem + EPS)
                room[i] = False
                if room.any():
                    b = int(np.argmin(np.where(room, ext.c[:, k], np.inf)))
                    delta = ext.c[b, k] - ext.c[i, k] + ext.c[i, j]
                    if best is None or delta < best[0]:
                        best = (delta, int(i), int(k), b)
        if best is not None:
            _, bi, bk, bb = best
            asg[bk], asg[j] = bb, bi
            rem[bi] += ext.w[bi, bk] - ext.w[bi, j]
            rem[bb] -= ext.w[bb, bk]
    return asg


# ---------------------------------------------------------------- improvement


def _descend(ext: Extended, asg: np.ndarray, deadline: float) -> None:
    """Improving moves, then swaps (ejection chains when there is no peak term) until none is left."""
    while time.perf_counter() < deadline:
        moved = _move_pass(ext, asg)
        pair = _chain_pass(ext, asg, deadline) if not ext.lam else _swap_pass(ext, asg, deadline)
        if not (moved or pair):
            return


def _peak_without(top_i: np.ndarray, top_v: np.ndarray, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Largest utilisation among agents other than a and b (element-wise), from the top three."""
    out = top_v[2]
    for r in (1, 0):
        out = np.where((top_i[r] != a) & (top_i[r] != b), top_v[r], out)
    return out


def _top3(util: np.ndarray, m_real: int) -> tuple[np.ndarray, np.ndarray]:
    u = np.concatenate([util[:m_real], np.zeros(3)])
    idx = np.argsort(-u, kind="stable")[:3]
    return np.where(idx < m_real, idx, -1), u[idx]


def _move_pass(ext: Extended, asg: np.ndarray) -> bool:
    """Apply the best improving reassignment of each job, best first, re-checked as loads change."""
    m, n = ext.c.shape
    jobs = np.arange(n)
    rem = ext.cap - ext.loads(asg)
    util = ext.utils(asg)
    delta = ext.c - ext.c[asg, jobs][None, :]
    feas = ext.allowed & (ext.w <= rem[:, None] + EPS) & (np.arange(m)[:, None] != asg[None, :])
    if ext.lam:
        ti, tv = _top3(util, ext.m_real)
        rows = np.arange(m)[:, None]
        new_i = np.where(rows < ext.m_real, util[:, None] + ext.w / ext.ucap[:, None], 0)
        new_a = np.where(asg < ext.m_real, util[asg] - ext.w[asg, jobs] / ext.ucap[asg], 0)
        rest = _peak_without(ti[:, None, None], tv[:, None, None], rows, asg[None, :])
        delta = delta + ext.lam * (np.maximum(rest, np.maximum(new_i, new_a)) - tv[0])
    delta = np.where(feas, delta, np.inf)
    best_i = np.argmin(delta, axis=0)
    gain = delta[best_i, jobs]
    changed = False
    for j in np.argsort(gain)[: int(np.sum(gain < -TOL))]:
        i, a = int(best_i[j]), int(asg[j])
        if ext.w[i, j] > rem[i] + EPS:
            continue
        if ext.lam:
            u = util.copy()
            u[i] += ext.w[i, j] / ext.ucap[i]
            u[a] -= ext.w[a, j] / ext.ucap[a]
            peak_gain = u[: ext.m_real].max(initial=0) - util[: ext.m_real].max(initial=0)
            if ext.c[i, j] - ext.c[a, j] + ext.lam * peak_gain >= -TOL:
                continue
            util = u
        asg[j] = i
        rem[i] -= ext.w[i, j]
        rem[a] += ext.w[a, j]
        changed = True
    return changed


def _swap_pass(ext: Extended, asg: np.ndarray, deadline: float) -> bool:
    """Exchange the agents of two jobs when that improves cost plus the peak term."""
    n = ext.c.shape[1]
    jobs = np.arange(n)
    rem = ext.cap - ext.loads(asg)
    util = ext.utils(asg)
    changed = False
    for j in range(n):
        if j % 64 == 0 and time.perf_counter() > deadline:
            break
        a, b = int(asg[j]), asg
        dc = ext.c[b, j] + ext.c[a, jobs] - ext.c[a, j] - ext.c[b, jobs]
        ok = (b != a) & ext.allowed[a] & ext.allowed[b, j]
        ok &= (rem[a] + ext.w[a, j] - ext.w[a] >= -EPS) & (rem[b] + ext.w[b, jobs] - ext.w[b, j] >= -EPS)
        if ext.lam:
            ti, tv = _top3(util, ext.m_real)
            ua = util[a] + (ext.w[a] - ext.w[a, j]) / ext.ucap[a] if a < ext.m_real else np.zeros(n)
            ub = np.where(b < ext.m_real, util[b] + (ext.w[b, j] - ext.w[b, jobs]) / ext.ucap[b], 0)
            rest = _peak_without(ti[:, None], tv[:, None], a, b)
            dc = dc + ext.lam * (np.maximum(rest, np.maximum(ua, ub)) - tv[0])
        dc = np.where(ok, dc, np.inf)
        k = int(np.argmin(dc))
        if dc[k] < -TOL:
            bk = int(b[k])
            rem[a] += ext.w[a, j] - ext.w[a, k]
            rem[bk] += ext.w[bk, k] - ext.w[bk, j]
            util[a] += (ext.w[a, k] - ext.w[a, j]) / ext.ucap[a]
            util[bk] += (ext.w[bk, j] - ext.w[bk, k]) / ext.ucap[bk]
            asg[j], asg[k] = bk, a
            changed = True
    return changed


def _chain_pass(ext: Extended, asg: np.ndarray, deadline: float) -> bool:
    """Ejection chains of length two: job j moves to k's agent b, and k moves on to any agent c.

    c = j's old agent is a swap; this is for the pure GAP (no peak term).
    """
    m, n = ext.c.shape
    jobs, rows = np.arange(n), np.arange(m)[:, None]
    rem = ext.cap - ext.loads(asg)
    changed = False
    for j in range(n):
        if j % 32 == 0 and time.perf_counter() > deadline:
            break
        a, b = int(asg[j]), asg
        first = ext.c[b, j] - ext.c[a, j]
        ok1 = (b != a) & ext.allowed[b, j] & (rem[b] + ext.w[b, jobs] - ext.w[b, j] >= -EPS)
        if not ok1.any():
            continue
        room = rem[:, None] - ext.w
        room[a] += ext.w[a, j]
        feas = ext.allowed & (room >= -EPS) & (rows != b[None, :])
        second = np.where(feas, ext.c - ext.c[b, jobs][None, :], np.inf)
        c_best = np.argmin(second, axis=0)
        total = np.where(ok1, first + second[c_best, jobs], np.inf)
        k = int(np.argmin(total))
        if total[k] < -TOL:
            bk, ck = int(b[k]), int(c_best[k])
            asg[j], asg[k] = bk, ck
            rem[a] += ext.w[a, j]
            rem[bk] += ext.w[bk, k] - ext.w[bk, j]
            rem[ck] -= ext.w[ck, k]
            changed = True
    return changed


# ---------------------------------------------------------------- Lagrangian heuristic (pure GAP)


def _knapsack_ready(ext: Extended) -> bool:
    """Relaxing the one-agent-per-job rows leaves one knapsack per agent: needs integer weights, no peak."""
    return (ext.dummy is None and not ext.lam and bool(np.all(ext.w == np.round(ext.w)))
            and bool(np.all(ext.cap <= 20_000)) and ext.c.shape[0] > 1)


def _knapsack(values: np.ndarray, weights: np.ndarray, cap: float) -> tuple[np.ndarray, float]:
    """0-1 knapsack by dynamic programming over integer capacity: (chosen mask, best value)."""
    size = int(cap) + 1
    dp = np.zeros(size)
    take = np.zeros((len(values), size), dtype=bool)
    for t, (wt, vt) in enumerate(zip(weights.astype(int), values)):
        if wt < size:
            cand = dp[: size - wt] + vt
            better = cand > dp[wt:] + 1e-12
            take[t, wt:] = better
            dp[wt:] = np.where(better, cand, dp[wt:])
    c = int(np.argmax(dp))
    best = float(dp[c])
    chosen = np.zeros(len(values), dtype=bool)
    for t in range(len(values) - 1, -1, -1):
        if take[t, c]:
            chosen[t] = True
            c -= int(weights[t])
    return chosen, best


def _lagrangian(ext: Extended, best: np.ndarray | None, deadline: float, *,
                v0: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
    """Subgradient over the job rows; each round's knapsack picks are made feasible and improved.

    Jobs picked by several agents stay with the cheapest, jobs picked by none are placed by regret.
    Returns the best assignment and the best Lagrangian lower bound; stops early once they meet (for
    integer costs, within 1) or when two restarts in a row found nothing better.
    """
    integral = bool(np.all(ext.c == np.round(ext.c)))
    idle, improved = 0, False
    m, n = ext.c.shape
    v = np.sort(ext.c, axis=0)[1] if v0 is None else v0.copy()
    best_obj = ext.score(best)[1] if best is not None else np.inf
    theta, low, stall = (2.0 if v0 is None else LR_THETA), -np.inf, 0
    v_low, rng = v.copy(), None
    while time.perf_counter() < deadline:
        picked = np.zeros((m, n), dtype=bool)
        value = float(v.sum())
        for i in range(m):
            red = ext.c[i] - v
            items = np.nonzero((red < -1e-12) & ext.allowed[i])[0]
            if len(items):
                chosen, gain = _knapsack(-red[items], ext.w[i, items], ext.cap[i])
                picked[i, items[chosen]] = True
                value -= gain
        if value > low + 1e-9:
            low, stall = value, 0
        else:
            stall += 1
            if stall >= LR_STALL:
                theta, stall = theta / 2, 0
        cand = _from_picks(ext, picked, deadline, ext.c - v[None, :])
        if cand is not None:
            _move_pass(ext, cand)
            obj = ext.score(cand)[1]
            if obj < best_obj * (1 + LR_POLISH * np.sign(best_obj)):  # promising: polish it
                _descend(ext, cand, deadline)
                obj = ext.score(cand)[1]
            if obj < best_obj - TOL:
                best, best_obj, improved = cand, obj, True
        if best_obj - low < (1 - 1e-6 if integral else 1e-9):
            break
        grad = 1.0 - picked.sum(axis=0)
        norm = float(grad @ grad)
        if norm == 0:
            break
        if value >= low - 1e-9:
            v_low = v.copy()
        if theta < 1e-3:  # converged: restart near the best multipliers, shaken, for other candidates
            idle, improved = (0 if improved else idle + 1), False
            if idle >= 2:
                break
            rng = rng or np.random.default_rng(0)
            v = v_low * (1 + rng.normal(0, LR_SHAKE, size=n))
            theta, stall = (2.0 if v0 is None else LR_THETA), 0
            continue
        target = best_obj if np.isfinite(best_obj) else value + 0.05 * abs(value)
        v = v + theta * (target - value) / norm * grad
    return best, low


def _from_picks(ext: Extended, picked: np.ndarray, deadline: float, reduced: np.ndarray) -> np.ndarray | None:
    asg = np.full(picked.shape[1], -1)
    some = picked.any(axis=0)
    asg[some] = np.argmin(np.where(picked, ext.c, np.inf)[:, some], axis=0)
    for d in (reduced, ext.c, ext.w / np.maximum(ext.cap[:, None], EPS)):
        done = _regret_greedy(ext, d, deadline, asg, repair=False)
        if done is not None and not np.any(done < 0):
            return done
    return None
