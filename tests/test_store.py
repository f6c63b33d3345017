"""The store against real SQLite files: migrations, transactions, audit trail, event de-duplication."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.store import Store
from planner.types import Assignment, DraftPlan, Member, Slot, Subtask

ANA = Member("Ana", "U0ANA", {"sql": 4}, 30)
BEN = Member("Ben", "U0BEN", {"python": 5}, 40)


def _draft(n: int = 2) -> DraftPlan:
    subs = tuple(Subtask(str(i), f"step {i}", skills=("sql",), estimate_hours=3,
                         depends_on=(str(i - 1),) if i > 1 else ()) for i in range(1, n + 1))
    return DraftPlan("do the thing", "The thing", subs, "playbook:general", dt.date(2026, 12, 20))


def test_migrations_apply_once_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    Store(path).save_members([ANA])
    again = Store(path)
    assert [m.slack_id for m in again.members()] == ["U0ANA"]
    names = [r[0] for r in sqlite3.connect(path).execute("select name from _sqlite_migrations")]
    assert names == ["m001_initial", "m002_generation_and_files"]


def test_plan_round_trip_and_open_hours(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.save_members([ANA, BEN])
    d = dt.date(2026, 12, 4)
    plan = store.save_plan(_draft(), [Assignment("1", ANA, "sql fits"), Assignment("2", None, "nobody free")],
                           [Slot("1", d, d), Slot("2", d, d)], requester="U0BEN", warnings=["tight"])
    assert plan.tasks[0].assignee == ANA and plan.tasks[1].assignee is None
    assert plan.tasks[1].why == "nobody free" and plan.warnings == ("tight",)
    assert store.open_hours() == {"U0ANA": 3.0}
    assert store.get_plan(plan.id) == plan
    store.set_status(plan.tasks[0].id, "done", actor="U0ANA")
    assert store.open_hours() == {}
    actions = [e["action"] for e in store.task_events(plan.tasks[0].id)]
    assert actions == ["create", "done"]


def test_save_plan_is_all_or_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    bad = DraftPlan("r", "t", (Subtask("1", "a"), Subtask("2", "b", estimate_hours="x")), "llm")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.save_plan(bad, [], [], requester="U1")
    assert store.plans() == []
    assert store.db["tasks"].count == 0


def test_claim_event_is_atomic_across_threads(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(store.claim_event("Ev1"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    assert Store(tmp_path / "t.db").claim_event("Ev1") is False  # survives a restart


def test_remove_member_unassigns_open_tasks(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    store.save_members([ANA, BEN])
    plan = store.save_plan(_draft(1), [Assignment("1", ANA, "fits")], [], requester="U0BEN")
    freed = store.remove_member("U0ANA")
    assert [t.id for t in freed] == [plan.tasks[0].id]
    assert store.task(plan.tasks[0].id).assignee is None  # type: ignore[union-attr]
    assert [m.slack_id for m in store.members()] == ["U0BEN"]
    assert store.remove_member("U0NOBODY") == []


def test_settings_ignore_unrelated_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bot.settings import Settings

    monkeypatch.delenv("TASKWRIGHT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "not-taskwright"))
    monkeypatch.setenv("LLM", "openai")
    monkeypatch.setenv("DB", "/nowhere.db")
    s = Settings()
    assert s.llm == "local" and s.db is None and s.home.name == "taskwright"
    monkeypatch.setenv("TASKWRIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("TASKWRIGHT_LLM", "openai")
    assert Settings().home == tmp_path and Settings().llm == "openai"
