"""Intent routing: explicit syntax first ("plan:", /plan, "my tasks"), then embedding similarity for free text.

A mention or DM that matches nothing else is a work request, so it is planned.
"""

from __future__ import annotations

import logging
import re
from typing import Callable

import numpy as np

from bot.types import Intent
from planner.embed import Embedder

log = logging.getLogger(__name__)

_PLAN = re.compile(r"^\s*(?:/?plan|计划|规划)\s*[:：]?\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
# Generation and data: explicit forms only (a wrong guess would spend a GPU call or a model's minute).
_DRAW = re.compile(r"^\s*(?:/generate\s+image\b|/draw\b|draw\b|sketch\b|画)\s*[:：]?\s*(?P<rest>.*)$",
                   re.IGNORECASE | re.DOTALL)
_WRITE_KINDS = (r"reply|response|answer|announcement|email|e-mail|message|post|note|blurb|update|intro|"
                r"introduction|description|tweet|invitation|invite|summary|newsletter|memo|letter")
_WRITE = re.compile(
    r"^\s*(?:/generate\s+text\b\s*(?P<rest>.*)"  # nothing after it: Drafts.write asks what to write
    rf"|(?P<en>(?:please\s+)?(?:draft|write|compose)\s+(?:me\s+|us\s+)?(?:an?\s+|the\s+|some\s+)?"
    rf"(?:\w+\s+){{0,2}}?(?:{_WRITE_KINDS})s?\b.*)"
    r"|(?P<zh>(?:帮我)?(?:写|起草|拟)(?:一)?[封篇条个段份]?.{0,20}(?:回复|公告|邮件|通知|消息|邀请).*))$",
    re.IGNORECASE | re.DOTALL,
)
_SUMMARIZE = re.compile(r"^\s*(?:/?summari[sz]e(?:\s+|$|[:：])|总结|汇总|分析这)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
# "summarize" alone or with a file (an id, a link, a path); "summarize the standup notes" is a work request
_FILE_REF = re.compile(r"\bF[A-Z0-9]{6,}\b|https?://|[\w-]\.(?:csv|tsv|txt|xlsx?|json|jsonl|parquet)\b", re.IGNORECASE)
_REPORT = re.compile(r"^\s*/?(?:(?:the\s+)?weekly\s+(?:team\s+)?report|team\s+report|report\s+weekly|周报)"
                     r"\s*[.!?。]?\s*$", re.IGNORECASE)
_GENERATE = re.compile(r"^\s*/generate\b", re.IGNORECASE)
_EXACT: list[tuple[str, re.Pattern[str]]] = [
    ("help", re.compile(r"^\s*(help|\?|帮助|怎么用)\s*[.!?]?\s*$", re.IGNORECASE)),
    ("my_tasks", re.compile(r"^\s*(my tasks?|my work|mine|我的任务)\s*[.!?]?\s*$", re.IGNORECASE)),
    ("team", re.compile(r"^\s*(team|the team|团队|成员)\s*[.!?]?\s*$", re.IGNORECASE)),
    ("board", re.compile(r"^\s*(board|team board|status|看板|进度)\s*[.!?]?\s*$", re.IGNORECASE)),
]
_EXEMPLARS: dict[str, list[str]] = {
    "my_tasks": ["what are my tasks", "what is on my plate", "show me my assignments", "what should I work on"],
    "team": ["who is on the team", "show the team members and their skills", "list the team"],
    "board": ["show the team board", "what is everyone working on", "status of all tasks"],
    "help": ["what can you do", "how do I use this bot", "show help"],
}
_THRESHOLD = 0.62


class Router:
    """Classifies a message; cheap enough to run before Slack's 3-second ack."""

    def __init__(self, *, embedder: Callable[[], Embedder | None] | None = None) -> None:
        self._embedder = embedder
        self._exemplars: tuple[list[str], np.ndarray] | None = None

    def route(self, text: str) -> Intent:
        stripped = text.strip()
        if not stripped:
            return Intent("empty")
        m = _PLAN.match(stripped)
        if m and (m.group("rest").strip() or stripped.lower().startswith(("plan:", "/plan", "计划"))):
            rest = m.group("rest").strip()
            return Intent("plan", rest, slow=bool(rest), status_text="Planning… :hourglass_flowing_sand:")
        for name, pattern in _EXACT:
            if pattern.match(stripped):
                return Intent(name)  # type: ignore[arg-type]
        explicit = self._generation_or_data(stripped)
        if explicit:
            return explicit
        similar = self._similar(stripped)
        if similar:
            return Intent(similar)  # type: ignore[arg-type]
        return Intent("plan", stripped, slow=True, status_text="Planning… :hourglass_flowing_sand:", fallback=True)

    @staticmethod
    def _generation_or_data(text: str) -> Intent | None:
        """draw / write / summarize / weekly report, by their explicit forms."""
        if m := _DRAW.match(text):
            return Intent("draw", m.group("rest").strip(), slow=True, status_text="Drawing… :art:")
        if m := _WRITE.match(text):
            rest = (m.group("rest") or m.group("en") or m.group("zh") or "").strip()
            return Intent("write", rest, slow=True, status_text="Writing a draft… :pencil2:")
        if (m := _SUMMARIZE.match(text)) and (not m.group("rest").strip() or _FILE_REF.search(m.group("rest"))):
            return Intent("summarize", m.group("rest").strip(), slow=True,
                          status_text="Reading the file… :bar_chart:")
        if _REPORT.match(text):
            return Intent("report", slow=True, status_text="Building the weekly report… :bar_chart:")
        if _GENERATE.match(text):  # "/generate" alone or "/generate video …": the help lists the forms
            log.info("router: /generate without image or text: %r", text[:80])
            return Intent("help")
        return None

    def _similar(self, text: str) -> str | None:
        if len(text.split()) > 10 or self._embedder is None:
            return None
        embedder = self._embedder()
        if embedder is None:
            return None
        if self._exemplars is None:
            labels = [k for k, v in _EXEMPLARS.items() for _ in v]
            self._exemplars = (labels, embedder.encode([s for v in _EXEMPLARS.values() for s in v]))
        labels, vectors = self._exemplars
        sims = vectors @ embedder.encode([text])[0]
        best = int(np.argmax(sims))
        log.debug("router similarity %.2f -> %s for %r", sims[best], labels[best], text)
        return labels[best] if sims[best] >= _THRESHOLD else None
