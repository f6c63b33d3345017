"""Request batching: a bounded queue, a worker thread that gathers requests, and the text step loop.

Concurrent requests are gathered for up to `batch_wait_ms` or until `batch_max` are waiting, then run
together: prompts are left-padded, prefilled in one forward pass, and decoded one token per step for the
whole batch with a KV cache. Each row stops on its own (end token, stop string, max_tokens, cancellation
or deadline); finished rows are dropped from the cache so the rest run on a smaller batch. Tokens are
handed to each request's sink as they are produced, so replies stream per request. A request with a grammar
(response_format json_schema/json_object) has an llguidance matcher: its row's logits are masked to the
tokens the grammar allows before sampling, the sampled token is fed to the matcher, and the reply ends
("stop") when the grammar is complete. Rows without a grammar are untouched.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from generation.text.engine import SamplingParams, TextEngine, sample_next

log = logging.getLogger(__name__)

T = TypeVar("T")


class QueueFull(Exception):
    """The queue holds queue_max waiting requests; retry_after is a whole-second estimate."""

    def __init__(self, depth: int, retry_after: int) -> None:
        super().__init__(f"the generation queue is full ({depth} waiting); retry in {retry_after} s")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The service is stopping and takes no new requests."""


BatchObserver = Callable[[str, int, float, int], None]  # (kind, batch size, seconds, tokens or images)


