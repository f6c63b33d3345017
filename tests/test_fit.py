"""Skill fit with the real all-MiniLM-L6-v2 embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from planner.assign import assign_subtasks
from planner.fit import NEUTRAL_FIT, fit_matrix
from planner.types import Member, Subtask

ANA = Member("Ana", "UANA", {"sql": 4, "excel": 3})
BO = Member("Bo", "UBO", {"graphic design": 5})
CY = Member("Cy", "UCY", {"law": 3, "contract negotiation": 2})


class CountingEmbedder:
    """Wraps the real embedder and records every batch it is asked for."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.calls = inner, []  # type: list[list[str]]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def test_data_analysis_fits_sql_and_excel_better_than_graphic_design(embedder) -> None:  # type: ignore[no-untyped-def]
    task = Subtask("1", "Analyse Q3 sales", skills=("data analysis",), estimate_hours=6)
    fit = fit_matrix([task], [ANA, BO], embedder)
    ana, pair = fit.cell("1", "UANA")
    bo, _ = fit.cell("1", "UBO")
    assert ana > bo
    assert pair is not None and pair.task_skill == "data analysis" and pair.member_skill in ("sql", "excel")
    assert pair.describe().startswith(f"{pair.member_skill} {pair.level}/5 ≈ 'data analysis' (0.")


def test_exact_skill_match_scores_by_level(embedder) -> None:  # type: ignore[no-untyped-def]
    task = Subtask("1", "Query", skills=("SQL",))
    fit = fit_matrix([task], [ANA, Member("Dee", "UDEE", {"sql": 1})], embedder)
    assert fit.scores[0, 0] == pytest.approx(0.9, abs=1e-3)  # sql at level 4
    assert fit.scores[0, 1] == pytest.approx(0.6, abs=1e-3)  # sql at level 1
    assert fit.best[0][0] is not None and fit.best[0][0].describe() == "sql 4/5 = 'sql'"


def test_every_skill_is_embedded_once_in_one_batch(embedder) -> None:  # type: ignore[no-untyped-def]
    tasks = [Subtask("1", "a", skills=("sql", "legal review")), Subtask("2", "b", skills=("sql",))]
    counting = CountingEmbedder(embedder)
    fit = fit_matrix(tasks, [ANA, BO, CY], counting)
    assert len(counting.calls) == 1
    batch = counting.calls[0]
    assert sorted(batch) == sorted(set(batch)) and "sql" in batch and "legal review" in batch
    assert fit.scores.shape == (2, 3) and np.all((fit.scores >= 0) & (fit.scores <= 1))


def test_no_skills_is_neutral_and_a_member_without_skills_fits_nothing(embedder) -> None:  # type: ignore[no-untyped-def]
    tasks = [Subtask("1", "Book a room"), Subtask("2", "Query", skills=("sql",))]
    blank = Member("Eve", "UEVE", {})
    fit = fit_matrix(tasks, [ANA, blank], embedder)
    assert list(fit.scores[0]) == [NEUTRAL_FIT, NEUTRAL_FIT] and fit.best[0][0] is None
    assert fit.scores[1, 1] == 0.0
    with pytest.raises(KeyError, match="'9'"):
        fit.index("9")


def test_real_fit_feeds_assignment_end_to_end(embedder) -> None:  # type: ignore[no-untyped-def]
    tasks = [Subtask("1", "Review the contract", skills=("legal review",), estimate_hours=3),
             Subtask("2", "Build the sales dashboard", skills=("data analysis", "excel"), estimate_hours=5),
             Subtask("3", "Design the banner", skills=("graphic design",), estimate_hours=4),
             Subtask("4", "Write the Mandarin press release", skills=("chinese copywriting",), estimate_hours=2)]
    members = [ANA, BO, CY]
    out = assign_subtasks(tasks, members, fit=fit_matrix(tasks, members, embedder))
    who = {a.subtask_id: a.member.name if a.member else None for a in out}
    assert who == {"1": "Cy", "2": "Ana", "3": "Bo", "4": None}
    assert out[0].why.startswith("skills law 3/5 ≈ 'legal review' (0.")
    assert out[3].why.startswith("no member's skills fit 'chinese copywriting' (best 0.")
