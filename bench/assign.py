"""Benchmark the assignment optimizer and print tables (`python -m bench.assign`, `make bench-assign`).

1. Every OR-Library GAP problem in ../shared/data/gap/orlib (gap1-12 maximised, gapa-d minimised) against
   the reference values of that folder's README: time, objective, gap, proved optimal or not.
2. Synthetic teams (10/50/200 members x 50/500/5,000 tasks), generated with a planted assignment so all
   tasks fit: our optimizer against a plain "best person with room first" greedy, measured in the same run.
3. Interactive plans: the whole assign_subtasks call on random plans of up to 30 subtasks x 200 members.
Runs one instance at a time (the target machine has 2 cores).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from planner.assign import DEFAULT_BALANCE, DEFAULT_MIN_FIT, assign_subtasks, solve_assignment
from planner.fit import FitMatrix
from planner.gap import solve_gap
from planner.types import Member, Subtask

log = logging.getLogger(__name__)

GAP_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gap"

# Reference values from shared/data/gap/README.md: gap1-12 optimal (max), gapa-d optimal/best known (min).
REFERENCE: dict[str, list[int]] = {
    "gap1": [336, 327, 339, 341, 326], "gap2": [434, 436, 420, 419, 428],
    "gap3": [580, 564, 573, 570, 564], "gap4": [656, 644, 673, 647, 664],
    "gap5": [563, 558, 564, 568, 559], "gap6": [761, 759, 758, 752, 747],
    "gap7": [942, 949, 968, 945, 951], "gap8": [1133, 1134, 1141, 1117, 1127],
    "gap9": [709, 717, 712, 723, 706], "gap10": [958, 963, 960, 947, 947],
    "gap11": [1139, 1178, 1195, 1171, 1171], "gap12": [1451, 1449, 1433, 1447, 1446],
    "gapa": [1698, 3235, 1360, 2623, 1158, 2339], "gapb": [1843, 3552, 1407, 2827, 1166, 2339],
    "gapc": [1931, 3456, 1402, 2806, 1243, 2391], "gapd": [6353, 12742, 6347, 12430, 6185, 12241],
}
ORLIB_NAMES = [f"gap{i}" for i in range(1, 13)] + ["gapa", "gapb", "gapc", "gapd"]

Problem = tuple[np.ndarray, np.ndarray, np.ndarray]


def read_gap(path: str | Path) -> list[Problem]:
    """(cost, weight, capacity) of every problem in an OR-Library file (or one gzipped Yagiura file)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        tok = [int(t) for t in fh.read().split()]
    single = path.suffix == ".gz" or "yagiura" in path.parts
    pos, count = (0, 1) if single else (1, tok[0])
    problems = []
    for _ in range(count):
        m, n = tok[pos], tok[pos + 1]
        pos += 2
        cost = np.array(tok[pos:pos + m * n]).reshape(m, n)
        pos += m * n
        use = np.array(tok[pos:pos + m * n]).reshape(m, n)
        pos += m * n
        problems.append((cost, use, np.array(tok[pos:pos + m])))
        pos += m
    if pos != len(tok):
        raise ValueError(f"{path}: {len(tok) - pos} numbers left over; not a GAP file")
    return problems


# ---------------------------------------------------------------- OR-Library


@dataclass(frozen=True)
class OrlibRow:
    problem: str
    size: str
    sense: str
    seconds: float
    objective: float
    reference: int
    gap_pct: float  # against the reference, positive = worse
    bound: float
    proved: bool
    method: str

    def line(self) -> str:
        return (f"{self.problem:<10} {self.size:>7} {self.sense:>3} {self.seconds:>7.2f} {self.objective:>9.0f} "
                f"{self.reference:>9} {self.gap_pct:>7.3f} {self.bound:>9.0f} "
                f"{'yes' if self.proved else 'no':>6}  {self.method}")


def run_orlib(names: Sequence[str], *, time_limit: float, first_only: bool = False) -> list[OrlibRow]:
    """Solve each problem of each file in turn and compare with REFERENCE."""
    rows = []
    for name in names:
        sense: Literal["max", "min"] = "min" if name in ("gapa", "gapb", "gapc", "gapd") else "max"
        problems = read_gap(GAP_DIR / "orlib" / f"{name}.txt")
        for k, (cost, weight, cap) in enumerate(problems[:1] if first_only else problems, start=1):
            res = solve_gap(cost, weight, cap, sense=sense, time_limit_s=time_limit)
            ref = REFERENCE[name][k - 1]
            gap = (res.objective - ref) / ref * (100 if sense == "min" else -100)
            rows.append(OrlibRow(f"{name} #{k}", f"{cost.shape[0]}x{cost.shape[1]}", sense, res.seconds,
                                 res.objective, ref, gap + 0.0, res.bound, res.proved_optimal, res.method))
            print(rows[-1].line(), flush=True)
    return rows