class Gatherer(Generic[T]):
    """A bounded FIFO served by one worker thread that takes up to batch_max items at a time."""

    kind = "batch"

    def __init__(
        self, *, batch_max: int, batch_wait_ms: float, queue_max: int, observer: BatchObserver | None = None
    ) -> None:
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_ms / 1000
        self.queue_max = queue_max
        self.observer = observer
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = 0  # items in the batch being run
        self._batch_s = 1.0  # moving average of a batch's duration, for Retry-After
        self._thread = threading.Thread(target=self._loop, name=f"{self.kind}-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting for a batch (not those running)."""
        return len(self._items)

    @property
    def in_flight(self) -> int:
        return len(self._items) + self._busy

    def put(self, item: T) -> None:
        """Queue an item or raise QueueFull/ShuttingDown at once (never blocks)."""
        with self._cond:
            if self._closing:
                raise ShuttingDown("the service is shutting down")
            if len(self._items) >= self.queue_max:
                batches_ahead = math.ceil((len(self._items) + 1) / self.batch_max)
                raise QueueFull(len(self._items), max(1, math.ceil(batches_ahead * self._batch_s)))
            self._items.append(item)
            self._cond.notify()

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking requests, finish the queued and running ones; True when the worker ended in time."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _take(self) -> list[T] | None:
        with self._cond:
            while not self._items:
                if self._closing:
                    return None
                self._cond.wait()
            deadline = time.monotonic() + self.batch_wait_s
            while len(self._items) < self.batch_max and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [self._items.popleft() for _ in range(min(self.batch_max, len(self._items)))]
            self._busy = len(batch)
            return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            t0 = time.perf_counter()
            try:
                work = self.run_batch(batch)
            except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the worker
                log.exception("%s batch of %d failed", self.kind, len(batch))
                self.fail_batch(batch, exc)
                work = 0
            elapsed = time.perf_counter() - t0
            self._batch_s = 0.8 * self._batch_s + 0.2 * elapsed
            with self._cond:
                self._busy = 0
            if self.observer is not None:
                self.observer(self.kind, len(batch), elapsed, work)

    def run_batch(self, batch: list[T]) -> int:
        raise NotImplementedError

    def fail_batch(self, batch: list[T], exc: Exception) -> None:
        raise NotImplementedError


@dataclass
class TextEvent:
    """A piece of a reply: text delta, or the end (finish set) with usage, or an error."""

    delta: str = ""
    finish: str | None = None  # stop | length | cancelled | timeout | error
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TextRequest:
    ids: list[int]
    params: SamplingParams
    sink: Callable[[TextEvent], None]
    deadline: float  # time.monotonic() by which the reply must be done
    cancelled: threading.Event = field(default_factory=threading.Event)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    enqueued: float = field(default_factory=time.monotonic)
    matcher: Any = None  # an llguidance LLMatcher when params.grammar is set


@dataclass
class _Row:
    """Decoding state of one request inside a batch."""

    req: TextRequest
    generated: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0  # characters of text already handed to the sink

    def end(self, finish: str, error: str | None = None) -> None:
        rest = self.text[self.sent :] if finish in ("stop", "length") else ""
        self.sent = len(self.text)
        self.req.sink(
            TextEvent(
                delta=rest,
                finish=finish,
                error=error,
                prompt_tokens=len(self.req.ids),
                completion_tokens=len(self.generated),
            )
        )


class TextBatcher(Gatherer[TextRequest]):
    """Runs gathered text requests through one KV-cached decode loop per batch."""

    kind = "text"

    def __init__(self, engine: TextEngine, **kwargs: object) -> None:
        self.engine = engine
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def submit(
        self,
        messages: list[dict[str, str]],
        params: SamplingParams,
        sink: Callable[[TextEvent], None],
        *,
        timeout_s: float,
    ) -> TextRequest:
        """Encode and queue a chat; raises PromptTooLong, GrammarError, QueueFull or ShuttingDown."""
        ids = self.engine.encode(messages, params)
        matcher = self.engine.grammars.matcher(params.grammar) if params.grammar else None
        req = TextRequest(ids, params, sink, time.monotonic() + timeout_s, matcher=matcher)
        self.put(req)
        return req

    def complete(
        self, messages: list[dict[str, str]], params: SamplingParams, *, timeout_s: float
    ) -> tuple[str, TextEvent]:
        """Blocking helper for in-process callers: (text, final event)."""
        events: queue.Queue[TextEvent] = queue.Queue()
        req = self.submit(messages, params, events.put, timeout_s=timeout_s)
        parts: list[str] = []
        while True:
            try:
                ev = events.get(timeout=max(0.1, req.deadline - time.monotonic() + 5))
            except queue.Empty:
                req.cancelled.set()
                return "".join(parts), TextEvent(finish="timeout", error="generation timed out")
            parts.append(ev.delta)
            if ev.finish is not None:
                return "".join(parts), ev

    def fail_batch(self, batch: list[TextRequest], exc: Exception) -> None:
        for req in batch:
            req.sink(TextEvent(finish="error", error=f"generation failed: {type(exc).__name__}"))

    def run_batch(self, batch: list[TextRequest]) -> int:
        import torch

        now = time.monotonic()
        rows: list[_Row] = []
        for req in batch:
            row = _Row(req)
            if req.cancelled.is_set():
                row.end("cancelled")
            elif now > req.deadline:
                row.end("timeout", "the request waited in the queue past its timeout")
            else:
                rows.append(row)
        if not rows:
            return 0
        eng = self.engine
        dev = eng.device
        width = max(len(r.req.ids) for r in rows)
        ids = torch.full((len(rows), width), eng.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r.req.ids) :] = torch.tensor(r.req.ids)
            mask[i, width - len(r.req.ids) :] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        temps = torch.tensor([r.req.params.temperature for r in rows], device=dev)
        top_p = torch.tensor([r.req.params.top_p for r in rows], device=dev)
        produced = 0
        with eng.lock, torch.inference_mode():
            from transformers import DynamicCache

            cache = DynamicCache()
            key = eng.cache_arg
            out = eng.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **{key: cache})
            logits = out.logits[:, -1, :]
            last_pos = pos[:, -1]
            while rows:
                constrained = [(i, r.req.matcher) for i, r in enumerate(rows) if r.req.matcher is not None]
                if constrained:
                    eng.grammars.mask(logits, constrained)
                nxt = sample_next(logits, temps, top_p)
                keep: list[int] = []
                for i, (row, tok) in enumerate(zip(rows, nxt.tolist())):
                    if self._advance(row, int(tok)):
                        keep.append(i)
                    produced += 1
                if not keep:
                    break
                if len(keep) < len(rows):
                    index = torch.tensor(keep, device=dev)
                    cache.batch_select_indices(index)
                    rows = [rows[i] for i in keep]
                    nxt, mask, last_pos = nxt[index], mask[index], last_pos[index]
                    temps, top_p = temps[index], top_p[index]
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                last_pos = last_pos + 1
                out = eng.model(
                    input_ids=nxt.unsqueeze(-1),
                    attention_mask=mask,
                    position_ids=last_pos.unsqueeze(-1),
                    use_cache=True,
                    **{key: cache},
                )
                logits = out.logits[:, -1, :]
        return produced

    def _advance(self, row: _Row, tok: int) -> bool:
        """Add one sampled token to a row and stream what is safe to send; False when the row ended."""
        req, params = row.req, row.req.params
        if req.cancelled.is_set():
            row.end("cancelled")
            return False
        if tok in self.engine.eos_ids:
            row.end("stop")
            return False
        matcher = req.matcher
        if matcher is not None and not matcher.consume_token(tok):  # cannot happen with the mask applied
            log.error("request %s: the grammar refused token %d: %s", req.id, tok, matcher.get_error())
            row.end("error", f"constrained decoding failed: {matcher.get_error()}")
            return False
        row.generated.append(tok)
        row.text = self.engine.decode(row.generated)
        for s in params.stop:
            at = row.text.find(s, max(0, row.sent - len(s)))
            if at >= 0:
                row.text = row.text[:at]
                row.end("stop")
                return False
        if matcher is not None and matcher.is_stopped():  # the grammar is complete: nothing more may follow
            row.end("stop")
            return False
        if len(row.generated) >= params.max_tokens:
            row.end("length")
            return False
        if time.monotonic() > req.deadline:
            row.end("timeout", "generation ran past the request timeout")
            return False
        # Hold back a possible start of a stop string and an incomplete multi-byte character.
        hold = max((len(s) - 1 for s in params.stop), default=0)
        safe = len(row.text) - hold
        while safe > row.sent and row.text[safe - 1] == "\ufffd":
            safe -= 1
        if safe > row.sent:
            req.sink(TextEvent(delta=row.text[row.sent : safe]))
            row.sent = safe
        return True
