"""The console adapter end to end: the same commands as Slack, rendered as text."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

from click.testing import CliRunner

from bot.cli import cli
from bot.console import Console
from bot.roster import demo_roster_path, load_roster
from bot.service import Assistant
from bot.store import Store


def test_console_session(tmp_path: Path, playbook_planner) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path / "t.db")
    store.save_members(load_roster(demo_roster_path()))
    assistant = Assistant(store=store, planner=playbook_planner,
                          today=lambda: dt.date(2026, 12, 3))
    lines: list[str] = []
    console = Console(assistant, user="U0DEMOELI", out=lines.append, today="2026-12-03")
    script = "plan: launch the pricing page by Dec 20\nteam\nboard\nquit\nnever read\n"
    console.run(io.StringIO(script))
    text = "\n".join(lines)
    assert "Plan #1:" in text and "deadline: Sun 2026-12-20" in text and "why:" in text
    assert "→ DM to" in text and "Team (10)" in text and "Team board" in text
    assert "never read" not in text
    task = store.get_plan(1).tasks[0]  # type: ignore[union-attr]
    lines.clear()
    console.send(f"as {task.assignee.slack_id}")  # type: ignore[union-attr]
    console.send(f"accept {task.id}")
    assert store.task(task.id).status == "accepted"  # type: ignore[union-attr]
    console.send("my tasks")
    assert any("Your open tasks" in line for line in lines)


def test_cli_plan_json_shape(env_setup: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["team", "demo"]).exit_code == 0
    env = {"TASKWRIGHT_LLM": "openai", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "x",
           "TASKWRIGHT_LLM_TIMEOUT": "2"}
    result = runner.invoke(cli, ["plan", "--json", "--today", "2026-12-03",
                                 "Prepare the Q3 sales report for the board meeting next Friday"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    plan = data["plan"]
    assert set(plan) >= {"id", "request", "source", "subtasks"} and isinstance(data["warnings"], list)
    assert plan["source"].startswith("playbook:")  # the unreachable server made the chain fail over
    assert len(plan["subtasks"]) >= 3
    for s in plan["subtasks"]:
        assert set(s) >= {"id", "title", "description", "skills", "estimate_hours", "depends_on", "kind",
                          "assignee", "why", "start", "due"}
        assert s["kind"] in ("human", "text", "image", "data") and s["why"]
    bad = runner.invoke(cli, ["plan", "--today", "tomorrow", "x"])
    assert bad.exit_code == 1 and "not a date" in bad.output