def summarize_orlib(rows: list[OrlibRow]) -> list[str]:
    """One line per target: gap1-12 proved and equal, gapa proved, gapb-d within 1 %."""
    def pick(*names: str) -> list[OrlibRow]:
        return [r for r in rows if r.problem.split()[0] in names]

    small, a = pick(*ORLIB_NAMES[:12]), pick("gapa")
    bcd = pick("gapb", "gapc", "gapd")
    out = []
    if small:
        ok = sum(r.proved and r.gap_pct == 0 for r in small)
        out.append(f"gap1-12: {ok}/{len(small)} proved optimal and equal to the published value")
    if a:
        out.append(f"gapa: {sum(r.proved for r in a)}/{len(a)} proved optimal")
    if bcd:
        within = sum(r.gap_pct <= 1.0 for r in bcd)
        out.append(f"gapb-d: {within}/{len(bcd)} within 1 % of the reference (worst "
                   f"{max(r.gap_pct for r in bcd):.2f} %), {sum(r.proved for r in bcd)} proved optimal")
    return out


# ---------------------------------------------------------------- synthetic teams


@dataclass(frozen=True)
class Team:
    """A generated instance: fit (tasks x members), hours per task, capacity and open hours per member."""

    fit: np.ndarray
    hours: np.ndarray
    capacity: np.ndarray
    open_hours: np.ndarray
    planted: np.ndarray

    @property
    def allowed(self) -> np.ndarray:
        room = self.capacity - self.open_hours
        return (self.fit >= DEFAULT_MIN_FIT) & (self.hours[:, None] <= room[None, :])


def make_team(members: int, tasks: int, *, seed: int = 0, load: float = 0.75, areas: int = 8) -> Team:
    """Members have levels in a few skill areas, tasks need one area; capacities fit a planted assignment."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(1, 6, size=(members, areas)) * (rng.random((members, areas)) < 0.5)
    area = rng.integers(0, areas, size=tasks)
    fit = np.clip(levels[:, area].T / 5.0 + rng.normal(0, 0.05, size=(tasks, members)), 0, 1)
    hours = np.clip(np.round(rng.lognormal(1.4, 0.6, size=tasks)), 1, 24)
    weight = rng.uniform(0.5, 1.5, size=members)
    planted = np.empty(tasks, dtype=int)
    for j in range(tasks):  # a planted member with some skill in the area, chosen in proportion to weight
        ok = np.nonzero(fit[j] >= DEFAULT_MIN_FIT)[0]
        ok = ok if len(ok) else np.arange(members)
        planted[j] = rng.choice(ok, p=weight[ok] / weight[ok].sum())
    need = np.ceil(np.bincount(planted, weights=hours, minlength=members) / load)
    free = np.maximum(need, np.ceil(0.5 * np.median(need[need > 0])))  # nobody starts without room
    open_hours = np.round(rng.uniform(0, 0.4, size=members) * free)
    fit[np.arange(tasks), planted] = np.maximum(fit[np.arange(tasks), planted], DEFAULT_MIN_FIT)
    return Team(fit, hours, free + open_hours, open_hours, planted)


def greedy_baseline(team: Team) -> np.ndarray:
    """Best person first: each task, in order, to the highest-fit member who still has room."""
    room = team.capacity - team.open_hours
    asg = np.full(len(team.hours), -1)
    for j, h in enumerate(team.hours):
        score = np.where((room >= h) & (team.fit[j] >= DEFAULT_MIN_FIT), team.fit[j], -np.inf)
        i = int(np.argmax(score))
        if np.isfinite(score[i]):
            asg[j] = i
            room[i] -= h
    return asg


def fit_bound(team: Team, *, iters: int = 300) -> float:
    """Lagrangian upper bound on the total fit of a full assignment (capacities relaxed, subgradient)."""
    profit = np.where(team.allowed, team.fit, -1e9).T
    room = team.capacity - team.open_hours
    target = float(team.fit[np.arange(len(team.hours)), team.planted].sum())  # a feasible value
    u, theta, best, stall = np.zeros(len(room)), 1.0, np.inf, 0
    for _ in range(iters):
        red = profit - u[:, None] * team.hours[None, :]
        pick = np.argmax(red, axis=0)
        value = float(red[pick, np.arange(red.shape[1])].sum() + u @ room)
        if value < best - 1e-9:
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 15:
                theta, stall = theta / 2, 0
        grad = np.bincount(pick, weights=team.hours, minlength=len(room)) - room
        norm = float(grad @ grad)
        if norm == 0 or theta < 1e-4:
            break
        u = np.maximum(0.0, u + theta * (value - target) / norm * grad)
    return best


@dataclass(frozen=True)
class Outcome:
    """One assignment judged: objective = sum fit - balance * tasks * peak utilisation."""

    seconds: float
    assigned: int
    objective: float
    peak: float
    gini: float
    overflow: float


def judge(team: Team, asg: np.ndarray, seconds: float, *, balance: float) -> Outcome:
    on = asg >= 0
    load = team.open_hours + np.bincount(asg[on], weights=team.hours[on], minlength=len(team.capacity))
    util = load / team.capacity
    peak = float(util[team.allowed.any(axis=0)].max())
    fit = float(team.fit[np.nonzero(on)[0], asg[on]].sum())
    return Outcome(seconds, int(on.sum()), fit - balance * len(asg) * peak, peak, gini(util[team.capacity > 0]),
                   float(np.maximum(load - team.capacity, 0).sum()))


def gini(values: np.ndarray) -> float:
    """Gini coefficient (0 = everyone equally loaded)."""
    v = np.sort(np.asarray(values, dtype=float))
    if len(v) == 0 or v.sum() == 0:
        return 0.0
    n = len(v)
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))


def objective_bound(team: Team, model_bound: float, balance: float) -> float:
    """Upper bound on the objective of full assignments: Lagrangian fit minus the average-load peak, or HiGHS's."""
    takers = team.allowed.any(axis=0)
    avg = (team.open_hours[takers].sum() + team.hours.sum()) / team.capacity[takers].sum()
    floor = max(avg, float((team.open_hours[takers] / team.capacity[takers]).max(initial=0)))
    bound = fit_bound(team) - balance * len(team.hours) * floor
    return min(bound, -model_bound) if np.isfinite(model_bound) else bound


