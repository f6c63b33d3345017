"""The generation backends of one process: the text batcher and the image batcher, each loaded once.

Both the HTTP service (generation/server.py) and the in-process client (generation/client.py) use these,
so a bot without TASKWRIGHT_GENERATION_URL runs exactly the code the service runs. Each half loads on
first use; a half that fails to load keeps its error (a corrupt checkpoint makes images unavailable,
text keeps working) and says what is wrong every time it is asked for.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from generation.labels import LabelResolver, UnknownLabel
from generation.text.batcher import BatchObserver, Gatherer
from generation.text.engine import TextEngine
from planner.errors import ModelUnavailableError

if TYPE_CHECKING:
    from bot.settings import Settings
    from generation.text.batcher import TextBatcher

log = logging.getLogger(__name__)

IMAGES_MAX = 64  # per request


@dataclass
class ImageJob:
    class_index: int
    n: int
    seed: int | None
    deadline: float
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


class ImageBatcher(Gatherer[ImageJob]):
    """Gathers image requests and samples them in one forward pass (GanSampler.sample_many)."""

    kind = "image"

    def __init__(self, sampler: Any, **kwargs: Any) -> None:
        self.sampler = sampler
        super().__init__(**kwargs)

    def run_batch(self, batch: list[ImageJob]) -> int:
        now = time.monotonic()
        live = []
        for job in batch:
            if job.future.cancelled():
                continue
            if now > job.deadline:
                job.future.set_exception(TimeoutError("the request waited in the queue past its timeout"))
            else:
                live.append(job)
        if not live:
            return 0
        arrays = self.sampler.sample_many([(j.class_index, j.n, j.seed) for j in live])
        for job, arr in zip(live, arrays):
            if not job.future.cancelled():
                job.future.set_result(arr)
        return sum(j.n for j in live)

    def fail_batch(self, batch: list[ImageJob], exc: Exception) -> None:
        for job in batch:
            if not job.future.done():
                job.future.set_exception(RuntimeError(f"image generation failed: {type(exc).__name__}"))


@dataclass
class ImageService:
    """A GAN sampler, its label resolver and its batcher."""

    sampler: Any
    resolver: LabelResolver
    batcher: ImageBatcher

    @property
    def class_names(self) -> list[str]:
        return list(self.sampler.class_names)

    def label_index(self, *, prompt: str | None = None, label: str | None = None) -> int:
        """A class index from an exact label (or its digit word) or a free prompt; raises UnknownLabel."""
        if label is not None:
            names = [c.lower() for c in self.class_names]
            if label.strip().lower() in names:
                return names.index(label.strip().lower())
            return self.resolver.resolve(label)
        from generation.labels import parse_draw_request

        _, subject = parse_draw_request(prompt or "")
        return self.resolver.resolve(subject or prompt or "")

    def submit(self, class_index: int, n: int, seed: int | None, *, timeout_s: float) -> ImageJob:
        if not 1 <= n <= IMAGES_MAX:
            raise ValueError(f"n must be between 1 and {IMAGES_MAX} (got {n})")
        job = ImageJob(class_index, n, seed, time.monotonic() + timeout_s)
        self.batcher.put(job)
        return job


class Backends:
    """Lazily loaded text and image backends for one set of settings (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        text_engine: TextEngine | None = None,
        sampler: Any = None,
        embedder: Any = None,
        observer: BatchObserver | None = None,
    ) -> None:
        self.settings = settings
        self.observer = observer
        self._engine = text_engine
        self._sampler = sampler
        self._embedder = embedder
        self._text: TextBatcher | None = None
        self._images: ImageService | None = None
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def _batch_args(self) -> dict[str, Any]:
        s = self.settings
        return {
            "batch_max": s.batch_max,
            "batch_wait_ms": s.batch_wait_ms,
            "queue_max": s.queue_max,
            "observer": self.observer,
        }

    def text(self) -> TextBatcher:
        """The text batcher; raises ModelUnavailableError (the same message each time) if it cannot load."""
        from generation.text.batcher import TextBatcher
        from generation.text.engine import load_text_engine

        with self._lock:
            if self._text is None:
                if "text" in self._errors:
                    raise ModelUnavailableError(self._errors["text"])
                try:
                    engine = self._engine or load_text_engine(self.settings)
                except ModelUnavailableError as exc:
                    self._errors["text"] = str(exc)
                    log.error("text model unavailable: %s", exc)
                    raise
                self._text = TextBatcher(engine, **self._batch_args())
            return self._text

    def images(self) -> ImageService:
        """The image service; raises ModelUnavailableError naming the checkpoint problem."""
        with self._lock:
            if self._images is None:
                if "images" in self._errors:
                    raise ModelUnavailableError(self._errors["images"])
                try:
                    sampler = self._sampler or _load_sampler(self.settings)
                except ModelUnavailableError as exc:
                    self._errors["images"] = str(exc)
                    log.error("image model unavailable: %s", exc)
                    raise
                resolver = LabelResolver(sampler.class_names, embedder=self._embedder or _default_embedder())
                self._images = ImageService(sampler, resolver, ImageBatcher(sampler, **self._batch_args()))
            return self._images

    def status(self) -> dict[str, str]:
        """"ready", "not loaded" or the load error, per backend."""
        return {
            "text": "ready" if self._text else self._errors.get("text", "not loaded"),
            "images": "ready" if self._images else self._errors.get("images", "not loaded"),
        }

    def close(self, timeout: float | None = None) -> None:
        """Finish queued and running requests, then stop the workers."""
        for part in (self._text, self._images.batcher if self._images else None):
            if part is not None and not part.close(timeout):
                log.warning("%s batcher still busy after %s s at shutdown", part.kind, timeout)


def _default_embedder() -> Any:
    """MiniLM for prompts that are not digit words or class names; None if it is not installed."""
    from planner.embed import default_embedder

    try:
        return default_embedder()
    except ModelUnavailableError as exc:
        log.warning("prompt matching by similarity is off: %s", exc)
        return None


def _load_sampler(settings: Settings) -> Any:
    device = settings.device
    try:
        from generation.gan import CheckpointError, GanSampler
    except ImportError as exc:
        raise ModelUnavailableError(f"the image model is not installed: {exc}") from exc
    try:
        return GanSampler.load(settings.gan_checkpoint, device=device)
    except (CheckpointError, OSError, ValueError) as exc:  # ValueError: a device this machine lacks
        raise ModelUnavailableError(f"the image model could not be loaded: {exc}") from exc


_SHARED: dict[tuple[Any, ...], Backends] = {}
_SHARED_LOCK = threading.Lock()


def shared_backends(settings: Settings) -> Backends:
    """One Backends per process and settings (the in-process client's), loaded on first use."""
    key = (settings.text_model, str(settings.gan_checkpoint), settings.device, settings.batch_max,
           settings.batch_wait_ms, settings.queue_max, str(settings.models_dir))  # fmt: skip
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = Backends(settings)
        return _SHARED[key]


__all__ = ["Backends", "ImageBatcher", "ImageJob", "ImageService", "UnknownLabel", "shared_backends"]
