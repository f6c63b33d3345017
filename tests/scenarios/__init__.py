"""Whole chat flows: the Slack app against a fake Slack Web API on loopback (see tests/fake_slack.py).

Helpers shared by the scenario modules: the payload fixtures in ../shared/slack-fixtures, request signing
(computed here with hmac, independently of slack_sdk) and a running app in HTTP mode.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.settings import Settings
from bot.slack import SlackHTTPServer, build_slack_app, make_http_server
from planner.types import Member

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "slack-fixtures"
SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-test-placeholder"
TEAM = [
    Member(
        "Ann Lee", "U0000000001", {"writing": 4, "marketing": 4, "project management": 3}, capacity_hours=30
    ),
    Member("Bo Chen", "U0000000002", {"design": 5, "frontend": 4, "web development": 4}, capacity_hours=30),
    Member("Cy Diaz", "U0000000003", {"python": 5, "data analysis": 4, "sql": 4}, capacity_hours=30),
]


def load_fixture(name: str) -> dict[str, Any]:
    """One payload from ../shared/slack-fixtures (skips the test when that folder is missing)."""
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} is missing (CI lays shared/ beside the checkout)")
    return copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))


def sign(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack adds: X-Slack-Request-Timestamp and v0= hex HMAC-SHA256 of `v0:{ts}:{body}`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slack_settings(home: Path, api_url: str) -> Settings:
    return Settings(home=home, slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET, slack_api_url=api_url)  # type: ignore[call-arg]


@dataclass
class HttpRig:
    """The app served over HTTP on a free loopback port."""

    server: SlackHTTPServer
    url: str

    def post(self, body: str, *, content_type: str, headers: dict[str, str]) -> tuple[int, str, float]:
        """POST body; returns (status, response text, seconds taken)."""
        req = urllib.request.Request(
            self.url, data=body.encode(), method="POST", headers={"Content-Type": content_type, **headers}
        )
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode(), time.perf_counter() - t0
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), time.perf_counter() - t0

    def event(
        self, payload: dict[str, Any], *, retry: int | None = None, **sign_kw: Any
    ) -> tuple[int, str, float]:
        """Send an Events API body, signed; retry sets X-Slack-Retry-Num like a re-delivery."""
        body = json.dumps(payload)
        headers = sign(body, **sign_kw)
        if retry is not None:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(body, content_type="application/json", headers=headers)

    def form(self, fields: dict[str, str], **sign_kw: Any) -> tuple[int, str, float]:
        """Send a url-encoded form (slash command fields, or {"payload": json} for interactivity), signed."""
        body = urlencode(fields)
        return self.post(
            body, content_type="application/x-www-form-urlencoded", headers=sign(body, **sign_kw)
        )

    def interaction(self, payload: dict[str, Any]) -> tuple[int, str, float]:
        return self.form({"payload": json.dumps(payload)})


@contextmanager
def serve_http(assistant: Any, settings: Settings) -> Iterator[HttpRig]:
    """Build the app, serve it on 127.0.0.1 port 0 in a thread, and shut everything down afterwards."""
    worker = ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-slack-worker")
    server = make_http_server(build_slack_app(assistant, settings, worker=worker), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield HttpRig(server, f"http://127.0.0.1:{server.port}/slack/events")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        worker.shutdown(wait=True, cancel_futures=True)


class StandInAssistant:
    """TODO(remove): stands in for bot.service.Assistant until planner.core imports; same contract."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def route(self, req: Any) -> Any:
        from bot.types import Intent

        return Intent("plan", req.text, slow=True, status_text="Planning… :hourglass_flowing_sand:")

    def handle(self, req: Any) -> list[Any]:
        import datetime as dt

        from bot.types import DirectMessage, PlanReply, TaskListReply
        from planner.types import Assignment, DraftPlan, Slot, Subtask

        subs = tuple(Subtask(str(i), f"Step {i}", skills=("writing",), estimate_hours=2) for i in range(1, 4))
        draft = DraftPlan(request=req.text, title=req.text[:60], subtasks=subs, source="playbook:stand-in")
        members = self.store.members()
        assigns = [Assignment(s.id, members[i % len(members)], "round robin") for i, s in enumerate(subs)]
        slots = [Slot(s.id, dt.date(2024, 1, 1), dt.date(2024, 1, 2)) for s in subs]
        plan = self.store.save_plan(
            draft, assigns, slots, requester=req.user, channel=req.channel, thread_ts=req.reply_thread or ""
        )
        dms = {t.assignee.slack_id: t for t in plan.tasks if t.assignee}
        return [PlanReply(plan), *(DirectMessage(u, TaskListReply("New", (t,))) for u, t in dms.items())]

    def handle_action(self, act: Any) -> list[Any]:
        from bot.types import PlanReply, TextReply

        task = self.store.task(act.task_id)
        if task is None:
            return [TextReply(f"Task {act.task_id} no longer exists.", kind="error")]
        if act.action == "accept" and (task.assignee is None or task.assignee.slack_id != act.user):
            return [TextReply("Only the assignee can accept.", kind="error")]
        if act.action == "reassign":
            members = [
                m for m in self.store.members() if not task.assignee or m.slack_id != task.assignee.slack_id
            ]
            self.store.reassign(task.id, members[0], actor=act.user, why="next")
        else:
            self.store.set_status(task.id, "accepted" if act.action == "accept" else "done", actor=act.user)
        return [PlanReply(self.store.get_plan(task.plan_id), update=True)]


def make_assistant(settings: Settings, store: Any, request: pytest.FixtureRequest) -> Any:
    """The real Assistant over store with the playbook-only planner (no LLM) and the session's embedder."""
    try:
        from bot.service import build_assistant, build_playbook_planner
    except ImportError:  # TODO(remove) once planner.core imports
        return StandInAssistant(store)
    planner = build_playbook_planner(settings, embedder=request.getfixturevalue("embedder"))
    return build_assistant(settings, store=store, planner=planner)
