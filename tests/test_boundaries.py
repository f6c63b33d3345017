"""Architecture rules: heavy or platform libraries are imported only in their own modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ALLOWED = {
    "slack_bolt": {"bot/slack.py", "bot/slack_http.py", "bot/slack_render.py"},
    "slack_sdk": {"bot/slack.py", "bot/slack_http.py", "bot/slack_render.py"},
    "sqlite_utils": {"bot/store.py", "bot/migrations.py"},
    "langchain_core": {"planner/chain.py", "planner/llm.py", "planner/proposer.py"},
    "langchain_openai": {"planner/llm.py"},
    "xllamacpp": {"planner/llm.py"},
    "torch": {"planner/embed.py", "planner/llm.py"},
    "transformers": {"planner/embed.py", "planner/llm.py"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_libraries_stay_in_their_modules() -> None:
    offenders = []
    for pkg in ("bot", "planner", "generation"):
        for path in (REPO / pkg).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            for lib in _imports(path) & ALLOWED.keys():
                if rel not in ALLOWED[lib] and not rel.startswith("generation/"):
                    offenders.append(f"{rel} imports {lib}")
    assert offenders == []


@pytest.mark.parametrize("args", [[], ["plan"], ["run"], ["chat"], ["ask"], ["slack"], ["team"], ["team", "import"]])
def test_help_does_not_load_torch_or_slack(args: list[str]) -> None:
    code = (
        "import sys; from click.testing import CliRunner; from bot.cli import cli; "
        f"r = CliRunner().invoke(cli, {args + ['--help']!r}); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'transformers', 'slack_bolt', 'xllamacpp', 'langchain_core') "
        "if m in sys.modules]; assert not heavy, heavy; print(r.output)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout
