"""Shared fixtures: every test gets its own TASKWRIGHT_HOME and no Slack/OpenAI variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# Captured before any test changes it: where `make test` fetched the real models.
_ORIGINAL_HOME = os.environ.get("TASKWRIGHT_HOME")

_CLEARED = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "TASKWRIGHT_SLACK_API_URL",
            "TASKWRIGHT_LLM", "TASKWRIGHT_LLM_MODEL", "TASKWRIGHT_DB", "OPENAI_BASE_URL", "OPENAI_API_KEY",
            "TASKWRIGHT_LOCAL_ENGINE")


@pytest.fixture(autouse=True)
def env_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TASKWRIGHT_HOME", str(home))
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return home


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real all-MiniLM-L6-v2 (about 3 s to load), shared by the whole session."""
    from planner.embed import default_embedder

    return default_embedder()


@pytest.fixture(scope="session")
def playbook_planner(embedder):  # type: ignore[no-untyped-def]
    """The real planner without an LLM (playbooks + optimizer), built once: playbooks are embedded once."""
    from bot.service import build_playbook_planner

    return build_playbook_planner(embedder=embedder)


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """The models folder `make test` fetched into (the user's TASKWRIGHT_HOME, not the per-test one)."""
    from bot.settings import _default_home

    path = (Path(_ORIGINAL_HOME) if _ORIGINAL_HOME else _default_home()) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is missing (CI lays shared/ beside the checkout)")
    return SHARED
