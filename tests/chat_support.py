"""Real parts for the chat tests: the generation service on loopback (the shipped GAN checkpoint and a tiny
real text model), which a test can stop and start again on the same port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.generation_tiny import build_tiny_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GenerationService:
    """`taskwright serve`'s app under uvicorn in a thread on a fixed loopback port; stop() and start() again."""

    def __init__(self, backends: Any, settings: Any) -> None:
        self.backends = backends
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        import uvicorn

        from generation.server import create_app

        app = create_app(self.settings, backends=self.backends, preload=False)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the generation service did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(30)
            self._server = None


class _KeepOpen:
    """Backends whose close() is a no-op: one set of loaded models serves every restart of the app."""

    def __init__(self, backends: Any) -> None:
        self._b = backends

    def __getattr__(self, name: str) -> Any:
        return getattr(self._b, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_b":
            object.__setattr__(self, name, value)
        else:
            setattr(self._b, name, value)

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture(scope="session")
def generation_service(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[GenerationService]:
    """The real service: shipped MNIST GAN checkpoint, tiny real text model, the session's MiniLM for labels."""
    from bot.settings import load_settings
    from generation.runtime import Backends

    model_dir = build_tiny_model(tmp_path_factory.mktemp("chat-tiny") / "model")
    settings = load_settings(text_model=str(model_dir), home=tmp_path_factory.mktemp("gen-home"),
                             batch_wait_ms=5, device="cpu")
    backends = Backends(settings, embedder=embedder)
    service = GenerationService(_KeepOpen(backends), settings)
    service.start()
    try:
        yield service
    finally:
        service.stop()
        backends.close(5)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


SHARED_TABLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tables"