def run_synthetic(sizes: Sequence[tuple[int, int]], *, time_limit: float,
                  balance: float = DEFAULT_BALANCE) -> list[tuple[str, Outcome, Outcome, float, str]]:
    """Ours against the greedy baseline on each generated team: (team, ours, greedy, bound, method)."""
    rows = []
    for members, tasks in sizes:
        team = make_team(members, tasks, seed=members * 7919 + tasks)
        t0 = time.perf_counter()
        base = greedy_baseline(team)
        theirs = judge(team, base, time.perf_counter() - t0, balance=balance)
        res = solve_assignment(team.fit, team.hours, team.capacity, team.open_hours, allowed=team.allowed,
                               balance=balance, time_limit_s=time_limit)
        ours = judge(team, res.assignment, res.seconds, balance=balance)
        rows.append((f"{members}x{tasks}", ours, theirs, objective_bound(team, res.bound, balance), res.method))
        print(_synthetic_line(*rows[-1], tasks=tasks), flush=True)
    return rows


def _synthetic_line(team: str, o: Outcome, g: Outcome, bound: float, method: str, *, tasks: int) -> str:
    def cells(x: Outcome) -> str:
        gap = (bound - x.objective) / abs(bound) * 100 if x.assigned == tasks else float("nan")
        return (f"{x.seconds:>7.2f} {x.assigned:>5}/{tasks:<5} {gap:>6.2f} {x.peak:>5.2f} {x.gini:>5.3f} "
                f"{x.overflow:>4.0f}")

    ratio = (f"{o.objective / g.objective if g.objective else 0:>6.3f} {o.peak / g.peak:>6.2f} "
             f"{o.gini / g.gini if g.gini else 0:>6.2f}")
    return f"{team:<9} {cells(o)} | {cells(g)} | {ratio}  {method}"


# ---------------------------------------------------------------- interactive plans


