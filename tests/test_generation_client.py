"""generation/client.py: the HTTP clients against a real loopback service, and the in-process ones."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bot.settings import load_settings
from generation.client import (
    GenerationRejected,
    GenerationUnavailable,
    HttpImageModel,
    HttpTextModel,
    LocalImageModel,
    LocalTextModel,
    build_image_model,
    build_text_model,
)
from generation.runtime import Backends
from generation.server import create_app
from tests.generation_tiny import LiveServer, build_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def service(tiny_dir: Path, embedder: Any) -> Any:
    settings = load_settings(text_model=str(tiny_dir), device="cpu", batch_wait_ms=5)
    with LiveServer(create_app(settings, backends=Backends(settings, embedder=embedder))) as srv:
        yield srv


def _png(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data)).size  # type: ignore[no-any-return]


def test_build_picks_http_when_a_url_is_set(tiny_dir: Path) -> None:
    remote = load_settings(generation_url="http://127.0.0.1:9/")
    assert isinstance(build_text_model(remote), HttpTextModel)
    assert isinstance(build_image_model(remote), HttpImageModel)
    local = load_settings(text_model=str(tiny_dir))
    assert isinstance(build_text_model(local), LocalTextModel)
    assert isinstance(build_image_model(local), LocalImageModel)


def test_http_text_and_images(service: Any) -> None:
    settings = load_settings(generation_url=service.url + "/v1", generation_timeout_s=30)
    text = build_text_model(settings).complete([{"role": "user", "content": "Draft a reply"}], max_tokens=5,
                                               temperature=0)  # fmt: skip
    assert isinstance(text, str) and text
    img = build_image_model(settings).draw("draw 8 sevens", n=8, seed=1)
    assert img.label == "7" and img.n == 8 and img.seed == 1
    assert img.png.startswith(b"\x89PNG") and _png(img.png)[0] > 56


def test_http_rejections_carry_the_services_message(service: Any) -> None:
    settings = load_settings(generation_url=service.url, generation_timeout_s=30)
    with pytest.raises(GenerationRejected) as info:
        build_image_model(settings).draw("a giraffe", n=4)
    assert "can draw: 0, 1, 2" in info.value.user_message
    with pytest.raises(GenerationRejected, match="between 1 and 64"):
        build_image_model(settings).draw("a seven", n=500)
    with pytest.raises(GenerationRejected, match="prompt is empty"):
        build_text_model(settings).complete([{"role": "user", "content": ""}])


def test_a_service_that_is_down_is_unavailable_within_the_timeout() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    settings = load_settings(generation_url=f"http://127.0.0.1:{port}", generation_timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(GenerationUnavailable) as info:
        build_text_model(settings).complete([{"role": "user", "content": "hi"}])
    assert time.monotonic() - t0 < 4
    assert "unavailable" in info.value.user_message and "cannot connect" in info.value.user_message


def test_retries_reach_a_service_that_comes_back(tiny_dir: Path, embedder: Any) -> None:
    settings = load_settings(text_model=str(tiny_dir), device="cpu")
    srv = LiveServer(create_app(settings, backends=Backends(settings, embedder=embedder), preload=False))
    starter = threading.Timer(1.0, srv.__enter__)
    starter.start()
    try:
        client = HttpImageModel(srv.url, timeout_s=30)
        t0 = time.monotonic()
        img = client.draw("七", n=2, seed=5)  # refused connections first, then the service is up
        assert img.label == "7" and time.monotonic() - t0 >= 0.9
    finally:
        starter.join()
        srv.stop()


def test_a_full_queue_is_retried_after_retry_after_then_unavailable(tiny_dir: Path) -> None:
    from generation.text.engine import load_text_engine

    # The worker is kept busy deterministically: the test holds the engine's lock, so the batch the worker
    # took blocks at its first forward pass (a random tiny model cannot be relied on to run long: it samples
    # its end token within a few hundred tokens). One request is running, one fills the queue of 1.
    settings = load_settings(text_model=str(tiny_dir), device="cpu", queue_max=1, batch_max=1, batch_wait_ms=0,
                             request_timeout_s=60)  # fmt: skip
    backends = Backends(settings, text_engine=load_text_engine(settings))
    batcher = backends.text()
    with LiveServer(create_app(settings, backends=backends, preload=False)) as srv:
        results: list[str] = []
        earlier = HttpTextModel(srv.url, timeout_s=60)

        def send() -> None:
            results.append(earlier.complete([{"role": "user", "content": "first"}], max_tokens=3, temperature=0))

        def wait_for(depth: int, in_flight: int) -> None:
            deadline = time.monotonic() + 10
            while (batcher.depth, batcher.in_flight) != (depth, in_flight) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert (batcher.depth, batcher.in_flight) == (depth, in_flight)

        senders = [threading.Thread(target=send) for _ in range(2)]
        batcher.engine.lock.acquire()
        try:
            senders[0].start()
            wait_for(0, 1)  # taken by the worker, which now waits for the lock
            senders[1].start()
            wait_for(1, 2)  # the queue of 1 is full
            t0 = time.monotonic()
            with pytest.raises(GenerationUnavailable, match="busy or unavailable") as info:
                HttpTextModel(srv.url, timeout_s=2.5).complete([{"role": "user", "content": "me too"}])
            assert time.monotonic() - t0 >= 1.0  # it waited (Retry-After, backoff) before giving up
            assert "queue is full" in info.value.user_message
        finally:
            batcher.engine.lock.release()
        for t in senders:
            t.join(30)
        assert len(results) == 2 and all(isinstance(r, str) for r in results)  # the queued ones still finish
        # Once the queue has room again, the same client call succeeds.
        assert isinstance(HttpTextModel(srv.url, timeout_s=10).complete([{"role": "user", "content": "now"}],
                                                                        max_tokens=2), str)  # fmt: skip


def test_in_process_models_use_the_same_backends(tiny_dir: Path, embedder: Any) -> None:
    settings = load_settings(text_model=str(tiny_dir), device="cpu")
    backends = Backends(settings, embedder=embedder)
    text = LocalTextModel(backends, timeout_s=30).complete([{"role": "user", "content": "hi"}], max_tokens=4)
    assert isinstance(text, str)
    img = LocalImageModel(backends, timeout_s=30).draw("画三个七", n=3, seed=2)
    assert img.label == "7" and img.png.startswith(b"\x89PNG")
    with pytest.raises(GenerationRejected, match="can draw"):
        LocalImageModel(backends, timeout_s=30).draw("a giraffe", n=3)
    with pytest.raises(GenerationRejected, match="1 to 64"):
        LocalImageModel(backends, timeout_s=30).draw("a seven", n=0)
    with pytest.raises(GenerationRejected, match="too long"):
        LocalTextModel(backends, timeout_s=30).complete([{"role": "user", "content": "x " * 100_000}])
    broken = Backends(load_settings(text_model=str(tiny_dir.parent / "missing.gguf")))
    with pytest.raises(GenerationUnavailable, match="text model is unavailable"):
        LocalTextModel(broken, timeout_s=5).complete([{"role": "user", "content": "hi"}])
