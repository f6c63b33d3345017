"""The GAP engine against published OR-Library optima (../shared/data/gap) and on small made-up cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.assign import read_gap
from planner.errors import TaskwrightError
from planner.gap import solve_gap

# OR-Library gapinfo optima (gap1-12 maximised, gapa minimised), as listed in shared/data/gap/README.md.
PUBLISHED = {
    ("gap1", 1): 336, ("gap1", 2): 327, ("gap1", 3): 339, ("gap1", 4): 341, ("gap1", 5): 326,
    ("gap5", 3): 564, ("gap9", 2): 717, ("gap12", 1): 1451,
}


@pytest.fixture
def orlib(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "gap" / "orlib"
    if not (path / "gap1.txt").exists():
        pytest.skip(f"the OR-Library GAP files are missing from {path}")
    return path


def _valid(assign: np.ndarray, weight: np.ndarray, cap: np.ndarray) -> bool:
    loads = np.bincount(assign, weights=weight[assign, np.arange(len(assign))], minlength=len(cap))
    return bool(np.all(assign >= 0) and np.all(loads <= cap))


@pytest.mark.parametrize(("name", "k"), sorted(PUBLISHED))
def test_orlib_max_problems_reach_published_optimum(orlib: Path, name: str, k: int) -> None:
    cost, weight, cap = read_gap(orlib / f"{name}.txt")[k - 1]
    res = solve_gap(cost, weight, cap, sense="max", time_limit_s=20)
    assert res.feasible and _valid(res.assignment, weight, cap)
    assert res.objective == PUBLISHED[(name, k)]
    assert res.proved_optimal and res.bound == res.objective
    assert res.objective == cost[res.assignment, np.arange(cost.shape[1])].sum()


def test_min_sense_of_gap1_problem1_is_261(orlib: Path) -> None:
    cost, weight, cap = read_gap(orlib / "gap1.txt")[0]
    res = solve_gap(cost, weight, cap, sense="min", time_limit_s=20)
    assert (res.objective, res.proved_optimal) == (261, True)


@pytest.mark.parametrize(("k", "value"), [(1, 1698), (6, 2339)])
def test_gapa_is_proved_optimal(orlib: Path, k: int, value: int) -> None:
    cost, weight, cap = read_gap(orlib / "gapa.txt")[k - 1]
    res = solve_gap(cost, weight, cap, sense="min", time_limit_s=10)
    assert res.proved_optimal and res.objective == value
    assert _valid(res.assignment, weight, cap)


def test_heuristic_alone_is_valid_on_a_hard_instance(orlib: Path) -> None:
    cost, weight, cap = read_gap(orlib / "gapd.txt")[0]
    res = solve_gap(cost, weight, cap, sense="min", time_limit_s=0)
    assert res.feasible and _valid(res.assignment, weight, cap)
    assert "highs" not in res.method and not res.proved_optimal
    assert res.objective >= 6353  # the optimum: a heuristic cannot beat it


def test_a_given_start_is_kept_when_nothing_beats_it(orlib: Path) -> None:
    cost, weight, cap = read_gap(orlib / "gapd.txt")[0]
    best = solve_gap(cost, weight, cap, sense="min", time_limit_s=3)
    again = solve_gap(cost, weight, cap, sense="min", time_limit_s=0, start=best.assignment)
    assert again.objective <= best.objective and _valid(again.assignment, weight, cap)


def test_forbidden_pairs_and_infeasible_problems() -> None:
    profit = np.array([[5.0, np.nan], [1.0, 2.0]])
    weight = np.ones((2, 2))
    res = solve_gap(profit, weight, np.array([1.0, 1.0]), sense="max", time_limit_s=1)
    assert list(res.assignment) == [0, 1] and res.objective == 7
    tight = solve_gap(profit, weight * 3, np.array([1.0, 1.0]), sense="max", time_limit_s=1)
    assert not tight.feasible and np.isnan(tight.objective)


def test_jobs_may_stay_unassigned_when_not_required() -> None:
    profit = np.array([[4.0, 3.0, 6.0]])
    weight = np.array([[2.0, 2.0, 3.0]])
    res = solve_gap(profit, weight, np.array([4.0]), sense="max", time_limit_s=1, require_all=False)
    assert list(res.assignment) == [0, 0, -1] and res.objective == 7 and res.proved_optimal


def test_bad_shapes_raise_a_clear_error() -> None:
    with pytest.raises(TaskwrightError, match="shapes"):
        solve_gap(np.ones((2, 3)), np.ones((3, 2)), np.ones(2))
    with pytest.raises(TaskwrightError, match="sense"):
        solve_gap(np.ones((2, 3)), np.ones((2, 3)), np.ones(2), sense="maximise")  # type: ignore[arg-type]
