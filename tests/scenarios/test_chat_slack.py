"""Files, reports and generation in Slack HTTP mode: really signed requests to the bot's endpoint, the Web API a
fake on loopback that stores uploads and serves downloads only with the bot token."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bot.scheduler import ReportScheduler, Schedule, parse_schedule
from bot.service import Assistant
from bot.settings import Settings
from bot.slack import Target, build_slack_app, slack_adapter
from bot.store import Store
from planner.errors import TaskwrightError

from . import BOT_USER_ID, FakeSlack, HttpRig, load_fixture, serve_http, slack_settings

CHANNEL = "C0000000001"
DM = "D0000000001"


def sales_csv(rows: int = 240) -> bytes:
    """A small sales table with a date, two categories and numbers (some with thousands separators)."""
    regions, products = ["North", "South", "East", "West"], ["Tea", "Coffee", "Cocoa"]
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Date", "Region", "Product", "Sales", "Units"])
    for i in range(rows):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=i % 120)
        sales = round(50 + (i * 37) % 400 + (i % 7) * 0.25, 2)
        w.writerow([day.isoformat(), regions[i % 4], products[i % 3], f"{sales:,.2f}" if i % 5 == 0 else sales,
                    1 + i % 9])
    return out.getvalue().encode()


def data_assistant(settings: Settings, store: Store, playbook_planner: Any) -> Assistant:
    """No text model: the narrative is the template's, so the test needs no generator."""
    return Assistant(store=store, planner=playbook_planner, files_dir=settings.files_dir,
                     max_file_mb=settings.max_file_mb)


@pytest.fixture
def rig(store: Store, fake_slack: FakeSlack, env_setup: Path, playbook_planner: Any) -> Iterator[HttpRig]:
    settings = slack_settings(env_setup, fake_slack.api_url)
    with serve_http(data_assistant(settings, store, playbook_planner), settings) as rig:
        fake_slack.wait_for("auth.test")
        yield rig


def dm_file_share(files: list[dict[str, Any]], *, event_id: str = "EvFile000001", text: str = "",
                  ts: str = "1700000250.000600") -> dict[str, Any]:
    payload = load_fixture("events_message_file_share_access_stub.json")
    payload["event_id"] = event_id
    payload["event"] |= {"files": files, "text": text, "ts": ts, "event_ts": ts}
    return payload


def dm_in_thread(text: str, thread_ts: str, *, event_id: str, ts: str = "1700000300.000700") -> dict[str, Any]:
    payload = load_fixture("events_message_im.json")
    payload["event_id"] = event_id
    payload["event"] |= {"text": text, "ts": ts, "event_ts": ts, "thread_ts": thread_ts}
    return payload


