"""The remote backend: the real ChatOpenAI, built from settings, against a fake OpenAI-compatible server."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest

from bot.settings import load_settings
from planner.chain import PlanChain
from planner.errors import InvalidPlanError, ModelUnavailableError
from planner.llm import build_chat_model

try:
    from tests.conftest_models import plan_json
    from tests.fake_openai import FakeOpenAI
except ImportError:  # plain `pytest` without tests/ as a package
    from conftest_models import plan_json  # type: ignore[import-not-found, no-redef]
    from fake_openai import FakeOpenAI  # type: ignore[import-not-found, no-redef]

REQUEST = "Prepare the Q3 sales report for the board meeting next Friday"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _chain(fake: FakeOpenAI, **overrides: object) -> PlanChain:
    settings = load_settings(
        llm="openai", openai_base_url=fake.base_url, llm_model="qwen-test", llm_timeout_s=10, **overrides
    )
    return PlanChain(build_chat_model(settings))


def _propose(chain: PlanChain) -> object:
    return chain.propose(
        REQUEST, today=dt.date(2025, 12, 3), requester="U1", skills_vocabulary=["sql"], deadline=None
    )


def test_valid_plan_through_the_openai_api(fake: FakeOpenAI) -> None:
    fake.enqueue_content(plan_json(3))
    plan = _propose(_chain(fake))
    assert plan.source == "llm" and len(plan.subtasks) == 3  # type: ignore[attr-defined]
    (req,) = fake.requests
    assert req["model"] == "qwen-test"
    assert req["response_format"]["type"] == "json_schema"
    assert req["response_format"]["json_schema"]["schema"]["required"] == ["subtasks", "n_subtasks"]
    assert [m["role"] for m in req["messages"]] == ["system", "user"]
    assert REQUEST in req["messages"][1]["content"]
    assert req["_headers"]["authorization"] == "Bearer not-needed"  # local servers need no key


def test_prose_under_json_schema_is_repaired_then_rejected(fake: FakeOpenAI) -> None:
    fake.enqueue_content("Sure! First collect the data, then build slides.")
    fake.enqueue_content("I think the plan should have three steps.")
    with pytest.raises(InvalidPlanError, match="prose"):
        _propose(_chain(fake))
    assert len(fake.requests) == 2
    repair = fake.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! First collect the data, then build slides."}
    assert "prose" in repair[-1]["content"]


def test_server_error_is_retried_then_repaired(fake: FakeOpenAI) -> None:
    fake.enqueue_status(500).enqueue_status(500).enqueue_content(plan_json(2))
    plan = _propose(_chain(fake))
    assert plan.source == "llm+repair"  # type: ignore[attr-defined]
    assert len(fake.requests) == 3  # the client's own retry (max_retries=1), then our one repair call
    assert "attempt failed" in fake.requests[2]["messages"][-1]["content"]
    assert "500 - upstream failure" in fake.requests[2]["messages"][-1]["content"]


def test_persistent_server_error_becomes_invalid_plan_error(fake: FakeOpenAI) -> None:
    for _ in range(4):
        fake.enqueue_status(500, "model overloaded")
    with pytest.raises(InvalidPlanError, match="model overloaded"):
        _propose(_chain(fake))


def test_cut_off_output_is_a_repairable_failure(fake: FakeOpenAI) -> None:
    fake.enqueue_content(plan_json(4)[:-50], finish="length").enqueue_content(plan_json(3))
    plan = _propose(_chain(fake))
    assert plan.source == "llm+repair"  # type: ignore[attr-defined]
    assert "cut off" in fake.requests[1]["messages"][-1]["content"]


def test_model_is_built_once_per_settings(fake: FakeOpenAI) -> None:
    settings = load_settings(llm="openai", openai_base_url=fake.base_url, llm_model="m1")
    assert build_chat_model(settings) is build_chat_model(load_settings(**settings.model_dump()))
    other = load_settings(llm="openai", openai_base_url=fake.base_url, llm_model="m2")
    assert build_chat_model(other) is not build_chat_model(settings)


def test_openai_without_url_or_key_says_what_to_set() -> None:
    with pytest.raises(ModelUnavailableError, match="OPENAI_BASE_URL"):
        build_chat_model(load_settings(llm="openai", llm_model="unconfigured-test"))


def test_requests_are_valid_json_bodies(fake: FakeOpenAI) -> None:
    fake.enqueue_content(json.dumps({"subtasks": [], "n_subtasks": 0})).enqueue_content(plan_json(2))
    plan = _propose(_chain(fake))
    assert plan.source == "llm+repair"  # type: ignore[attr-defined]
    assert "2 to 15 subtasks" in fake.requests[1]["messages"][-1]["content"]
