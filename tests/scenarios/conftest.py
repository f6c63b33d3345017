"""Fixtures every Slack scenario uses: the Web API fake on loopback and a store holding the test team."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store
from tests.chat_support import generation_service

from . import TEAM, FakeSlack

__all__ = ["fake_slack", "generation_service", "store"]  # generation_service: a session fixture


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "t.db")
    store.save_members(TEAM)
    yield store
    store.close()
