"""Intent routing: explicit syntax, Chinese forms, and free text."""

from __future__ import annotations

import pytest

from bot.router import Router


@pytest.mark.parametrize(
    "text, intent, argument",
    [
        ("plan: launch the pricing page by Dec 20", "plan", "launch the pricing page by Dec 20"),
        ("/plan hire a designer", "plan", "hire a designer"),
        ("Plan： 下周五前准备销售报告", "plan", "下周五前准备销售报告"),
        ("计划：月底结账", "plan", "月底结账"),
        ("my tasks", "my_tasks", ""),
        ("我的任务", "my_tasks", ""),
        ("team", "team", ""),
        ("board", "board", ""),
        ("help", "help", ""),
        ("   ", "empty", ""),
        ("Prepare the Q3 sales report for the board meeting next Friday", "plan",
         "Prepare the Q3 sales report for the board meeting next Friday"),
        ("plan:", "plan", ""),
    ],
)
def test_explicit_routes(text: str, intent: str, argument: str) -> None:
    got = Router().route(text)
    assert (got.name, got.argument) == (intent, argument)
    assert got.slow == (intent == "plan" and bool(argument))


def test_free_text_similarity(embedder) -> None:  # type: ignore[no-untyped-def]
    router = Router(embedder=lambda: embedder)
    assert router.route("what's on my plate?").name == "my_tasks"
    assert router.route("who is on the team").name == "team"
    assert router.route("organise the offsite for 40 people in March").name == "plan"
