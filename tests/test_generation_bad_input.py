"""Issue 3 §7 against the real service on loopback: every bad input gets a clear error, the service stays up,
nothing leaks. Where each case lives:

- n = 0 and n = 10,000, an unknown label, an empty image prompt, a corrupt (garbage) GAN checkpoint, the
  first wrong types: test_generation_images.py and test_generation_server.py;
- an empty chat prompt, a 100,000-token prompt, malformed chat JSON, 200 concurrent chats against a queue
  of 32, a client that disconnects mid-stream: test_generation_server.py;
- here: wrong types that used to be coerced (`"n": true`, `"stream": "yes"`), bodies that are not JSON
  objects, malformed JSON on the images endpoint, a client that goes away from a plain (non-streamed)
  reply, a corrupt text model file, truncated and foreign GAN checkpoints, and a mixed storm of text and
  image requests after which the queues are empty and no thread was left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.settings import load_settings
from generation.runtime import Backends
from generation.server import create_app
from generation.text.engine import TextEngine
from tests.generation_tiny import LiveServer, build_tiny_model

SHIPPED_GAN = Path(__file__).resolve().parent.parent / "generation" / "gan" / "checkpoints" / "mnist5k.pt"


def endless(engine: TextEngine) -> TextEngine:
    """The same model with no end-of-reply token: a reply ends only at max_tokens, a stop, a timeout or a
    cancellation (a random tiny model otherwise ends on its own after a few hundred tokens at most)."""
    return dataclasses.replace(engine, eos_ids=frozenset(), lock=threading.Lock())


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory) -> TextEngine:
    from planner.llm import load_causal_lm

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    model, tok, device = load_causal_lm(path, None, device="cpu", n_threads=1)
    return TextEngine.from_loaded(model, tok, device, "tiny")


def _app(engine: TextEngine | None, embedder: Any, **overrides: Any) -> Any:
    settings = load_settings(**({"batch_max": 8, "batch_wait_ms": 20, "queue_max": 32, "device": "cpu"} | overrides))
    return create_app(settings, backends=Backends(settings, text_engine=engine, embedder=embedder))


@pytest.fixture(scope="module")
def live(tiny_engine: TextEngine, embedder: Any) -> Iterator[LiveServer]:
    with LiveServer(_app(tiny_engine, embedder)) as srv:
        yield srv


def _post(url: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}{path}", timeout=60, **kwargs)


CHAT = "/v1/chat/completions"
IMAGES = "/v1/images/generations"
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (CHAT, {"messages": HI, "stream": "yes"}, "stream"),
        (CHAT, {"messages": HI, "stream": 1}, "stream"),
        (CHAT, {"messages": HI, "max_tokens": True}, "max_tokens"),
        (CHAT, {"messages": HI, "max_tokens": 2.5}, "max_tokens"),
        (CHAT, {"messages": HI, "max_tokens": "12"}, "max_tokens"),
        (CHAT, {"messages": HI, "temperature": "hot"}, "temperature"),
        (CHAT, {"messages": HI, "top_p": "0.9"}, "top_p"),
        (CHAT, {"messages": HI, "stop": 3}, "stop"),
        (CHAT, {"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url", "url": "x"}]}]}, "messages.0"),
        (CHAT, {"messages": [["user", "hi"]]}, "messages.0"),
        (CHAT, {"messages": HI, "n": 2}, "n"),
        (IMAGES, {"prompt": "a seven", "n": True}, "n"),
        (IMAGES, {"prompt": "a seven", "n": "3"}, "n"),
        (IMAGES, {"prompt": "a seven", "n": 2.5}, "n"),
        (IMAGES, {"prompt": "a seven", "seed": "5"}, "seed"),
        (IMAGES, {"prompt": "a seven", "grid": "yes"}, "grid"),
        (IMAGES, {"label": 7}, "label"),
        (IMAGES, {"prompt": {"text": "a seven"}}, "prompt"),
        (IMAGES, {"prompt": "x" * 1001}, "prompt"),
    ],
)
def test_wrong_types_are_refused_not_coerced(live: LiveServer, path: str, body: dict[str, Any], param: str) -> None:
    r = _post(live.url, path, json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["message"].startswith("invalid request: ") and param in err["message"]
    assert err["param"] is not None and err["param"].startswith(param.split(".")[0])


@pytest.mark.parametrize("path", [CHAT, IMAGES])
@pytest.mark.parametrize(
    ("content", "status", "needle"),
    [
        (b'{"prompt": "a seven", "n": ', 400, "not valid JSON"),
        (b"\xff\xfe\x00garbage", 400, "not valid JSON"),
        (b"", 422, "body"),
        (b"[1, 2]", 422, "body"),
        (b'"draw a seven"', 422, "body"),
        (b"null", 422, "body"),
    ],
)
def test_bodies_that_are_not_json_objects(live: LiveServer, path: str, content: bytes, status: int,
                                          needle: str) -> None:  # fmt: skip
    r = _post(live.url, path, content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def _tokens_generated(url: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("taskwright_generated_tokens_total "):
            return float(line.split()[-1])
    return 0.0


def _wait_idle(backends: Backends, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    parts = [backends.text()] + ([backends._images.batcher] if backends._images else [])
    while any(p.in_flight for p in parts) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p.in_flight for p in parts] == [0] * len(parts)


def test_a_client_that_goes_away_from_a_plain_reply_cancels_it(tiny_engine: TextEngine, embedder: Any) -> None:
    # A model that never ends by itself: only the cancellation can stop this reply before 4,000 tokens
    # (about 7 s of tokens on a 2-core CPU; the client leaves after 0.5 s, the service checks every 0.5 s).
    with LiveServer(_app(endless(tiny_engine), embedder)) as srv:
        body = {"messages": [{"role": "user", "content": "go on"}], "max_tokens": 4000, "temperature": 1.0}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{srv.url}{CHAT}", json=body, timeout=httpx.Timeout(60, read=0.5))
        backends: Backends = srv.server.config.app.state.backends  # type: ignore[union-attr]
        _wait_idle(backends)
        assert 0 < _tokens_generated(srv.url) < 4000
        assert _post(srv.url, CHAT, json={"messages": HI, "max_tokens": 3}).status_code == 200


def test_a_corrupt_text_model_file_is_a_503_and_images_keep_working(tmp_path: Path, embedder: Any) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00\x01garbage" * 100)
    app = _app(None, embedder, text_model=str(broken))
    with LiveServer(app) as srv:  # starts although the text model cannot load
        for _ in range(2):  # the load is not retried on every request; the same clear message each time
            r = _post(srv.url, CHAT, json={"messages": HI})
            assert r.status_code == 503, r.text
            assert "broken.gguf" in r.json()["error"]["message"] and "could not be loaded" in r.json()["error"]["message"]
            assert int(r.headers["retry-after"]) >= 1
        health = httpx.get(f"{srv.url}/healthz").json()
        assert health["images"] == "ready" and "broken.gguf" in health["text"]
        r = _post(srv.url, IMAGES, json={"prompt": "a seven", "n": 2})
        assert r.status_code == 200 and r.json()["label"] == "7"


def _truncated(tmp: Path) -> Path:
    out = tmp / "truncated.pt"
    data = SHIPPED_GAN.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def _foreign(tmp: Path) -> Path:
    import torch

    out = tmp / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, out)
    return out


def _folder(tmp: Path) -> Path:
    out = tmp / "a-folder.pt"
    out.mkdir()
    return out


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_truncated, "corrupt, truncated or not a PyTorch file"),
        (_foreign, "not a Taskwright GAN checkpoint"),
        (_folder, "is not a file"),
        (lambda tmp: tmp / "missing.pt", "does not exist"),
    ],
)
def test_bad_gan_checkpoints_are_clear_503s_and_text_keeps_working(
    tiny_engine: TextEngine, embedder: Any, tmp_path: Path, make: Any, needle: str
) -> None:
    path = make(tmp_path)
    with LiveServer(_app(tiny_engine, embedder, gan_checkpoint=path)) as srv:
        r = _post(srv.url, IMAGES, json={"prompt": "a seven", "n": 2})
        assert r.status_code == 503, r.text
        message = r.json()["error"]["message"]
        assert path.name in message and needle in message
        assert _post(srv.url, CHAT, json={"messages": HI, "max_tokens": 2}).status_code == 200
        assert httpx.get(f"{srv.url}/healthz").status_code == 200  # text is up, so the service is


def test_a_mixed_storm_then_nothing_is_left_behind(tiny_engine: TextEngine, embedder: Any) -> None:
    """200 text and 200 image requests at once against queues of 32, with clients dropping out mid-stream."""
    threads_before = threading.active_count()

    async def storm(url: str) -> list[int]:
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

            async def chat(i: int) -> int:
                body = {"messages": [{"role": "user", "content": f"r{i}"}], "max_tokens": 20, "temperature": 0}
                return (await client.post(CHAT, json=body)).status_code

            async def draw(i: int) -> int:
                body = {"label": str(i % 10), "n": 64, "seed": i}
                return (await client.post(IMAGES, json=body)).status_code

            async def drop(i: int) -> int:
                body = {"messages": [{"role": "user", "content": f"d{i}"}], "max_tokens": 4000, "stream": True}
                async with client.stream("POST", CHAT, json=body) as r:
                    if r.status_code == 200:
                        async for _ in r.aiter_lines():
                            break  # the first chunk, then hang up
                    return r.status_code

            jobs = [chat(i) for i in range(200)] + [draw(i) for i in range(200)] + [drop(i) for i in range(10)]
            return list(await asyncio.gather(*jobs))

    with LiveServer(_app(endless(tiny_engine), embedder)) as srv:
        codes = asyncio.run(storm(srv.url))
        assert set(codes) <= {200, 503}, sorted(set(codes))
        assert codes.count(200) >= 64 and codes.count(503) > 0
        backends: Backends = srv.server.config.app.state.backends  # type: ignore[union-attr]
        _wait_idle(backends, 30)
        assert backends.text().depth == 0 and backends.images().batcher.depth == 0
        assert _post(srv.url, CHAT, json={"messages": HI, "max_tokens": 2}).status_code == 200
        assert _post(srv.url, IMAGES, json={"prompt": "a seven", "n": 1}).status_code == 200
    # The server thread, its executor threads and both batcher workers are gone once it has stopped.
    deadline = time.monotonic() + 10
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threading.active_count() <= threads_before, [t.name for t in threading.enumerate()]



def test_a_chunked_body_is_capped_while_it_is_read(live: LiveServer) -> None:
    """No Content-Length (chunked upload): the size limit still holds, and a small chunked body still works."""

    def body(parts: list[bytes]) -> Iterator[bytes]:
        yield from parts

    big = [b'{"messages": [{"role": "user", "content": "' + b"x" * 65536] + [b"x" * 65536] * 40
    try:
        r = httpx.post(f"{live.url}{CHAT}", content=body(big), headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 413 and "over 2048 KiB" in r.json()["error"]["message"]
    except (httpx.WriteError, httpx.RemoteProtocolError):
        pass  # the server answered 413 and closed while the client was still sending: refused either way
    small = [b'{"messages": [{"role": "user", ', b'"content": "hi"}], "max_tokens": 2}']
    r = httpx.post(f"{live.url}{CHAT}", content=body(small), headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    assert _post(live.url, CHAT, json={"messages": HI, "max_tokens": 2}).status_code == 200
