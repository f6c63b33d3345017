"""Images and drafts through the assistant, against the real generation service on loopback.

The service is stopped and started again on the same port to see a request kept while it is down and
completed by Retry once it is back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bot.console import Console
from bot.service import Assistant
from bot.settings import load_settings
from bot.slack_render import SlackMessage, SlackUpload, render
from bot.store import Store
from bot.types import ActionRequest, ButtonsReply, ChatRequest, ImageReply, TextReply
from generation.client import build_image_model, build_text_model
from planner.types import DraftPlan, Subtask
from tests.chat_support import GenerationService, generation_service, png_size

__all__ = ["generation_service"]

pytestmark = pytest.mark.slow  # loads the GAN, a tiny text model and MiniLM once per session (~15 s)


def assistant_for(url: str, home: Path, playbook_planner: Any, *, timeout_s: float = 20.0) -> Assistant:
    settings = load_settings(home=home, generation_url=url, generation_timeout_s=timeout_s)
    return Assistant(store=Store(settings.db_path), planner=playbook_planner,
                     text_model=build_text_model(settings), image_model=build_image_model(settings),
                     files_dir=settings.files_dir)


def ask(assistant: Assistant, text: str, *, ts: str = "1700000000.000100") -> list[Any]:
    return assistant.handle(ChatRequest("U0000000001", text, channel="C0000000001", ts=ts))


def test_draw_makes_one_png_grid_of_the_asked_count(
    generation_service: GenerationService, env_setup: Path, playbook_planner: Any
) -> None:
    assistant = assistant_for(generation_service.url, env_setup, playbook_planner)
    one = ask(assistant, "draw 1 seven")
    [reply] = ask(assistant, "draw 8 sevens")
    assert isinstance(reply, ImageReply) and reply.path is not None
    assert reply.path.parent == env_setup / "files" / "generated" and "7" in reply.title
    assert isinstance(one[0], ImageReply) and one[0].path is not None
    w1, h1 = png_size(one[0].path.read_bytes())
    w8, h8 = png_size(reply.path.read_bytes())
    assert w8 * h8 >= 6 * w1 * h1  # eight cells (plus padding) against one
    gen = assistant.store.generation(2)
    assert gen is not None and gen.status == "done" and gen.result_path == str(reply.path)
    [upload] = render(reply)
    assert isinstance(upload, SlackUpload) and upload.path == str(reply.path) and "7" in upload.alt_text


def test_an_unknown_subject_gets_what_the_model_can_draw(
    generation_service: GenerationService, env_setup: Path, playbook_planner: Any
) -> None:
    assistant = assistant_for(generation_service.url, env_setup, playbook_planner)
    [reply] = ask(assistant, "draw 4 giraffes")
    assert isinstance(reply, TextReply) and reply.kind == "error"
    assert "0, 1, 2" in reply.text and "9" in reply.text
    assert assistant.store.pending_generations() == []  # refused: nothing to retry
    assert assistant.store.generation(1).status == "failed"  # type: ignore[union-attr]


def test_a_draft_reply_is_generated_text_rendered_fully_escaped(
    generation_service: GenerationService, env_setup: Path, playbook_planner: Any
) -> None:
    assistant = assistant_for(generation_service.url, env_setup, playbook_planner)
    replies = ask(assistant, "draft a reply to the customer asking about the delayed shipment")
    [reply] = replies
    assert isinstance(reply, TextReply) and reply.generated and reply.text.strip()
    assert assistant.store.generation(1).result_text == reply.text  # type: ignore[union-attr]
    # whatever a model writes, Slack shows it literally: no mention, broadcast or link can come of it
    hostile = TextReply("Hi <!channel> & <@U0000000002>, see <https://x.example|this>", generated=True)
    [msg] = render(hostile)
    assert isinstance(msg, SlackMessage)
    assert "<!channel>" not in msg.text and "<@U" not in msg.text and "&lt;!channel&gt;" in msg.text


def test_service_down_keeps_the_request_and_retry_completes_it_when_it_is_back(
    generation_service: GenerationService, env_setup: Path, playbook_planner: Any
) -> None:
    assistant = assistant_for(generation_service.url, env_setup, playbook_planner, timeout_s=2.0)
    generation_service.stop()
    try:
        t0 = time.monotonic()
        [reply] = ask(assistant, "draw 4 sevens")
        assert time.monotonic() - t0 < 5  # a clear answer within seconds
        assert isinstance(reply, ButtonsReply) and reply.kind == "error"
        assert "unavailable" in reply.text or "cannot connect" in reply.text
        [button] = reply.buttons
        [kept] = assistant.store.pending_generations()
        assert (button.action, button.value) == ("retry", kept.id) and kept.prompt == "sevens" and kept.n == 4
        # Retry while it is still down: still kept, the same button again
        [again] = assistant.handle_action(ActionRequest("U0000000001", "retry", kept.id))
        assert isinstance(again, ButtonsReply) and len(assistant.store.pending_generations()) == 1
    finally:
        generation_service.start()
    [done] = assistant.handle_action(ActionRequest("U0000000001", "retry", kept.id))
    assert isinstance(done, ImageReply) and done.path is not None and done.path.exists()
    assert assistant.store.pending_generations() == []
    [twice] = assistant.handle_action(ActionRequest("U0000000001", "retry", kept.id))
    assert isinstance(twice, TextReply) and "already done" in twice.text


def test_generate_draft_on_a_text_task_attaches_the_draft_to_the_task(
    generation_service: GenerationService, env_setup: Path, playbook_planner: Any
) -> None:
    assistant = assistant_for(generation_service.url, env_setup, playbook_planner)
    draft = DraftPlan("announce the offsite", "Offsite", (
        Subtask("1", "Write the announcement", "for the whole team", kind="text"),
        Subtask("2", "Book the venue", kind="human")), source="test")
    plan = assistant.store.save_plan(draft, [], [], requester="U0000000001", channel="C0000000001",
                                     thread_ts="1700000000.000100")
    text_task, human_task = plan.tasks
    replies = assistant.handle_action(ActionRequest("U0000000002", "generate", text_task.id,
                                                    channel="C0000000001", thread_ts="1700000000.000100"))
    assert isinstance(replies[0], TextReply) and f"task #{text_task.id}" in replies[0].text
    assert isinstance(replies[1], TextReply) and replies[1].generated
    [gen] = assistant.store.generations_for_task(text_task.id)
    assert gen.status == "done" and gen.result_text == replies[1].text and gen.thread_ts == "1700000000.000100"
    assert [e["action"] for e in assistant.store.task_events(text_task.id)] == ["create", "draft"]
    [refused] = assistant.handle_action(ActionRequest("U0000000002", "generate", human_task.id))
    assert isinstance(refused, TextReply) and refused.kind == "error" and "human work" in refused.text


def test_console_draw_prints_the_png_path(
    generation_service: GenerationService, env_setup: Path, playbook_planner: Any
) -> None:
    assistant = assistant_for(generation_service.url, env_setup, playbook_planner)
    lines: list[str] = []
    Console(assistant, user="U0DEMOELI", out=lines.append).send("draw 4 sevens")
    [line] = lines
    path = Path(line.rsplit(": ", 1)[1])
    assert line.startswith("[image]") and path.is_file() and path.is_relative_to(env_setup / "files")
    png_size(path.read_bytes())
