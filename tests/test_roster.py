"""Roster files: valid CSV/YAML import, and bad files rejected whole with row-level messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.roster import demo_roster_path, load_roster
from bot.store import Store
from planner.errors import RosterError

HEADER = "name,slack_id,email,skills,capacity_hours,timezone\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    p = tmp_path / "team.csv"
    p.write_text(header + body, encoding="utf-8")
    return p


def test_demo_roster_loads() -> None:
    members = load_roster(demo_roster_path())
    assert len(members) == 10 and all(1 <= lvl <= 5 for m in members for lvl in m.skills.values())


def test_yaml_roster(tmp_path: Path) -> None:
    p = tmp_path / "team.yaml"
    p.write_text("members:\n  - {name: Ana, slack_id: U0ANA, skills: {SQL: 4, Data  Analysis: 5}, "
                 "capacity_hours: 30}\n", encoding="utf-8")
    [ana] = load_roster(p)
    assert ana.skills == {"sql": 4, "data analysis": 5}


@pytest.mark.parametrize(
    "body, header, message",
    [
        ("Ana,U0ANA,,sql:4,30,UTC\n", "name,slack_id,email,capacity_hours\n", r"missing column\(s\) skills"),
        ("Ana,U0ANA,,sql:4,30,UTC\nBen,U0ANA,,python:3,20,UTC\n", HEADER, "duplicate slack_id U0ANA"),
        ("Ana,U0ANA,,sql:6,30,UTC\n", HEADER, "level 6 is outside 1-5"),
        ("Ana,U0ANA,,sql:0,30,UTC\n", HEADER, "level 0 is outside 1-5"),
        ("Ana,U0ANA,,sql,30,UTC\n", HEADER, "has no level"),
        ("Ana,bob,,sql:3,30,UTC\n", HEADER, "not a Slack user id"),
        ("Ana,U0ANA,,sql:3,lots,UTC\n", HEADER, "not a number"),
        ("", HEADER, "no members"),
    ],
)
def test_bad_rosters_are_rejected_whole(tmp_path: Path, body: str, header: str, message: str) -> None:
    with pytest.raises(RosterError, match=message):
        load_roster(_csv(tmp_path, body, header))


def test_cli_import_bad_file_writes_nothing(tmp_path: Path, env_setup: Path) -> None:
    good_then_bad = _csv(tmp_path, "Ana,U0ANA,,sql:4,30,UTC\nBen,U0BEN,,python:9,20,UTC\n")
    result = CliRunner().invoke(cli, ["team", "import", str(good_then_bad)])
    assert result.exit_code == 1 and "row 3" in result.output and "nothing imported" in result.output
    assert Store(env_setup / "taskwright.db").members() == []


def test_cli_team_commands(env_setup: Path) -> None:
    runner = CliRunner()
    assert "Loaded the demo team (10 members)" in runner.invoke(cli, ["team", "demo"]).output
    assert "already present" in runner.invoke(cli, ["team", "demo", "--if-empty"]).output
    out = runner.invoke(cli, ["team", "add", "U0NEW", "Nia", "--skills", "legal:4", "--capacity", "10"])
    assert out.exit_code == 0, out.output
    assert "Nia" in runner.invoke(cli, ["team", "list"]).output
    assert runner.invoke(cli, ["team", "remove", "U0NEW"]).exit_code == 0
    bad = runner.invoke(cli, ["team", "add", "U0X", "X", "--skills", "legal:7"])
    assert bad.exit_code != 0 and "outside 1-5" in bad.output
