"""The planning pipeline: request -> draft plan (LLM, else playbook) -> assignment -> schedule.

Plain functions over our own types; the LangChain chain and the model behind it are handed in, so this
module runs the same with a local model, a remote server, or no model at all (playbooks only).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from planner.assign import assign_subtasks
from planner.dates import impossible_dates, parse_deadline
from planner.embed import Embedder
from planner.errors import TaskwrightError
from planner.fit import fit_matrix
from planner.playbooks import FALLBACK_NAME, Playbook, PlaybookLibrary, extract_topic, plan_from_playbook
from planner.schedule import schedule_plan
from planner.types import Assignment, DraftPlan, Member, Slot, Subtask, Task

log = logging.getLogger(__name__)

MAX_REQUEST_CHARS = 2000
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_STEERING = re.compile(
    r"(ignore (the |all |previous |your )?(team|instructions|rules|optimizer))|"
    r"(assign (everything|all|it|them|every\w*) to)|(<@[UW][A-Z0-9]+>)|(give (everything|all) to)|"
    r"(忽略)|(全部分配给)|(都分配给)",
    re.IGNORECASE,
)


class Proposer(Protocol):
    """The LLM side: propose a validated draft plan or raise a TaskwrightError."""

    def propose(
        self, request: str, *, today: dt.date, requester: str, skills_vocabulary: list[str],
        deadline: dt.date | None, reference: str | None = None
    ) -> DraftPlan: ...


@dataclass(frozen=True)
class PlanResult:
    draft: DraftPlan
    assignments: list[Assignment]
    slots: list[Slot]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Planner:
    """Hybrid planner: the LLM proposes inside a schema; reviewed playbooks back it up; an optimizer assigns."""

    def __init__(
        self,
        *,
        library: PlaybookLibrary,
        embedder: Embedder,
        proposer: Proposer | None = None,
        proposer_factory: Callable[[], Proposer] | None = None,
        assign_time_limit_s: float = 0.5,
    ) -> None:
        self.library = library
        self.embedder = embedder
        self._proposer = proposer
        self._factory = proposer_factory
        self._factory_error: str | None = None
        self.assign_time_limit_s = assign_time_limit_s

    def plan(
        self,
        request: str,
        *,
        today: dt.date,
        requester: str,
        team: Sequence[Member],
        open_hours: Mapping[str, float],
    ) -> PlanResult:
        """Make, assign and schedule a plan. Raises TaskwrightError only for an empty request."""
        text, warnings = _clean_request(request)
        timings: dict[str, float] = {}
        match = parse_deadline(text, today)
        deadline = match.date if match else None
        warnings.extend(f"“{phrase}” is not a real date, so I did not take a deadline from it; say the date "
                        "again (like “by Dec 20”) to schedule against it." for phrase in impossible_dates(text, today))
        t0 = time.perf_counter()
        draft = self._draft(text, today=today, requester=requester, team=team, deadline=deadline,
                            warnings=warnings)
        timings["draft_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        assignments = self.assign(draft.subtasks, team, open_hours)
        timings["assign_s"] = time.perf_counter() - t0
        slots, schedule_warnings = schedule_plan(list(draft.subtasks), today=today, deadline=deadline)
        warnings.extend(schedule_warnings)
        if not team:
            warnings.append("The team is empty, so nobody was assigned: import a roster with "
                            "`taskwright team import FILE`.")
        return PlanResult(draft, assignments, slots, warnings, timings)

    def assign(self, subtasks: Sequence[Subtask], team: Sequence[Member], open_hours: Mapping[str, float],
               *, exclude: Mapping[str, set[str]] | None = None) -> list[Assignment]:
        if not team:
            return [Assignment(s.id, None, "nobody is on the team yet") for s in subtasks]
        fit = fit_matrix(list(subtasks), list(team), self.embedder)
        return assign_subtasks(list(subtasks), list(team), fit=fit, open_hours=open_hours,
                               time_limit_s=self.assign_time_limit_s, exclude=exclude)

    def next_best(self, task: Task, team: Sequence[Member], open_hours: Mapping[str, float]) -> Assignment:
        """Who should do a task instead of its current assignee (Reassign)."""
        sub = Subtask(task.key, task.title, task.description, task.skills, task.estimate_hours, (), task.kind)
        hours = dict(open_hours)
        if task.assignee and task.status != "done":
            hours[task.assignee.slack_id] = max(0.0, hours.get(task.assignee.slack_id, 0.0) - task.estimate_hours)
        exclude = {sub.id: {task.assignee.slack_id}} if task.assignee else None
        return self.assign([sub], team, hours, exclude=exclude)[0]

    def _draft(self, text: str, *, today: dt.date, requester: str, team: Sequence[Member],
               deadline: dt.date | None, warnings: list[str]) -> DraftPlan:
        proposer = self._get_proposer()
        vocabulary = sorted({s for m in team for s in m.skills})
        playbook, score = self.library.match(text, k=1)[0]
        fallback = plan_from_playbook(playbook, text, deadline=deadline)
        if proposer is not None:
            # Reviewed data backs the small model up: the best-matching playbook, adapted to this request,
            # is shown as a starting point (not for the generic fallback, which says nothing specific).
            reference = None if playbook.name == FALLBACK_NAME else _reference_text(playbook, text, deadline)
            try:
                return proposer.propose(text, today=today, requester=requester, skills_vocabulary=vocabulary,
                                        deadline=deadline, reference=reference)
            except TaskwrightError as e:
                log.warning("LLM plan rejected, falling back to playbooks: %s (request %.80r)", e, text)
                warnings.append(f"The language model's plan did not validate ({e}); used a reviewed playbook.")
        elif self._factory_error:
            warnings.append(f"The language model is unavailable ({self._factory_error}); used a reviewed playbook.")
        log.info("playbook %s chosen (score %.2f) for %.80r", playbook.name, score, text)
        return fallback

    def _get_proposer(self) -> Proposer | None:
        if self._proposer is None and self._factory is not None and self._factory_error is None:
            try:
                self._proposer = self._factory()
            except TaskwrightError as e:
                log.error("could not load the planning model: %s", e)
                self._factory_error = str(e)
        return self._proposer


def _reference_text(playbook: Playbook, text: str, deadline: dt.date | None) -> str:
    """A playbook adapted to the request, as compact lines for the LLM prompt.

    The topic is cut to a few words so the model does not echo a long topic into every title (each echoed
    token costs decoding time on a CPU).
    """
    topic = extract_topic(text)
    short = "".join(topic[:10]) if re.search(r"[\u3400-\u9fff]", topic) else " ".join(topic.split()[:4])
    plan = plan_from_playbook(playbook, text, deadline=deadline, topic=short or None)
    lines = []
    for s in plan.subtasks:
        after = f"; after {', '.join(s.depends_on)}" if s.depends_on else ""
        lines.append(f"{s.id}. {s.title} [{', '.join(s.skills)}; {s.estimate_hours:g} h; {s.kind}{after}]")
    return "\n".join(lines)


def preload(factory: Callable[[], Proposer]) -> Callable[[], Proposer]:
    """Start factory() in a background thread now; the returned callable waits for it (or re-raises).

    Loading the LLM (seconds) then overlaps with loading the embedder and the playbook index.
    """
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = factory()
        except BaseException as e:  # handed to the caller of result()
            box["error"] = e

    thread = threading.Thread(target=run, name="taskwright-model-preload", daemon=True)
    thread.start()

    def result() -> Proposer:
        thread.join()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["value"]  # type: ignore[return-value]

    return result


def _strip_controls(text: str) -> str:
    """Drop control characters (NUL, ESC, BEL …) and bidi overrides; whitespace controls become spaces."""
    return "".join(
        " " if ch.isspace() else ch
        for ch in _ANSI_ESCAPE.sub("", text)
        if ch.isspace() or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS)
    )


def _clean_request(request: str) -> tuple[str, list[str]]:
    text = " ".join(_strip_controls(request).split())
    if not text:
        raise TaskwrightError("The request is empty. Try: plan: launch the pricing page by Dec 20")
    if not any(ch.isalnum() for ch in text):
        raise TaskwrightError(f"The request {text[:40]!r} has no words to plan from. "
                              "Try: plan: launch the pricing page by Dec 20")
    warnings: list[str] = []
    if len(text) > MAX_REQUEST_CHARS:
        warnings.append(f"The request was {len(text):,} characters; I planned from the first "
                        f"{MAX_REQUEST_CHARS:,}.")
        text = text[:MAX_REQUEST_CHARS].rsplit(" ", 1)[0]
    if _STEERING.search(text):
        warnings.append("Who does what is decided from skills and free capacity, not from instructions in "
                        "the request; use Reassign to change an assignee.")
    return text, warnings