def run_interactive(sizes: Sequence[tuple[int, int]], *, repeats: int) -> list[str]:
    """Time the whole assign_subtasks call (0.5 s limit) on random plans with realistic capacities."""
    lines = []
    for tasks, members in sizes:
        times, proved = [], 0
        for rep in range(repeats):
            rng = np.random.default_rng(1000 * tasks + rep)
            team = [Member(f"m{i}", f"U{i}", capacity_hours=float(rng.choice([0, 20, 30, 40, 40])))
                    for i in range(members)]
            plan = [Subtask(str(j), f"t{j}", estimate_hours=float(rng.integers(1, 17))) for j in range(tasks)]
            open_hours = {m.slack_id: float(rng.integers(0, 25)) for m in team}
            scores = np.clip(rng.beta(2, 3, size=(tasks, members)) * 1.2, 0, 1)
            fit = FitMatrix(tuple(t.id for t in plan), tuple(m.slack_id for m in team), scores,
                            tuple(tuple(None for _ in team) for _ in plan))
            t0 = time.perf_counter()
            assign_subtasks(plan, team, fit=fit, open_hours=open_hours)
            times.append(time.perf_counter() - t0)
            arr = solve_assignment(scores, np.array([t.estimate_hours for t in plan]),
                                   np.array([m.capacity_hours for m in team]),
                                   np.array([open_hours[m.slack_id] for m in team]),
                                   allowed=scores >= DEFAULT_MIN_FIT, time_limit_s=0.5)
            proved += arr.proved_optimal
        lines.append(f"{tasks:>3} subtasks x {members:>3} members: median {np.median(times):.3f} s, "
                     f"max {max(times):.3f} s over {repeats} plans; proved optimal within 0.5 s: {proved}/{repeats}")
        print(lines[-1], flush=True)
    return lines


# ---------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; --quick is a smoke run (under 2 minutes)."""
    p = argparse.ArgumentParser(prog="python -m bench.assign", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per OR-Library problem (10)")
    p.add_argument("--synthetic-time-limit", type=float, default=30.0, help="seconds per synthetic team (30)")
    p.add_argument("--quick", action="store_true", help="a few problems and small teams, short limits")
    p.add_argument("--only", choices=("orlib", "synthetic", "interactive"), help="run one part only")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    if args.only in (None, "orlib"):
        if (GAP_DIR / "orlib").is_dir():
            _print_orlib(args)
        else:
            print(f"skipping OR-Library: {GAP_DIR / 'orlib'} is missing (shared/ goes beside the checkout)")
    if args.only in (None, "synthetic"):
        _print_synthetic(args)
    if args.only in (None, "interactive"):
        print("\nInteractive plans: the whole assign_subtasks call, default 0.5 s limit")
        run_interactive([(6, 5), (15, 20), (30, 50), (30, 200)], repeats=5 if args.quick else 20)
    print(f"\nbench total {time.perf_counter() - started:.0f} s")
    return 0


def _print_orlib(args: argparse.Namespace) -> None:
    limit = min(args.time_limit, 3.0) if args.quick else args.time_limit
    print(f"\nOR-Library GAP, {limit:g} s per problem (gap % against the reference; positive = worse)")
    print(f"{'problem':<10} {'m x n':>7} {'dir':>3} {'time s':>7} {'objective':>9} {'reference':>9} "
          f"{'gap %':>7} {'bound':>9} {'proved':>6}  method")
    names = ["gap1", "gap12", "gapa", "gapb", "gapd"] if args.quick else ORLIB_NAMES
    rows = run_orlib(names, time_limit=limit, first_only=args.quick)
    print("\n".join(summarize_orlib(rows)))
    print(f"OR-Library total {sum(r.seconds for r in rows):.1f} s")


def _print_synthetic(args: argparse.Namespace) -> None:
    sizes = [(10, 50), (50, 50), (50, 500)] if args.quick else [
        (m, n) for m in (10, 50, 200) for n in (50, 500, 5000)]
    limit = min(args.synthetic_time_limit, 5.0) if args.quick else args.synthetic_time_limit
    print(f"\nSynthetic teams (members x tasks), ours with a {limit:g} s limit vs plain greedy. objective = sum "
          f"fit - {DEFAULT_BALANCE:g} x tasks x peak utilisation; gap % to an upper bound; overflow in hours")
    head = f"{'time s':>7} {'assigned':>11} {'gap %':>6} {'peak':>5} {'gini':>5} {'over':>4}"
    print(f"{'':9} {'ours':<42} | {'greedy':<42} | ours/greedy")
    print(f"{'team':<9} {head} | {head} | {'obj':>6} {'peak':>6} {'gini':>6}  method")
    run_synthetic(sizes, time_limit=limit)


if __name__ == "__main__":
    sys.exit(main())