def texts_in_thread(fake: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    """Every message text the bot posted or updated into the thread (status messages turn into answers)."""
    out = []
    for c in fake.calls:
        if c.method == "chat.postMessage" and c.params.get("channel") == channel:
            if c.params.get("thread_ts") == thread_ts:
                out.append(c.params.get("text", ""))
        elif c.method == "chat.update" and c.params.get("channel") == channel:
            out.append(c.params.get("text", ""))
    return out


def test_a_shared_csv_gets_facts_charts_and_a_narrative_then_answers_in_its_thread(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, env_setup: Path
) -> None:
    content = sales_csv()
    shared = fake_slack.add_file("sales.csv", content)
    thread = "1700000250.000600"
    status, _, seconds = rig.event(dm_file_share([shared]))
    assert status == 200 and seconds < 3
    fake_slack.wait_for("files.completeUploadExternal", 2, timeout=60)
    fake_slack.quiet(for_s=0.5, timeout=60)
    [download] = fake_slack.calls_of("download")
    assert download.headers["authorization"] == "Bearer xoxb-test-placeholder"
    charts = fake_slack.uploads()
    assert 2 <= len(charts) <= 4
    assert all(f.channel == DM and f.thread_ts == thread and f.content[:4] == b"\x89PNG" for f in charts)
    texts = "\n".join(texts_in_thread(fake_slack, DM, thread))
    assert "sales.csv" in texts and "Rows: 240" in texts and "Columns: 5" in texts
    remembered = store.table_for(DM, thread)
    assert remembered is not None and remembered[0].read_bytes() == content
    assert remembered[0].is_relative_to(env_setup / "files")

    fake_slack.clear()
    rig.event(dm_in_thread("total Sales by Region", thread, event_id="EvFollow0001"))
    fake_slack.wait_for("files.completeUploadExternal", 1, timeout=30)
    fake_slack.quiet()
    answer = "\n".join(texts_in_thread(fake_slack, DM, thread))
    df = pd.read_csv(io.BytesIO(content), thousands=",")
    expected = df.groupby("Region")["Sales"].sum()
    for region, total in expected.items():
        line = next(line for line in answer.splitlines() if line.strip().startswith(str(region)))
        assert f"{total:,.2f}" in line, (region, total, line)
    assert [f.thread_ts for f in fake_slack.uploads()] == [thread]  # the answer's chart, in the thread

    fake_slack.clear()
    rig.event(dm_in_thread("按地区统计销售额", thread, event_id="EvFollow0002", ts="1700000301.000700"))
    fake_slack.wait_for("files.completeUploadExternal", 1, timeout=30)
    fake_slack.quiet()
    assert f"{expected['West']:,.2f}" in "\n".join(texts_in_thread(fake_slack, DM, thread))


def test_a_mention_with_files_in_a_channel_summarizes_each_in_its_thread(
    rig: HttpRig, fake_slack: FakeSlack, store: Store
) -> None:
    payload = load_fixture("events_message_file_share.json")
    payload["event"]["type"] = "app_mention"  # Slack sends the mention with its files as app_mention
    payload["event"].pop("subtype")
    payload["event"]["files"] = [fake_slack.add_file("sales_q3.csv", sales_csv(60)),
                                 fake_slack.add_file("broken.csv", b"\x00\x01\x02garbage\xff" * 50)]
    ts = payload["event"]["ts"]
    assert rig.event(payload)[0] == 200
    fake_slack.wait_for("files.completeUploadExternal", 2, timeout=60)
    fake_slack.quiet(for_s=0.5, timeout=60)
    texts = "\n".join(texts_in_thread(fake_slack, CHANNEL, ts))
    assert "sales_q3.csv" in texts and "broken.csv" in texts  # the bad one named in its own message
    assert all(f.thread_ts == ts for f in fake_slack.uploads())
    [path, name] = store.table_for(CHANNEL, ts)  # type: ignore[misc]
    assert name == "sales_q3.csv"
    uploads = path.parent
    assert sorted(p.name.split("-", 1)[1] for p in uploads.iterdir()) == ["sales_q3.csv"]  # nothing half-kept

    # plain chatter in that thread (no mention) is a follow-up question now; elsewhere it is ignored
    chatter = load_fixture("events_message_im.json")
    chatter["event_id"] = "EvChat000001"
    chatter["event"] |= {"channel": CHANNEL, "channel_type": "channel", "text": "total Units by Product",
                         "thread_ts": ts, "ts": "1700000400.000100"}
    fake_slack.clear()
    rig.event(chatter)
    fake_slack.wait_for("chat.postMessage", 1, timeout=30)
    fake_slack.quiet()
    assert "total Units" in "\n".join(texts_in_thread(fake_slack, CHANNEL, ts))


def test_a_stub_is_resolved_with_files_info_before_the_download(rig: HttpRig, fake_slack: FakeSlack, store: Store) -> None:
    stub = fake_slack.add_file("export.csv", sales_csv(30), stub=True)
    assert set(stub) == {"id", "file_access"}
    rig.event(dm_file_share([stub]))
    fake_slack.wait_for("files.completeUploadExternal", 1, timeout=60)
    fake_slack.quiet(for_s=0.5, timeout=60)
    methods = fake_slack.methods()
    assert methods.index("files.info") < methods.index("download")
    assert "Rows: 30" in "\n".join(texts_in_thread(fake_slack, DM, "1700000250.000600"))


def test_a_login_page_instead_of_the_file_names_the_missing_scope(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, env_setup: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.missing_files_scope = True
    with caplog.at_level(logging.WARNING):
        rig.event(dm_file_share([fake_slack.add_file("sales.csv", sales_csv(20))]))
        fake_slack.wait_for("chat.update", 1, timeout=30)
        fake_slack.quiet()
    answer = "\n".join(texts_in_thread(fake_slack, DM, "1700000250.000600"))
    assert "files:read" in answer and "login page" in answer
    assert store.table_for(DM, "1700000250.000600") is None and fake_slack.uploads() == []
    assert not (env_setup / "files" / "uploads").exists() or not any((env_setup / "files" / "uploads").rglob("*.csv"))
    assert any("HTML page" in r.getMessage() for r in caplog.records)


def test_a_declared_size_over_the_cap_is_refused_before_any_download(
    store: Store, fake_slack: FakeSlack, env_setup: Path, playbook_planner: Any
) -> None:
    settings = slack_settings(env_setup, fake_slack.api_url, max_file_mb=1)
    with serve_http(data_assistant(settings, store, playbook_planner), settings) as rig:
        fake_slack.wait_for("auth.test")
        big = fake_slack.add_file("huge.csv", b"a,b\n1,2\n", declared_size=300_000_000)
        rig.event(dm_file_share([big]))
        fake_slack.wait_for("chat.update", 1, timeout=30)
        fake_slack.quiet()
        assert "download" not in fake_slack.methods() and "files.info" not in fake_slack.methods()
        assert "the limit is 1 MB" in "\n".join(texts_in_thread(fake_slack, DM, "1700000250.000600"))
        # a file whose real size passes the cap (the size Slack declared was too small) is cut off mid-stream
        fake_slack.clear()
        content = sales_csv(40_000)
        assert len(content) > 1024 * 1024  # really over the 1 MB cap (30,000 rows were 0.9 MB: under it)
        liar = fake_slack.add_file("liar.csv", content, declared_size=1000)
        rig.event(dm_file_share([liar], event_id="EvFile000002", ts="1700000260.000600"))
        fake_slack.wait_for("chat.update", 1, timeout=30)
        fake_slack.quiet()
        assert "over" in "\n".join(texts_in_thread(fake_slack, DM, "1700000260.000600"))
        assert not any((env_setup / "files" / "uploads").rglob("*liar.csv"))


def test_summarize_command_with_a_file_link_uses_files_info(rig: HttpRig, fake_slack: FakeSlack) -> None:
    shared = fake_slack.add_file("q4.csv", sales_csv(40))
    link = f"<https://placeholder-workspace.slack.com/files/U0000000001/{shared['id']}/q4.csv>"
    status, _, seconds = rig.form({"command": "/summarize", "text": link, "user_id": "U0000000001",
                                   "channel_id": CHANNEL, "team_id": "T0000000001"})
    assert status == 200 and seconds < 1.5
    fake_slack.wait_for("files.completeUploadExternal", 1, timeout=60)
    fake_slack.quiet(for_s=0.5, timeout=60)
    assert "files.info" in fake_slack.methods()
    assert any("Rows: 40" in c.params.get("text", "") for c in fake_slack.calls if c.method.startswith("chat."))


def test_weekly_report_in_chat_posts_markdown_and_chart_uploads(
    rig: HttpRig, fake_slack: FakeSlack, store: Store, playbook_planner: Any
) -> None:
    from bot.slack_render import ref_id  # noqa: F401  (the adapter's helpers are importable)

    mention = load_fixture("events_app_mention.json")
    mention["event"]["text"] = f"<@{BOT_USER_ID}> weekly report"
    assert rig.event(mention)[0] == 200
    fake_slack.wait_for("chat.update", 1, timeout=30)
    fake_slack.quiet(for_s=0.5, timeout=30)
    text = fake_slack.calls_of("chat.update")[0].params["text"]
    assert "Ann Lee" in text or "Ann" in text


def test_the_schedule_is_computed_in_local_time_and_posts_once_per_slot(
    store: Store, fake_slack: FakeSlack, env_setup: Path, playbook_planner: Any
) -> None:
    sched = parse_schedule("fri 16:00")
    assert sched == Schedule(4, dt.time(16, 0))
    tz = dt.timezone(dt.timedelta(hours=8))
    thursday = dt.datetime(2026, 12, 3, 9, 30, tzinfo=tz)
    assert sched.next_after(thursday) == dt.datetime(2026, 12, 4, 16, 0, tzinfo=tz)
    assert sched.next_after(dt.datetime(2026, 12, 4, 16, 0, tzinfo=tz)) == dt.datetime(2026, 12, 11, 16, 0, tzinfo=tz)
    assert parse_schedule("Monday 09:05") == Schedule(0, dt.time(9, 5))
    for bad in ("friday", "fri 25:00", "xyz 10:00", "fri 4pm", ""):
        with pytest.raises(TaskwrightError, match="TASKWRIGHT_REPORT_SCHEDULE"):
            parse_schedule(bad)

    settings = slack_settings(env_setup, fake_slack.api_url, report_channel="C0000000REP")
    app = build_slack_app(data_assistant(settings, store, playbook_planner), settings)
    adapter = slack_adapter(app)
    posted: list[dt.date] = []

    def post(today: dt.date) -> None:
        posted.append(today)
        adapter.deliver(adapter.assistant.weekly_report(today), Target("C0000000REP", None, "scheduler"))

    scheduler = ReportScheduler(sched, post, store=store, now=lambda: thursday)
    slot = sched.next_after(thursday)
    assert scheduler.run_slot(slot) and not scheduler.run_slot(slot)  # a second process or restart: no repeat
    assert posted == [dt.date(2026, 12, 4)]
    [message] = fake_slack.calls_of("chat.postMessage")
    assert message.params["channel"] == "C0000000REP" and "Week" in message.params["text"] or "week" in message.params["text"]
    assert all(f.channel == "C0000000REP" for f in fake_slack.uploads())
    assert json.dumps(message.params)  # recorded as sent


@pytest.mark.slow  # the session's generation service: shipped GAN, tiny real text model, MiniLM (~15 s once)
def test_draw_and_draft_in_slack_http_mode_through_the_generation_service(
    fake_slack: FakeSlack, store: Store, env_setup: Path, playbook_planner: Any, generation_service: Any
) -> None:
    """The issue's check: "draw 4 sevens" uploads one PNG grid into the thread, "draft a reply …" answers there."""
    from generation.client import build_image_model, build_text_model

    settings = slack_settings(env_setup, fake_slack.api_url, generation_url=generation_service.url,
                            generation_timeout_s=30.0)
    assistant = Assistant(store=store, planner=playbook_planner, files_dir=settings.files_dir,
                          text_model=build_text_model(settings), image_model=build_image_model(settings))
    with serve_http(assistant, settings) as rig:
        fake_slack.wait_for("auth.test")
        ts = "1700000400.000100"
        payload = dm_in_thread("draw 4 sevens", ts, event_id="EvDraw000001", ts=ts)
        status, _, seconds = rig.event(payload)
        assert status == 200 and seconds < 3
        fake_slack.wait_for("files.completeUploadExternal", 1, timeout=60)
        fake_slack.quiet(for_s=0.5, timeout=60)
        [grid] = fake_slack.uploads()
        assert grid.channel == DM and grid.thread_ts == ts and grid.content[:8] == b"\x89PNG\r\n\x1a\n"
        gen = store.generation(1)
        assert gen is not None and gen.status == "done" and gen.n == 4 and gen.result_path

        fake_slack.clear()
        ts2 = "1700000500.000100"
        rig.event(dm_in_thread("draft a reply to the customer asking about the delayed shipment", ts2,
                               event_id="EvDraft00001", ts=ts2))
        fake_slack.wait_for("chat.update", 1, timeout=60)  # "Writing a draft…" becomes the draft
        fake_slack.quiet(for_s=0.5, timeout=60)
        draft = store.generation(2)
        assert draft is not None and draft.status == "done" and draft.result_text
        posted = "\n".join(texts_in_thread(fake_slack, DM, ts2))
        first_words = draft.result_text.strip().split()[0].replace("&", "&amp;").replace("<", "&lt;")
        assert first_words.replace(">", "&gt;") in posted
