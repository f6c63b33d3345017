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
from tests.fake_slack import BOT_USER_ID, FakeSlack

__all__ = ["BOT_USER_ID", "FakeSlack"]

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


def posted_ts(store: Any, plan_id: int) -> str | None:
    """The ts of the message the plan was posted in, as the adapter recorded it (store.set_plan_message)."""
    ts: str | None = store.db.table("plans").get(plan_id)["message_ts"]
    return ts


def slack_settings(home: Path, api_url: str, **extra: Any) -> Settings:
    return Settings(home=home, slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET, slack_api_url=api_url,  # type: ignore[call-arg]
                    **extra)


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


def make_assistant(settings: Settings, store: Any, request: pytest.FixtureRequest) -> Any:
    """The real Assistant over store with the session's playbook-only planner (no LLM)."""
    from bot.service import build_assistant

    return build_assistant(settings, store=store, planner=request.getfixturevalue("playbook_planner"))
