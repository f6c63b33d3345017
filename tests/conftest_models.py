"""ScriptedChatModel: a real LangChain chat model that hands back queued replies and records every call.

Like llm's MockModel.enqueue: a test queues strings (or exceptions to raise) and then reads `calls` to see
the prompts and the kwargs (response_format, max_tokens) the chain sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr


@dataclass
class Call:
    """One model call: the messages as (type, text) pairs and the keyword arguments."""

    messages: list[tuple[str, str]]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(t for _, t in self.messages)


class ScriptedChatModel(BaseChatModel):
    """Replies from a queue: a str is the reply's content, an Exception is raised, a tuple is (text, finish)."""

    _queue: list[Any] = PrivateAttr(default_factory=list)
    _calls: list[Call] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def enqueue(self, *replies: Any) -> ScriptedChatModel:
        self._queue.extend(replies)
        return self

    @property
    def calls(self) -> list[Call]:
        return self._calls

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._calls.append(Call([(m.type, str(m.content)) for m in messages], dict(kwargs)))
        if not self._queue:
            raise AssertionError("ScriptedChatModel: no reply queued")
        reply = self._queue.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        text, finish = reply if isinstance(reply, tuple) else (reply, "stop")
        message = AIMessage(content=text, response_metadata={"finish_reason": finish})
        return ChatResult(generations=[ChatGeneration(message=message)])


def plan_json(n: int = 3, **top: Any) -> str:
    """A valid plan of n (up to 5) subtasks for the Q3 report as JSON text; top overrides top-level keys."""
    subtasks = [
        {
            "id": str(i),
            "title": title,
            "description": f"{title}.",
            "skills": [skill],
            "estimate_hours": 3,
            "depends_on": [str(i - 1)] if i > 1 else [],
            "kind": kind,
        }
        for i, (title, skill, kind) in enumerate(
            [
                ("Pull Q3 sales figures", "sql", "data"),
                ("Analyse trends", "data analysis", "data"),
                ("Build the board slides", "presentation", "image"),
                ("Write the summary memo", "writing", "text"),
                ("Rehearse with the CFO", "presentation", "human"),
            ][:n],
            start=1,
        )
    ]
    return json.dumps({"subtasks": subtasks, "n_subtasks": n} | top)
