"""Regression tests from the bad-input pass over chat drawing/drafting, file summaries, the weekly report
and `taskwright serve` (issues 3 and 4). Each input here once misbehaved: a wrong result, a pydantic or
uvicorn traceback, or a model call for a request that says nothing.

Real parts only: a real SQLite store, the real router, the real loader on real special files, the real CLI
through click's CliRunner, a real listening socket for the busy port. Refusals happen before any model
runs, so the drafts tests configure no generator at all: reaching one would raise TaskwrightError.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.drafts import Drafts
from bot.router import Router
from bot.settings import SettingsError, load_settings
from bot.store import Store
from bot.types import TextReply
from generation.reports import TableError, load_table
from generation.reports.query import answer_question

WHERE = {"user": "U0000000001", "channel": "C0000000001", "thread_ts": "1700000000.000100"}


def _drafts(home: Path) -> Drafts:
    home.mkdir(parents=True, exist_ok=True)
    return Drafts(Store(home / "t.db"), files_dir=home / "files")  # no text or image generator configured


def _generations(home: Path) -> int:
    with sqlite3.connect(home / "t.db") as db:
        return int(db.execute("select count(*) from generations").fetchone()[0])


def _chat(drafts: Drafts, message: str) -> list[object]:
    intent = Router().route(message)
    assert intent.name in ("draw", "write"), (message, intent)
    run = drafts.draw if intent.name == "draw" else drafts.write
    return run(intent.argument, **WHERE)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- drawing


@pytest.mark.parametrize(("message", "asked"), [("draw 0 sevens", "0"), ("draw -3 sevens", "-3"),
                                                ("draw 10000 sevens", "10000"), ("/generate image 65 sevens", "65")])
def test_a_count_outside_1_to_64_is_refused_before_anything_is_kept(tmp_path: Path, message: str,
                                                                     asked: str) -> None:
    # "draw 0 sevens" used to draw 8 sevens and "draw -3 sevens" 8 threes
    [reply] = _chat(_drafts(tmp_path), message)
    assert isinstance(reply, TextReply) and reply.kind == "error"
    assert reply.text == f"I can draw 1 to 64 images at a time (asked for {asked})."
    assert _generations(tmp_path) == 0


@pytest.mark.parametrize("message", ["draw", "draw   ", "/generate image", "/generate image  ", "画"])
def test_a_drawing_request_with_no_subject_asks_what_to_draw(tmp_path: Path, message: str) -> None:
    # "draw" used to be refused as "I can't draw 'draw'" after a record was written
    [reply] = _chat(_drafts(tmp_path), message)
    assert isinstance(reply, TextReply) and reply.kind == "error" and reply.text.startswith("What should I draw?")
    assert _generations(tmp_path) == 0


def test_a_20k_character_drawing_request_is_refused_without_a_record(tmp_path: Path) -> None:
    [reply] = _chat(_drafts(tmp_path), "draw 4 " + "sevens🎨\x07" * 2500)
    assert isinstance(reply, TextReply) and reply.kind == "error" and "characters" in reply.text
    assert _generations(tmp_path) == 0


def test_a_chinese_count_survives_the_router(tmp_path: Path) -> None:
    # "画三个七" used to become "draw 三个七", which lost the count (8 images instead of 3). The record is
    # written before the generator is asked; with none configured the request stops right there.
    from planner.errors import TaskwrightError

    drafts = _drafts(tmp_path)
    with pytest.raises(TaskwrightError, match="No image generator"):
        _chat(drafts, "画三个七")
    gen = drafts.store.generation(1)
    assert gen is not None and gen.n == 3 and gen.prompt == "七"


# ------------------------------------------------------------------------------------------- drafting


@pytest.mark.parametrize("message", ["draft a reply to", "draft a reply to   ", "write an announcement",
                                     "write an announcement.", "please draft a short email", "写一封邮件",
                                     "/generate text", "/generate text   "])
def test_a_write_request_that_says_nothing_asks_first(tmp_path: Path, message: str) -> None:
    # these went to the text model (a minute of CPU for "Sure, what topic?"); "/generate text" was planned
    [reply] = _chat(_drafts(tmp_path), message)
    assert isinstance(reply, TextReply) and reply.kind == "error" and reply.text.startswith("What should I write?")
    assert _generations(tmp_path) == 0


def test_a_20k_character_write_request_is_refused_without_a_record_or_a_model_call(tmp_path: Path) -> None:
    # no text model is configured: reaching it would raise instead of answering
    [reply] = _chat(_drafts(tmp_path), "draft a reply to this thread: " + "where is my order? " * 1100)
    assert isinstance(reply, TextReply) and reply.kind == "error" and "6,000 or fewer" in reply.text
    assert _generations(tmp_path) == 0


@pytest.mark.parametrize("message", ["draft a reply to the customer asking about the delayed shipment",
                                     "write an announcement for the office move", "帮我写一封邮件给客户说明延期",
                                     "/generate text a welcome note for Ana"])
def test_a_write_request_with_content_is_not_refused(message: str) -> None:
    from bot.drafts import _BARE_WRITE

    intent = Router().route(message)
    assert intent.name == "write" and intent.argument and not _BARE_WRITE.match(intent.argument)


@pytest.mark.parametrize("message", ["/generate", "/generate   ", "/generate video of a cat"])
def test_generate_without_image_or_text_shows_help_not_a_plan(message: str) -> None:
    assert Router().route(message).name == "help"


def test_console_retry_typos_and_a_finished_request_twice(tmp_path: Path, playbook_planner: object) -> None:
    from bot.console import Console
    from bot.service import Assistant

    store = Store(tmp_path / "t.db")
    gen = store.record_generation("image", "sevens", requester="U0DEMOELI", channel="console", thread_ts="t", n=4)
    store.finish_generation(gen.id, actor="U0DEMOELI", result_path=str(tmp_path / "g.png"))
    before = store.generation(gen.id)
    out: list[str] = []
    console = Console(Assistant(store=store, planner=playbook_planner), user="U0DEMOELI", out=out.append)
    for line in ("retry abc", "retry 999", f"retry {gen.id}", f"retry {gen.id}"):
        console.send(line)
    assert "`retry` needs a kept request number" in out[0]  # was "needs a task number"
    assert out[1] == "error: There is no kept request #999 to retry."
    assert out[2] == out[3] == f"Request #{gen.id} is already done (see above in this thread)."
    assert store.generation(gen.id) == before and _generations(tmp_path) == 1  # nothing rewritten, no new record
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("select count(*) from plans").fetchone()[0] == 0  # "retry abc" is not a work request
    store.close()


# ------------------------------------------------------------------------------------------- files


def test_special_paths_are_named_for_what_they_are(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # reading it would block forever
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "folder.csv").mkdir()
    cases = {"/dev/zero": "is not a regular file", str(fifo): "is not a regular file",
             str(tmp_path / "a"): "is a broken link", str(tmp_path / "folder.csv"): "is a folder",
             str(tmp_path / "missing.csv"): "no such file"}  # fmt: skip
    for path, says in cases.items():
        with pytest.raises(TableError) as err:
            load_table(path)
        assert says in err.value.user_message, (path, err.value.user_message)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file without read permission")
def test_an_unreadable_file_is_a_table_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("a,b\n1,2\n")
    path.chmod(0)
    with pytest.raises(TableError, match="can't read"):
        load_table(path)


@pytest.mark.parametrize(("question", "asked"), [("top 0 Region by Sales", "0"), ("top -5 Region by Sales", "-5"),
                                                 ("top 999999999 Region by Sales", "999,999,999")])
def test_top_n_out_of_range_is_said_plainly(question: str, asked: str) -> None:
    import pandas as pd

    df = pd.DataFrame({"Region": ["East", "West", "East"], "Sales": [1.0, 2.0, 3.0]})
    ans = answer_question(df, question)
    assert not ans.ok and "validation error" not in ans.text
    assert f"needs N from 1 to 1,000 (asked for {asked})" in ans.text
    assert answer_question(df, "top 1000 Region by Sales").ok


@pytest.mark.parametrize("question", [None, "total Sales by Region"])
def test_summarize_into_an_unwritable_folder_is_one_line(env_setup: Path, tmp_path: Path,
                                                         question: str | None) -> None:
    table = tmp_path / "t.csv"
    table.write_text("Region,Sales\nEast,10\nWest,5\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = ["summarize", str(table), "--no-model", "--out", str(blocker / "charts")]
    result = CliRunner().invoke(cli, args + (["--question", question] if question else []))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # was NotADirectoryError
    assert f"cannot write the charts to {blocker / 'charts'}" in result.output


def test_adding_up_a_text_column_says_it_is_not_a_number() -> None:
    import pandas as pd

    # was "no column or value matches “name”" although the table has a column called name
    ans = answer_question(pd.DataFrame({"name": ["ann", "bob"], "city": ["paris", "rome"]}), "total name by city")
    assert not ans.ok and "“name” is not a number column (number columns: none)" in ans.text


# ------------------------------------------------------------------------------------------- settings, CLI


@pytest.mark.parametrize(("name", "value", "says"), [("TASKWRIGHT_QUEUE_MAX", "0", "greater than or equal to 1"),
                                                     ("TASKWRIGHT_QUEUE_MAX", "abc", "valid integer"),
                                                     ("TASKWRIGHT_DEVICE", "banana", "use auto, cpu")])
def test_a_bad_setting_is_one_line_naming_it(env_setup: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                             value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"{name}='{value}'"):
        load_settings()
    for args in (["report", "weekly"], ["serve", "--port", "1"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1 and result.exception is not None and isinstance(result.exception, SystemExit)
        assert f"Error: bad setting: {name}='{value}': " in result.output and says in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_weekly_report_refuses_a_day_at_the_calendars_ends(env_setup: Path, day: str) -> None:
    result = CliRunner().invoke(cli, ["report", "weekly", "--today", day])
    assert result.exit_code == 2 and "outside the years 1900-9000" in result.output  # was an OverflowError


def test_weekly_report_on_an_empty_database(env_setup: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "weekly", "--today", "1900-01-03", "--out", str(env_setup / "r")])
    assert result.exit_code == 0, result.output
    assert "## Burndown" in result.output and (env_setup / "r" / "burndown-1900-01-01.png").is_file()


def test_serve_on_a_busy_port_says_so_before_loading_models(env_setup: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "pick another --port" in result.output
    assert "Traceback" not in result.output


def test_serve_with_an_absent_cuda_is_one_line(env_setup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setenv("TASKWRIGHT_DEVICE", "cuda")
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "TASKWRIGHT_DEVICE=cuda: device 'cuda' requested but CUDA is not available" in result.output
