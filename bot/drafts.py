"""Images and text drafts in chat: "draw 8 sevens", "draft a reply to …", a task's "Generate draft", Retry.

Every request is written to the store (generations) before the generator is called. When the generator is
down, slow or failing (GenerationUnavailable) the request stays pending and the answer carries a Retry
button that runs it again; a refused input (GenerationRejected) closes it with the generator's message.
Model text is marked `generated`, so the renderers escape it completely (no model-made mentions).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from bot.store import Generation, Store
from bot.types import Button, ButtonsReply, ImageReply, Reply, TextReply
from generation.client import GenerationError, GenerationRejected, GenerationUnavailable
from planner.errors import TaskwrightError
from planner.types import Plan, Task

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 8
PROMPT_MAX = 300  # characters of a drawing request ("draw 8 sevens" needs a dozen)
WRITE_MAX = 6000  # characters of a write request: a pasted message to answer fits; a CPU prefills it in seconds
_CJK = re.compile(r"[\u3400-\u9fff]")
_NEGATIVE_COUNT = re.compile(r"^[-−]\s*(\d+)\b")  # "draw -3 sevens": a count below 1, not the digit 3
# A write request that names only the kind of text ("draft a reply to", "write an announcement", "写一封邮件"):
# the model would invent the content, so it is asked for first.
_BARE_WRITE = re.compile(
    r"^\s*(?:(?:please\s+)?(?:draft|write|compose)\s+(?:me\s+|us\s+)?(?:an?\s+|the\s+|some\s+)?(?:(?:short|quick|brief|friendly|formal|polite|new)\s+)?"
    r"(?:reply|response|answer|announcement|email|e-mail|message|post|note|blurb|update|intro|introduction|"
    r"description|tweet|invitation|invite|summary|newsletter|memo|letter)s?"
    r"(?:\s+(?:to|for|about|on|regarding|re|of|with))?"
    r"|(?:帮我)?(?:写|起草|拟)(?:一)?[封篇条个段份]?(?:回复|公告|邮件|通知|消息|邀请))\s*[.!?。！？:：…]*\s*$",
    re.IGNORECASE)
TEXT_MAX_TOKENS = 300  # a chat draft; about 200 words
SYSTEM = ("You write short, friendly, professional drafts for a team's chat. Write only the draft itself, "
          "in the language of the request, with no preamble and no notes about the draft.")

ModelSource = Any  # a model object, a zero-argument factory for one, or None


class Drafts:
    """Runs generation requests against the configured ImageModel / TextModel (each built on first use)."""

    def __init__(self, store: Store, *, files_dir: Path, text_model: ModelSource = None,
                 image_model: ModelSource = None) -> None:
        self.store = store
        self.files_dir = files_dir
        self._sources = {"text": text_model, "image": image_model}
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._running: set[int] = set()

    def model(self, kind: str) -> Any:
        """The model for "text" or "image", built once from its factory; TaskwrightError when none is set."""
        with self._lock:
            if kind not in self._models:
                source = self._sources[kind]
                if source is None:
                    raise TaskwrightError(f"No {kind} generator is configured: set TASKWRIGHT_GENERATION_URL "
                                          "or run with the built-in backends.")
                method = "complete" if kind == "text" else "draw"
                self._models[kind] = source if hasattr(source, method) else source()
            return self._models[kind]

    # -- requests ------------------------------------------------------------------------------------

    def draw(self, argument: str, *, user: str, channel: str, thread_ts: str) -> list[Reply]:
        from generation.labels import parse_draw_request
        from generation.runtime import IMAGES_MAX

        argument = " ".join(argument.split())
        if not argument:
            return [TextReply("What should I draw? Try: `draw 8 sevens`", kind="error")]
        if len(argument) > PROMPT_MAX:
            log.info("draw request of %d characters refused (user %s)", len(argument), user)
            return [TextReply(f"That drawing request is {len(argument):,} characters; say what to draw in "
                              f"{PROMPT_MAX} or fewer, like `draw 8 sevens`.", kind="error")]
        # "三个七" is parsed as Chinese ("画" is what the router took off); "draw 三个七" would lose the count
        count, subject = parse_draw_request(("画" if _CJK.match(argument) else "draw ") + argument)
        if (neg := _NEGATIVE_COUNT.match(argument)) and count is None:
            count = -int(neg.group(1))
        n = DEFAULT_IMAGES if count is None else count
        if not 1 <= n <= IMAGES_MAX:  # refused before anything is recorded ("draw 0 sevens" is not 8 sevens)
            log.info("draw request refused: %d images asked for by %s", n, user)
            return [TextReply(f"I can draw 1 to {IMAGES_MAX} images at a time (asked for {n}).", kind="error")]
        if not subject.strip():
            return [TextReply("What should I draw? Try: `draw 8 sevens`", kind="error")]
        gen = self.store.record_generation("image", subject, requester=user, channel=channel,
                                           thread_ts=thread_ts, n=n)
        return self.run(gen)

    def write(self, instruction: str, *, user: str, channel: str, thread_ts: str) -> list[Reply]:
        if not instruction.strip() or _BARE_WRITE.match(instruction):  # "draft a reply to": says nothing yet
            return [TextReply("What should I write? Try: `draft a reply to the customer asking for a refund`",
                              kind="error")]
        if len(instruction) > WRITE_MAX:
            log.info("write request of %d characters refused (user %s)", len(instruction), user)
            return [TextReply(f"That request is {len(instruction):,} characters; I can work from {WRITE_MAX:,} or "
                              "fewer. Shorten it or quote only the part to answer.", kind="error")]
        gen = self.store.record_generation("text", instruction, requester=user, channel=channel,
                                           thread_ts=thread_ts)
        return self.run(gen)

    def for_task(self, task: Task, plan: Plan, *, user: str, channel: str, thread_ts: str) -> list[Reply]:
        """A first draft for a text or image subtask; the output is attached to the task."""
        if task.kind == "image":
            prompt = task.title
        elif task.kind == "text":
            prompt = (f"Write a first draft for this task of the plan “{plan.title or plan.request}”: "
                      f"{task.title}. {task.description}").strip()
        else:
            raise TaskwrightError(f"“{task.title}” is {task.kind} work; drafts are for text and image tasks.")
        gen = self.store.record_generation(task.kind, prompt, requester=user, channel=channel, thread_ts=thread_ts,
                                           n=DEFAULT_IMAGES if task.kind == "image" else 1, task_id=task.id)
        return self.run(gen, task=task)

    def retry(self, gen_id: int, *, user: str) -> list[Reply]:
        gen = self.store.generation(gen_id) if 0 < gen_id < 2**63 else None
        if gen is None:
            raise TaskwrightError(f"There is no kept request #{gen_id} to retry.")
        if gen.status == "done":
            return [TextReply(f"Request #{gen.id} is already done (see above in this thread).")]
        if gen.status == "failed":
            return [TextReply(f"Request #{gen.id} was refused: {gen.error}", kind="error")]
        task = self.store.task(gen.task_id) if gen.task_id is not None else None
        log.info("retrying generation %d (%s) for %s", gen.id, gen.kind, user)
        return self.run(gen, task=task)

    # -- running -------------------------------------------------------------------------------------

    def run(self, gen: Generation, *, task: Task | None = None) -> list[Reply]:
        """Call the generator for a kept request; store the output, or keep the request and offer Retry."""
        with self._lock:
            if gen.id in self._running:
                return [TextReply(f"Request #{gen.id} is already running; its result will appear here.")]
            self._running.add(gen.id)
        try:
            return self._run(gen, task)
        finally:
            with self._lock:
                self._running.discard(gen.id)

    def _run(self, gen: Generation, task: Task | None) -> list[Reply]:
        try:
            if gen.kind == "image":
                return self._image(gen, task)
            return self._text(gen, task)
        except GenerationRejected as e:
            log.info("generation %d refused: %s", gen.id, e)
            self.store.note_generation_error(gen.id, e.user_message, final=True)
            return [TextReply(e.user_message, kind="error")]
        except (GenerationUnavailable, GenerationError) as e:
            log.warning("generation %d (%s) unavailable: %s", gen.id, gen.kind, e)
            return self._kept(gen, e.user_message)
        except TaskwrightError:
            raise
        except Exception as e:  # a backend bug: keep the request so it can be retried once fixed
            log.exception("generation %d (%s) failed", gen.id, gen.kind)
            return self._kept(gen, f"The generator failed ({type(e).__name__}).")

    def _kept(self, gen: Generation, why: str) -> list[Reply]:
        self.store.note_generation_error(gen.id, why, final=False)
        text = (f"{why}\nI kept your request (#{gen.id}); press *Retry* when the generation service is back "
                f"(or type `retry {gen.id}` in the console).")
        return [ButtonsReply(text, (Button("Retry", "retry", gen.id, primary=True),), kind="error")]

    def _image(self, gen: Generation, task: Task | None) -> list[Reply]:
        image = self.model("image").draw(gen.prompt, n=gen.n, seed=gen.seed)
        out = self.files_dir / "generated"
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"gen-{gen.id}-{_slug(image.label)}.png"
        path.write_bytes(image.png)
        self.store.finish_generation(gen.id, actor=gen.requester, result_path=str(path))
        title = f"{image.n} × “{image.label}”" + (f" — draft for task #{task.id}" if task else "")
        alt = f"A grid of {image.n} generated images of “{image.label}”"
        log.info("generation %d: %d image(s) of %r -> %s", gen.id, image.n, image.label, path)
        return [ImageReply(filename=path.name, title=title, path=path, alt_text=alt)]

    def _text(self, gen: Generation, task: Task | None) -> list[Reply]:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": gen.prompt}]
        text = self.model("text").complete(messages, max_tokens=TEXT_MAX_TOKENS).strip()
        if not text:
            raise GenerationUnavailable("The text model returned nothing; try again or rephrase the request.")
        self.store.finish_generation(gen.id, actor=gen.requester, result_text=text)
        log.info("generation %d: %d characters of text", gen.id, len(text))
        replies: list[Reply] = []
        if task is not None:
            replies.append(TextReply(f"Draft for task #{task.id} “{task.title}” (saved with the task):"))
        replies.append(TextReply(text, generated=True))
        return replies


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label)[:40].strip("-") or "image"

