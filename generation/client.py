"""What the bot uses to generate: TextModel and ImageModel, over HTTP or in-process.

`build_text_model(settings)` / `build_image_model(settings)` return HTTP clients of `taskwright serve`
when TASKWRIGHT_GENERATION_URL is set, else the same backends in this process (generation/runtime.py).
Failures become GenerationError subclasses whose `user_message` is safe to show in chat:
GenerationUnavailable (down, slow, 5xx, still 503 after retries: offer Retry) and GenerationRejected
(the input was refused: the message says why, e.g. what the model can draw).
"""

from __future__ import annotations

import base64
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

RETRY_BASE_S = 0.5
RETRY_MAX_SLEEP_S = 8.0
GRID_SCALE = 2


class GenerationError(Exception):
    """Base of generation failures; user_message is safe to show in chat."""

    def __init__(self, user_message: str, *, detail: str = "") -> None:
        super().__init__(detail or user_message)
        self.user_message = user_message


class GenerationUnavailable(GenerationError):
    """The generator is down, too slow, failing, or still busy after retries; trying later may work."""


class GenerationRejected(GenerationError):
    """The generator refused this input (bad size, unknown label...); retrying the same input will not help."""


@dataclass
class GeneratedImage:
    png: bytes
    label: str
    n: int
    seed: int | None


class TextModel(Protocol):
    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.95,
        stop: list[str] | None = None,
    ) -> str: ...


class ImageModel(Protocol):
    def draw(self, prompt: str, n: int = 8, seed: int | None = None) -> GeneratedImage: ...


# ---------------------------------------------------------------- HTTP


class _Http:
    """httpx with timeouts, and retries with exponential backoff on connection errors and 503."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self.timeout_s = timeout_s
        self._client = httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))
        )

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            left = self.timeout_s - (time.monotonic() - started)
            why: str
            wait: float | None = None
            try:
                r = self._client.post(path, json=body, timeout=max(1.0, left))
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                why = f"cannot connect to {self.base_url} ({type(exc).__name__})"
            except httpx.TimeoutException as exc:  # a read timeout: the work may still be running; do not pile on
                log.warning("generation %s timed out after %.1f s: %s", path, time.monotonic() - started, exc)
                raise GenerationUnavailable(
                    f"The generation service did not answer within {self.timeout_s:.0f} s. Try again.",
                    detail=f"{path}: {exc!r}",
                ) from exc
            else:
                if r.status_code == 200:
                    return r.json()  # type: ignore[no-any-return]
                message = _error_message(r)
                if 400 <= r.status_code < 500:
                    log.info("generation %s rejected (%d): %s", path, r.status_code, message)
                    raise GenerationRejected(message, detail=f"{path} {r.status_code}: {message}")
                if r.status_code != 503:
                    log.warning("generation %s failed (%d): %s", path, r.status_code, message)
                    raise GenerationUnavailable(
                        f"The generation service failed ({r.status_code}): {message}",
                        detail=f"{path} {r.status_code}: {message}",
                    )
                why = f"busy or unavailable (503: {message})"
                wait = _retry_after(r)
            backoff = min(RETRY_MAX_SLEEP_S, RETRY_BASE_S * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            sleep = max(backoff, wait or 0.0)
            elapsed = time.monotonic() - started
            if elapsed + sleep >= self.timeout_s:
                log.warning("generation %s gave up after %d tries in %.1f s: %s", path, attempt, elapsed, why)
                raise GenerationUnavailable(
                    f"The generation service is unavailable ({why}); tried for {elapsed:.0f} s. Try again later.",
                    detail=f"{path}: {why} after {attempt} tries",
                )
            log.info("generation %s try %d: %s; retrying in %.1f s", path, attempt, why, sleep)
            time.sleep(sleep)

    def close(self) -> None:
        self._client.close()


def _error_message(r: Any) -> str:
    try:
        body = r.json()
    except ValueError:
        return (r.text or r.reason_phrase or "")[:300]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])[:500]
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:500]
    return str(body)[:300]


def _retry_after(r: Any) -> float | None:
    value = r.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class HttpTextModel:
    """TextModel over POST /v1/chat/completions of a `taskwright serve` (or any OpenAI-compatible server)."""

    def __init__(self, base_url: str, *, timeout_s: float = 60.0, model: str | None = None) -> None:
        self._http = _Http(base_url, timeout_s)
        self.model = model

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.95,
        stop: list[str] | None = None,
    ) -> str:
        body: dict[str, Any] = {"messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                                "top_p": top_p}  # fmt: skip
        if stop:
            body["stop"] = stop
        if self.model:
            body["model"] = self.model
        reply = self._http.post("/v1/chat/completions", body)
        try:
            return str(reply["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError) as exc:
            raise GenerationUnavailable(
                "The generation service sent a reply I could not read.", detail=repr(reply)[:300]
            ) from exc


class HttpImageModel:
    """ImageModel over POST /v1/images/generations (one PNG grid per call)."""

    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._http = _Http(base_url, timeout_s)

    def draw(self, prompt: str, n: int = 8, seed: int | None = None) -> GeneratedImage:
        body = {"prompt": prompt, "n": n, "seed": seed, "grid": True, "response_format": "b64_json"}
        reply = self._http.post("/v1/images/generations", body)
        try:
            png = base64.b64decode(reply["data"][0]["b64_json"])
            return GeneratedImage(png=png, label=str(reply["label"]), n=n, seed=reply.get("seed", seed))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise GenerationUnavailable(
                "The generation service sent images I could not read.", detail=repr(reply)[:300]
            ) from exc


# ---------------------------------------------------------------- in-process


class LocalTextModel:
    """TextModel on this process's text batcher (the service's own code, no HTTP)."""

    def __init__(self, backends: Any, *, timeout_s: float) -> None:
        self.backends = backends
        self.timeout_s = timeout_s

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.95,
        stop: list[str] | None = None,
    ) -> str:
        from generation.text.batcher import QueueFull, ShuttingDown
        from generation.text.engine import PromptTooLong, SamplingParams
        from planner.errors import ModelUnavailableError

        if not any(str(m.get("content", "")).strip() for m in messages):
            raise GenerationRejected("The prompt is empty; say what to write.")
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                                stop=tuple(stop or ()))  # fmt: skip
        try:
            text, end = self.backends.text().complete(messages, params, timeout_s=self.timeout_s)
        except ModelUnavailableError as exc:
            raise GenerationUnavailable(f"The text model is unavailable: {exc}") from exc
        except PromptTooLong as exc:
            raise GenerationRejected(f"The prompt is too long: {exc}") from exc
        except (QueueFull, ShuttingDown) as exc:
            raise GenerationUnavailable(f"The text generator is busy ({exc}). Try again shortly.") from exc
        if end.finish in ("timeout", "error", "cancelled"):
            raise GenerationUnavailable(
                f"Text generation did not finish ({end.error or end.finish}). Try again.",
                detail=f"finish={end.finish} error={end.error}",
            )
        return text


class LocalImageModel:
    """ImageModel on this process's GAN sampler and image batcher."""

    def __init__(self, backends: Any, *, timeout_s: float) -> None:
        self.backends = backends
        self.timeout_s = timeout_s

    def draw(self, prompt: str, n: int = 8, seed: int | None = None) -> GeneratedImage:
        import concurrent.futures

        from generation.runtime import IMAGES_MAX, UnknownLabel
        from generation.text.batcher import QueueFull, ShuttingDown
        from planner.errors import ModelUnavailableError

        if not prompt or not prompt.strip():
            raise GenerationRejected("Say what to draw, e.g. 'draw 8 sevens'.")
        if not 1 <= n <= IMAGES_MAX:
            raise GenerationRejected(f"I can draw 1 to {IMAGES_MAX} images at a time (asked for {n}).")
        try:
            images = self.backends.images()
            index = images.label_index(prompt=prompt)
            job = images.submit(index, n, seed, timeout_s=self.timeout_s)
            arr = job.future.result(timeout=self.timeout_s + 5)
        except UnknownLabel as exc:
            raise GenerationRejected(str(exc)) from exc
        except ModelUnavailableError as exc:
            raise GenerationUnavailable(f"The image model is unavailable: {exc}") from exc
        except (QueueFull, ShuttingDown) as exc:
            raise GenerationUnavailable(f"The image generator is busy ({exc}). Try again shortly.") from exc
        except (TimeoutError, concurrent.futures.TimeoutError) as exc:
            raise GenerationUnavailable("Drawing took too long. Try again.") from exc
        from generation.gan import grid_png

        label = images.class_names[index]
        return GeneratedImage(png=grid_png(arr, scale=GRID_SCALE), label=label, n=n, seed=seed)


def build_text_model(settings: Settings) -> TextModel:
    """HTTP client when settings.generation_url is set, else the in-process text backend (loaded lazily)."""
    if settings.generation_url:
        return HttpTextModel(settings.generation_url, timeout_s=settings.generation_timeout_s)
    from generation.runtime import shared_backends

    # In-process there is no network to give up on: the service's own per-request limit applies (a CPU
    # writes a few hundred tokens in about a minute when other work shares it).
    timeout_s = max(settings.generation_timeout_s, settings.request_timeout_s)
    return LocalTextModel(shared_backends(settings), timeout_s=timeout_s)


def build_image_model(settings: Settings) -> ImageModel:
    """HTTP client when settings.generation_url is set, else the in-process GAN (loaded lazily)."""
    if settings.generation_url:
        return HttpImageModel(settings.generation_url, timeout_s=settings.generation_timeout_s)
    from generation.runtime import shared_backends

    return LocalImageModel(shared_backends(settings), timeout_s=settings.generation_timeout_s)
