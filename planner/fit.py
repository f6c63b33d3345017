"""Skill fit between subtasks and members from sentence embeddings, with the pair that explains it.

Definition (per subtask j and member i): for each task skill s, take the member skill k that maximises
``max(0, cos(s, k)) * (0.5 + 0.1 * level_k)``; the fit is the mean of those values over the task's skills,
so it lies in [0, 1] (1 = every task skill is literally one of the member's skills at level 5; the same
skill at level 1 gives 0.6). Similarity decides whether someone can do the work, level how well: with
all-MiniLM-L6-v2 related skills score about 0.45-0.65 ('data analysis' ~ 'sql' 0.45, 'legal review' ~
'law' 0.55) and unrelated ones 0.05-0.3. A subtask with no skills gets NEUTRAL_FIT for everyone; a member
with no skills gets 0. Each cell also keeps the best
single (task skill, member skill, level, similarity) pair so a reason can be written and checked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from planner.embed import Embedder
from planner.types import Member, Subtask

log = logging.getLogger(__name__)

NEUTRAL_FIT = 0.5


@dataclass(frozen=True)
class SkillMatch:
    """The skill pair behind a fit: the task asks for task_skill, the member has member_skill at level."""

    task_skill: str
    member_skill: str
    level: int
    similarity: float

    def describe(self) -> str:
        """E.g. "sql 4/5 ≈ 'data analysis' (0.82)"; an exact match reads "sql 4/5 = 'sql'"."""
        if self.similarity >= 0.995:
            return f"{self.member_skill} {self.level}/5 = '{self.task_skill}'"
        return f"{self.member_skill} {self.level}/5 ≈ '{self.task_skill}' ({self.similarity:.2f})"


@dataclass(frozen=True)
class FitMatrix:
    """scores[j, i] in [0, 1] for subtask j and member i; best[j][i] is the pair behind it (None if none)."""

    subtask_ids: tuple[str, ...]
    member_ids: tuple[str, ...]
    scores: np.ndarray
    best: tuple[tuple[SkillMatch | None, ...], ...]

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {sid: j for j, sid in enumerate(self.subtask_ids)}

    @cached_property
    def _cols(self) -> dict[str, int]:
        return {mid: i for i, mid in enumerate(self.member_ids)}

    def index(self, subtask_id: str) -> int:
        """Row of a subtask; raises KeyError with the id when it is not in the matrix."""
        if subtask_id not in self._rows:
            raise KeyError(f"subtask {subtask_id!r} is not in this fit matrix")
        return self._rows[subtask_id]

    def cell(self, subtask_id: str, member_id: str) -> tuple[float, SkillMatch | None]:
        """Fit score and best pair for one (subtask, member slack_id); (0.0, None) for an unknown member."""
        j = self.index(subtask_id)
        i = self._cols.get(member_id)
        if i is None:
            return 0.0, None
        return float(self.scores[j, i]), self.best[j][i]


def _norm(skill: str) -> str:
    return " ".join(skill.replace("_", " ").replace("-", " ").split()).lower()


def fit_matrix(subtasks: Sequence[Subtask], members: Sequence[Member], embedder: Embedder) -> FitMatrix:
    """Score every (subtask, member) pair; every distinct skill string is embedded once, in one batch."""
    task_sk = [[_norm(s) for s in t.skills if _norm(s)] for t in subtasks]
    mem_sk = [[(_norm(k), int(lvl)) for k, lvl in m.skills.items() if _norm(k)] for m in members]
    vocab = sorted({s for sk in task_sk for s in sk} | {k for sk in mem_sk for k, _ in sk})
    pos = {s: n for n, s in enumerate(vocab)}
    vecs = embedder.encode(vocab) if vocab else np.zeros((0, 1), dtype=np.float32)
    sims = np.clip(vecs @ vecs.T, 0.0, 1.0) if vocab else np.zeros((0, 0))
    scores = np.zeros((len(subtasks), len(members)))
    best: list[tuple[SkillMatch | None, ...]] = []
    for j, tsk in enumerate(task_sk):
        row: list[SkillMatch | None] = []
        for i, msk in enumerate(mem_sk):
            score, pair = _cell(tsk, msk, sims, pos)
            scores[j, i] = score
            row.append(pair)
        best.append(tuple(row))
    log.debug("fit matrix %d x %d over %d distinct skills", len(subtasks), len(members), len(vocab))
    return FitMatrix(
        subtask_ids=tuple(t.id for t in subtasks),
        member_ids=tuple(m.slack_id for m in members),
        scores=scores,
        best=tuple(best),
    )


def _cell(
    task_skills: list[str], member_skills: list[tuple[str, int]], sims: np.ndarray, pos: dict[str, int]
) -> tuple[float, SkillMatch | None]:
    """Mean over task skills of the best sim * (0.5 + 0.1 * level), and the single best pair."""
    if not task_skills:
        return NEUTRAL_FIT, None
    if not member_skills:
        return 0.0, None
    cols = [pos[k] for k, _ in member_skills]
    levels = 0.5 + 0.1 * np.array([min(max(lvl, 1), 5) for _, lvl in member_skills], dtype=float)
    total, top, pair = 0.0, -1.0, None
    for s in task_skills:
        sim = sims[pos[s], cols]
        weighted = sim * levels
        k = int(np.argmax(weighted))
        total += float(weighted[k])
        if weighted[k] > top:
            top = float(weighted[k])
            name, lvl = member_skills[k]
            pair = SkillMatch(task_skill=s, member_skill=name, level=lvl, similarity=float(sim[k]))
    return total / len(task_skills), pair
