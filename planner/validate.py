"""Judge an LLM's plan: parse it, check it is a sound DAG, and turn it into a DraftPlan.

The schema is an object `{"subtasks": [...], "n_subtasks": N}`, not a bare list: several servers return `{}`
for a top-level array, and `n_subtasks` catches output cut at max_tokens that a lenient parser would accept
as a shorter plan. Every rejection raises InvalidPlanError with a message fit to send back to the model.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from planner.errors import InvalidPlanError
from planner.types import DraftPlan, Subtask

log = logging.getLogger(__name__)

MIN_SUBTASKS = 2
MAX_SUBTASKS = 15
# The prompt asks for 3-8; the grammar stops at 10 so a model repeating itself (Qwen2.5-Coder-1.5B on a
# Chinese request) ends well inside max_tokens instead of being cut off. Other servers may send up to 15.
SCHEMA_MAX_SUBTASKS = 10
MIN_HOURS = 0.25
MAX_HOURS = 80.0
TITLE_MAX = 120
DESCRIPTION_MAX = 400
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def _as_id(value: Any) -> Any:
    """Small models write ids as numbers; accept them as strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


class SubtaskOut(BaseModel):
    """One subtask as the model writes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=20)
    title: str
    description: str = ""
    skills: list[str] = Field(min_length=1, max_length=6)
    estimate_hours: float
    depends_on: list[str] = Field(default_factory=list, max_length=MAX_SUBTASKS)
    kind: Literal["human", "text", "image", "data"] = "human"

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> Any:
        return _as_id(v)

    @field_validator("depends_on", mode="before")
    @classmethod
    def _deps(cls, v: Any) -> Any:
        return [_as_id(x) for x in v] if isinstance(v, list) else v


class PlanOut(BaseModel):
    """The whole object the model must return."""

    model_config = ConfigDict(extra="forbid")

    subtasks: list[SubtaskOut] = Field(max_length=MAX_SUBTASKS + 5)
    n_subtasks: int


def plan_json_schema(*, skill_pattern: str | None = None) -> dict[str, Any]:
    """The JSON schema for `response_format`; llama.cpp turns it into a grammar (llguidance), so the length
    bounds stop a run-on description during generation (measured at no cost in tokens/s)."""
    skill: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 40}
    if skill_pattern:
        skill["pattern"] = skill_pattern
    subtask = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "maxLength": 4},
            "title": {"type": "string", "minLength": 1, "maxLength": 100},
            "description": {"type": "string", "maxLength": 90},
            "skills": {
                "type": "array",
                "items": skill,
                "minItems": 1,
                "maxItems": 4,
            },
            "estimate_hours": {"type": "number"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "kind": {"type": "string", "enum": ["human", "text", "image", "data"]},
        },
        "required": ["id", "title", "description", "skills", "estimate_hours", "depends_on", "kind"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "subtasks": {
                "type": "array",
                "items": subtask,
                "minItems": MIN_SUBTASKS,
                "maxItems": SCHEMA_MAX_SUBTASKS,
            },
            "n_subtasks": {"type": "integer"},
        },
        "required": ["subtasks", "n_subtasks"],
        "additionalProperties": False,
    }


def extract_json(text: str) -> Any:
    """Parse JSON from a reply: the whole text, a fenced block, or the first object inside prose."""
    text = text.strip()
    if not text:
        raise InvalidPlanError("The reply was empty; expected a JSON object.")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block.strip())
        except json.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[{\[]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and "subtasks" in value:
            return value
        if isinstance(value, list) and value and all(isinstance(v, dict) and "title" in v for v in value):
            return value
    if "{" in text:
        raise InvalidPlanError(
            "The reply's JSON is incomplete or malformed (was it cut off?); send the whole object."
        )
    raise InvalidPlanError("The reply was prose, not JSON; reply with the JSON object only.")


def _parse(raw: str | dict[str, Any]) -> PlanOut:
    data = extract_json(raw) if isinstance(raw, str) else raw
    if isinstance(data, list):
        raise InvalidPlanError(
            'Expected a JSON object {"subtasks": [...], "n_subtasks": N}, got a bare list.'
        )
    if not isinstance(data, dict):
        raise InvalidPlanError('Expected a JSON object {"subtasks": [...], "n_subtasks": N}.')
    try:
        return PlanOut.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "plan"
        raise InvalidPlanError(f"Schema error at {where}: {first['msg']}.") from None


def _check_counts(plan: PlanOut) -> None:
    n = len(plan.subtasks)
    if plan.n_subtasks != n:
        raise InvalidPlanError(
            f"n_subtasks is {plan.n_subtasks} but the list has {n} subtasks (was the output cut off?)."
        )
    if not MIN_SUBTASKS <= n <= MAX_SUBTASKS:
        raise InvalidPlanError(f"A plan needs {MIN_SUBTASKS} to {MAX_SUBTASKS} subtasks; got {n}.")


def _check_subtasks(plan: PlanOut) -> None:
    seen_ids: set[str] = set()
    seen_titles: dict[str, str] = {}
    for st in plan.subtasks:
        if st.id in seen_ids:
            raise InvalidPlanError(f"Subtask id {st.id!r} is used twice; ids must be unique.")
        seen_ids.add(st.id)
        title = " ".join(st.title.split())
        if not title:
            raise InvalidPlanError(f"Subtask {st.id} has an empty title.")
        key = title.casefold()
        if key in seen_titles:
            raise InvalidPlanError(f"Subtasks {seen_titles[key]} and {st.id} have the same title {title!r}.")
        seen_titles[key] = st.id
        if not MIN_HOURS <= st.estimate_hours <= MAX_HOURS:
            raise InvalidPlanError(
                f"Subtask {st.id} estimates {st.estimate_hours} hours; keep each between {MIN_HOURS} and "
                f"{MAX_HOURS:g}."
            )
        if any(not s.strip() for s in st.skills):
            raise InvalidPlanError(f"Subtask {st.id} has an empty skill name.")
    for st in plan.subtasks:
        for dep in st.depends_on:
            if dep not in seen_ids:
                raise InvalidPlanError(f"Subtask {st.id} depends on {dep!r}, which is not a subtask id.")


def _drop_self_dependencies(plan: PlanOut) -> list[str]:
    """A subtask listing itself is a slip with one meaning (Qwen2.5-Coder-1.5B did it in the benchmark):
    drop it and say so, rather than spend a whole repair round on it. Longer cycles are rejected."""
    warnings = []
    for st in plan.subtasks:
        if st.id in st.depends_on:
            st.depends_on = [d for d in st.depends_on if d != st.id]
            warnings.append(f"The model listed subtask {st.title!r} as depending on itself; ignored that.")
    return warnings


def _check_acyclic(plan: PlanOut) -> None:
    deps = {st.id: set(st.depends_on) for st in plan.subtasks}
    done: set[str] = set()
    while len(done) < len(deps):
        ready = [i for i, d in deps.items() if i not in done and d <= done]
        if not ready:
            stuck = sorted(set(deps) - done)
            raise InvalidPlanError(f"The dependencies form a cycle among subtasks {', '.join(stuck)}.")
        done.update(ready)


def _dedupe(items: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        s = " ".join(item.split())
        if s and s.casefold() not in {o.casefold() for o in out}:
            out.append(s)
    return tuple(out)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plan_title(request: str) -> str:
    """A short title from the request's first line."""
    line = next((ln.strip() for ln in request.splitlines() if ln.strip()), "Plan")
    return line if len(line) <= 80 else line[:77].rstrip() + "..."


def validate_plan(
    raw: str | dict[str, Any], *, request: str, deadline: dt.date | None, source: str = "llm"
) -> DraftPlan:
    """Parse and judge a model's plan; return it with ids renumbered "1", "2", ... in order."""
    plan = _parse(raw)
    _check_counts(plan)
    _check_subtasks(plan)
    warnings = _drop_self_dependencies(plan)
    _check_acyclic(plan)
    new_id = {st.id: str(i) for i, st in enumerate(plan.subtasks, start=1)}
    subtasks = tuple(
        Subtask(
            id=new_id[st.id],
            title=_shorten(st.title, TITLE_MAX),
            description=_shorten(st.description, DESCRIPTION_MAX),
            skills=_dedupe(st.skills),
            estimate_hours=round(float(st.estimate_hours), 2),
            depends_on=tuple(dict.fromkeys(new_id[d] for d in st.depends_on)),
            kind=st.kind,
        )
        for st in plan.subtasks
    )
    return DraftPlan(
        request=request,
        title=plan_title(request),
        subtasks=subtasks,
        source=source,
        deadline=deadline,
        warnings=tuple(warnings),
    )
