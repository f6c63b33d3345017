"""The plan validator: every kind of bad LLM output is rejected with a message that names the problem."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from planner.errors import InvalidPlanError
from planner.validate import extract_json, plan_json_schema, validate_plan

DEADLINE = dt.date(2025, 12, 12)


def _plan(n: int = 3) -> dict[str, Any]:
    subtasks = [
        {
            "id": f"s{i}",
            "title": f"Step {i}",
            "description": f"Do step {i}.",
            "skills": ["sql", "excel"] if i % 2 else ["writing"],
            "estimate_hours": 2 + i,
            "depends_on": [f"s{i - 1}"] if i > 1 else [],
            "kind": "data",
        }
        for i in range(1, n + 1)
    ]
    return {"subtasks": subtasks, "n_subtasks": n}


def _check(raw: str | dict[str, Any]) -> Any:
    return validate_plan(raw, request="Prepare the Q3 sales report", deadline=DEADLINE)


def test_valid_plan_is_renumbered_keeping_dependencies() -> None:
    plan = _check(_plan(3))
    assert [s.id for s in plan.subtasks] == ["1", "2", "3"]
    assert [s.depends_on for s in plan.subtasks] == [(), ("1",), ("2",)]
    assert plan.subtasks[0].skills == ("sql", "excel")
    assert plan.source == "llm" and plan.deadline == DEADLINE
    assert plan.title == "Prepare the Q3 sales report"


def test_numeric_ids_and_json_text_are_accepted() -> None:
    data = _plan(2)
    data["subtasks"][0]["id"], data["subtasks"][1]["id"] = 10, 20
    data["subtasks"][1]["depends_on"] = [10]
    plan = _check(json.dumps(data))
    assert plan.subtasks[1].depends_on == ("1",)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: f"Sure! Here is the plan:\n```json\n{s}\n```\nGood luck.",
        lambda s: f"Here it is: {s} -- hope that helps",
        lambda s: f"```\n{s}\n```",
    ],
)
def test_json_is_extracted_from_prose_and_fences(wrap: Any) -> None:
    assert len(_check(wrap(json.dumps(_plan(3)))).subtasks) == 3


def _mutated(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_plan(3))
    change(data)
    return data


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def change(d: dict[str, Any]) -> None:
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


BAD = {
    "prose": ("I would start by gathering the data, then write the report.", "prose"),
    "empty": ("   ", "empty"),
    "truncated": (json.dumps(_plan(3))[:-40], "incomplete"),
    "bare list": (json.dumps(_plan(3)["subtasks"]), "bare list"),
    "count mismatch": (_mutated(_set(("n_subtasks",), 5)), "n_subtasks is 5"),
    "one subtask": (
        {"subtasks": _plan(1)["subtasks"], "n_subtasks": 1},
        "2 to 15 subtasks",
    ),
    "too many": (
        {
            "subtasks": [dict(_plan(1)["subtasks"][0], id=str(i), title=f"T{i}") for i in range(16)],
            "n_subtasks": 16,
        },
        "2 to 15",
    ),
    "cycle": (_mutated(_set(("subtasks", 0, "depends_on"), ["s3"])), "cycle"),
    "unknown dep": (_mutated(_set(("subtasks", 2, "depends_on"), ["s9"])), "'s9', which is not"),
    "duplicate id": (_mutated(_set(("subtasks", 2, "id"), "s1")), "used twice"),
    "duplicate title": (_mutated(_set(("subtasks", 2, "title"), " step 1 ")), "same title"),
    "empty title": (_mutated(_set(("subtasks", 1, "title"), "  ")), "empty title"),
    "estimate low": (_mutated(_set(("subtasks", 0, "estimate_hours"), 0.1)), "between 0.25 and 80"),
    "estimate high": (_mutated(_set(("subtasks", 0, "estimate_hours"), 500)), "between 0.25 and 80"),
    "no skills": (_mutated(_set(("subtasks", 0, "skills"), [])), "skills"),
    "blank skill": (_mutated(_set(("subtasks", 0, "skills"), ["sql", " "])), "empty skill"),
    "bad kind": (_mutated(_set(("subtasks", 0, "kind"), "robot")), "kind"),
    "extra field": (_mutated(_set(("subtasks", 0, "assignee"), "U123")), "assignee"),
    "extra top-level": (_mutated(_set(("owner",), "U123")), "owner"),
    "missing field": (_mutated(lambda d: d["subtasks"][0].pop("estimate_hours")), "estimate_hours"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_output_is_rejected_with_a_specific_message(name: str) -> None:
    raw, expected = BAD[name]
    with pytest.raises(InvalidPlanError) as info:
        _check(raw)
    assert expected.lower() in str(info.value).lower()


def test_a_self_dependency_is_dropped_with_a_warning() -> None:
    plan = _check(_mutated(_set(("subtasks", 1, "depends_on"), ["s2", "s1"])))
    assert plan.subtasks[1].depends_on == ("1",)
    assert plan.warnings == ("The model listed subtask 'Step 2' as depending on itself; ignored that.",)
    assert _check(_plan(3)).warnings == ()


def test_long_titles_and_descriptions_are_shortened_not_rejected() -> None:
    data = _mutated(_set(("subtasks", 0, "description"), "word " * 200))
    plan = _check(data)
    assert len(plan.subtasks[0].description) <= 400 and plan.subtasks[0].description.endswith("…")


def test_truncated_object_inside_prose_is_not_mistaken_for_a_subtask() -> None:
    text = "Plan: " + json.dumps(_plan(3))[:-60]
    with pytest.raises(InvalidPlanError, match="incomplete"):
        extract_json(text)


def test_schema_is_an_object_with_the_count_and_forbids_extras() -> None:
    schema = plan_json_schema()
    assert schema["type"] == "object" and schema["required"] == ["subtasks", "n_subtasks"]
    item = schema["properties"]["subtasks"]["items"]
    assert item["additionalProperties"] is False
    assert item["properties"]["kind"]["enum"] == ["human", "text", "image", "data"]
    assert schema["properties"]["subtasks"]["maxItems"] == 10  # a looping model stops inside max_tokens
    assert item["properties"]["description"]["maxLength"] <= 400  # a run-on description cannot eat max_tokens
