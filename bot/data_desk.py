"""Data in chat: a shared file becomes a summary (facts, 2–4 charts, a narrative), follow-up questions in its
thread are answered from the same table, and "weekly report" builds the team report.

Every number comes from generation/reports (computed by code); the text model only words the facts. The
table is remembered for the thread only after it loaded and summarized, so a bad file leaves nothing behind
(its download is deleted) and the thread keeps whatever table it had.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from bot.files import FileFetcher, too_big
from bot.store import Store
from bot.types import ChatRequest, FileRef, ImageReply, Reply, TextReply
from planner.errors import TaskwrightError

log = logging.getLogger(__name__)

MAX_CHARTS = 4
MAX_FILES = 3  # per message
TABLE_CACHE = 4  # parsed tables kept in memory for follow-up questions
_FILE_ID = re.compile(r"\b(F[A-Z0-9]{6,})\b")
USAGE = ("Share a CSV, TSV, Excel, JSON or Parquet file with me (in a DM, or mention me with it attached) and "
         "I'll summarize it; then ask in the thread, e.g. “total Sales by Region”. "
         "`/summarize <file link>` works for a file already in Slack.")


class DataDesk:
    """Summaries, follow-up questions and the weekly report, as platform-neutral replies."""

    def __init__(self, store: Store, *, files_dir: Path, max_file_bytes: int,
                 text_model: Callable[[], Any] | None = None,
                 embedder: Callable[[], Any] | None = None) -> None:
        self.store = store
        self.files_dir = files_dir
        self.max_file_bytes = max_file_bytes
        self._text_model = text_model
        self._embedder = embedder
        self._tables: OrderedDict[Path, Any] = OrderedDict()
        self._lock = threading.Lock()

    # -- summaries -----------------------------------------------------------------------------------

    def summarize(self, req: ChatRequest, argument: str, fetcher: FileFetcher) -> list[Reply]:
        """Summarize each shared file (up to MAX_FILES; one that fails gets its message, the others go on)."""
        if len(req.files) <= 1:
            return self._summarize_one(req, argument, fetcher)
        replies: list[Reply] = []
        for ref in req.files[:MAX_FILES]:
            one = ChatRequest(req.user, req.text, req.channel, req.ts, req.thread_ts, req.is_dm, (ref,), req.event_id)
            try:
                replies += self._summarize_one(one, argument, fetcher)
            except TaskwrightError as e:
                log.info("file %s refused: %s (user=%s)", ref.name, e, req.user)
                replies.append(TextReply(str(e), kind="error"))
        if len(req.files) > MAX_FILES:
            replies.append(TextReply(f"I summarized the first {MAX_FILES} files; share the others separately."))
        return replies

    def _summarize_one(self, req: ChatRequest, argument: str, fetcher: FileFetcher) -> list[Reply]:
        ref = self._file_of(req, argument)
        if ref is None:
            known = self.store.table_for(req.channel, req.reply_thread)
            if known is None:
                return [TextReply(USAGE)]
            path, name = known
            return self._summary(path, name, req, downloaded=False)
        if ref.size > self.max_file_bytes:  # declared size: refused before any download
            log.info("file %s (%s) refused: %d bytes declared (user=%s)", ref.id, ref.name, ref.size, req.user)
            raise TaskwrightError(too_big(ref.name, ref.size, self.max_file_bytes))
        dest = self.files_dir / "uploads" / _slug(f"{req.channel}-{req.reply_thread or 'top'}")
        path = fetcher.fetch(ref, dest, max_bytes=self.max_file_bytes)
        return self._summary(path, ref.name or path.name, req, downloaded=True)

    def _file_of(self, req: ChatRequest, argument: str) -> FileRef | None:
        if req.files:
            return req.files[0]
        arg = argument.strip().strip("<>")
        if not arg:
            return None
        if m := _FILE_ID.search(arg):  # a file id or permalink (…/files/U…/F…/name): a stub for files.info
            return FileRef(id=m.group(1), name=arg.rsplit("/", 1)[-1] if "/" in arg else m.group(1))
        return FileRef(id=arg, name=Path(arg).name, url=arg)  # the console: a path

    def _summary(self, path: Path, name: str, req: ChatRequest, *, downloaded: bool) -> list[Reply]:
        from generation.reports.loader import TableError, load_table
        from generation.reports.summarize import summarize_table

        out_dir = self.files_dir / "charts" / uuid.uuid4().hex[:12]
        try:
            table = load_table(path, name, max_bytes=self.max_file_bytes)
            summary = summarize_table(table, out_dir=out_dir, text_model=self._model())
        except TableError as e:
            log.info("file %s refused for %s in %s/%s: %s", name, req.user, req.channel, req.reply_thread,
                     e.user_message)
            if downloaded:
                path.unlink(missing_ok=True)
            raise TaskwrightError(e.user_message) from e
        except Exception:
            if downloaded:
                path.unlink(missing_ok=True)
            raise
        if req.reply_thread:
            self.store.remember_table(req.channel, req.reply_thread, path, name)
        self._cache(path, table)
        head = [f"*{name}*" + (f" (sheet {table.sheet})" if table.sheet else "")]
        if table.other_sheets:
            head.append("Other sheets: " + ", ".join(table.other_sheets))
        head += [f"_{n}_" for n in table.notes[:5]]
        facts = "\n".join(head + [f"• {f}" for f in summary.facts])
        charts: list[Reply] = [
            ImageReply(filename=p.name, title=_title(p), path=p, alt_text=f"Chart of {name}: {_title(p)}")
            for p in summary.charts[:MAX_CHARTS]
        ]
        follow = "Ask me about it in this thread, e.g. “total <number column> by <category column>”."
        narrative = [TextReply(summary.narrative, generated=True)] if summary.narrative.strip() else []
        return [TextReply(facts), *charts, *narrative, TextReply(follow)]

    # -- follow-up questions -------------------------------------------------------------------------

    def has_table(self, req: ChatRequest) -> bool:
        return self.store.table_for(req.channel, req.reply_thread) is not None

    def question(self, req: ChatRequest) -> list[Reply]:
        from generation.reports.query import answer_question

        known = self.store.table_for(req.channel, req.reply_thread)
        if known is None:
            return [TextReply(USAGE)]
        path, name = known
        table = self._load(path, name)
        out_dir = self.files_dir / "charts" / uuid.uuid4().hex[:12]
        answer = answer_question(table.df, req.text, embedder=self._embedder() if self._embedder else None,
                                 out_dir=out_dir)
        replies: list[Reply] = [TextReply(answer.text, kind="info" if answer.ok else "error")]
        if answer.chart is not None:
            replies.append(ImageReply(filename=answer.chart.name, title=req.text[:120], path=answer.chart,
                                      alt_text=f"Chart: {req.text[:200]}"))
        return replies

    def _load(self, path: Path, name: str) -> Any:
        from generation.reports.loader import TableError, load_table

        with self._lock:
            if path in self._tables:
                self._tables.move_to_end(path)
                return self._tables[path]
        try:
            table = load_table(path, name, max_bytes=self.max_file_bytes)
        except TableError as e:
            raise TaskwrightError(f"I can no longer read “{name}”: {e.user_message} Share it again.") from e
        self._cache(path, table)
        return table

    def _cache(self, path: Path, table: Any) -> None:
        with self._lock:
            self._tables[path] = table
            while len(self._tables) > TABLE_CACHE:
                self._tables.popitem(last=False)

    def _model(self) -> Any:
        if self._text_model is None:
            return None
        try:
            return self._text_model()
        except Exception as e:  # the narrative falls back to a template; the numbers still go out
            log.warning("no text model for the narrative (%s); using the template", e)
            return None

    # -- the weekly report ---------------------------------------------------------------------------

    def weekly(self, today: dt.date) -> list[Reply]:
        from generation.reports.weekly import to_mrkdwn, weekly_report

        out_dir = self.files_dir / "reports" / f"weekly-{today.isoformat()}-{uuid.uuid4().hex[:6]}"
        report = weekly_report(self.store, today=today, out_dir=out_dir)
        charts: list[Reply] = [ImageReply(filename=p.name, title=_title(p), path=p, alt_text=_title(p))
                               for p in report.charts]
        return [TextReply(to_mrkdwn(report.markdown)), *charts]


def _title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip().capitalize() or "Chart"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", text)[:80]
