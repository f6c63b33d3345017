"""The generation service end to end on loopback: a real uvicorn server, a tiny real model, real HTTP."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
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


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory) -> TextEngine:
    from planner.llm import load_causal_lm

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    model, tok, device = load_causal_lm(path, None, device="cpu", n_threads=1)
    return TextEngine.from_loaded(model, tok, device, "tiny")


@pytest.fixture(scope="module")
def endless_engine(tiny_engine: TextEngine) -> TextEngine:
    """The same model with no end-of-reply token: a reply ends only at max_tokens, a stop string, the timeout
    or a cancellation. The random tiny model otherwise samples its end token within a few hundred tokens, so
    a test of cancelling or timing out a long reply could pass without the cancel or the timeout."""
    return dataclasses.replace(tiny_engine, eos_ids=frozenset(), lock=threading.Lock())


def _tokens_generated(url: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("taskwright_generated_tokens_total "):
            return float(line.split()[-1])
    return 0.0


def _server(engine: TextEngine, **overrides: Any) -> LiveServer:
    settings = load_settings(**({"batch_max": 8, "batch_wait_ms": 20, "queue_max": 32} | overrides))
    backends = Backends(settings, text_engine=engine)
    return LiveServer(create_app(settings, backends=backends, preload=False))


@pytest.fixture(scope="module")
def live(tiny_engine: TextEngine) -> Iterator[LiveServer]:
    with _server(tiny_engine) as srv:
        httpx.post(f"{srv.url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                           "max_tokens": 1})  # fmt: skip  (loads the backend)
        yield srv


def _chat(url: str, content: str = "Draft a reply", **body: Any) -> httpx.Response:
    payload = {"messages": [{"role": "user", "content": content}], "max_tokens": 12, "temperature": 0} | body
    return httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=60)


def _sse(url: str, content: str, **body: Any) -> list[dict[str, Any] | str]:
    payload = {"messages": [{"role": "user", "content": content}], "max_tokens": 12, "temperature": 0,
               "stream": True} | body  # fmt: skip
    out: list[dict[str, Any] | str] = []
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=payload, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_chat_completion_is_openai_shaped_with_usage(live: LiveServer) -> None:
    r = _chat(live.url, max_tokens=7)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 3
    assert 1 <= usage["completion_tokens"] <= 7
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_yields_the_same_text_as_a_plain_reply_and_ends_with_done(live: LiveServer) -> None:
    plain = _chat(live.url, "Write an announcement", max_tokens=20).json()
    chunks = _sse(live.url, "Write an announcement", max_tokens=20)
    assert chunks[-1] == "[DONE]"
    events = [c for c in chunks if isinstance(c, dict)]
    assert all(c["object"] == "chat.completion.chunk" for c in events)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in events)
    assert text == plain["choices"][0]["message"]["content"]
    assert events[-1]["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"]
    assert events[-1]["usage"] == plain["usage"]
    assert len(events) >= 3  # role chunk, content as it came, the finish chunk


def test_a_stop_string_ends_the_reply_before_it(live: LiveServer) -> None:
    full = _chat(live.url, "The quick brown fox", max_tokens=30).json()["choices"][0]["message"]["content"]
    assert len(full) > 6, full
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    cut = _chat(live.url, "The quick brown fox", max_tokens=30, stop=[stop]).json()
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert cut["choices"][0]["message"]["content"] == full[: full.find(stop)]


def test_concurrent_replies_match_one_at_a_time_replies(live: LiveServer) -> None:
    """Left padding and per-row positions are right: batching does not change greedy output."""
    prompts = ["a", "Draft a reply to the customer", "画三个七", "Write an announcement for the offsite next Friday"]
    alone = [_chat(live.url, p, max_tokens=10).json()["choices"][0]["message"]["content"] for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: _chat(live.url, p, max_tokens=10), prompts))
    assert [r.json()["choices"][0]["message"]["content"] for r in together] == alone


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"messages": [{"role": "user", "content": "   "}]}, 400, "prompt is empty"),
        ({"messages": []}, 422, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 422, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}, 422, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": 9}, 422, "temperature"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, 422, "role"),
        ({"messages": "hello"}, 422, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c", "d", "e"]}, 422, "stop"),
        ({"prompt": "hi"}, 422, "messages"),
    ],
)
def test_bad_chat_requests_say_what_is_wrong(live: LiveServer, body: dict[str, Any], status: int,
                                             needle: str) -> None:  # fmt: skip
    r = httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_malformed_json_is_a_400(live: LiveServer) -> None:
    r = httpx.post(f"{live.url}/v1/chat/completions", content=b'{"messages": [', timeout=30,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]["message"]


def test_a_100k_token_prompt_is_refused_before_tokenizing(live: LiveServer) -> None:
    big = "word " * 100_000
    t0 = time.perf_counter()
    r = _chat(live.url, big)
    assert r.status_code == 413, r.text
    assert "characters" in r.json()["error"]["message"]
    assert time.perf_counter() - t0 < 5  # refused on its length in characters, never tokenized
    # Just over the token limit but under the character bound: refused after counting tokens.
    r = _chat(live.url, "画" * 8500)
    assert r.status_code == 413 and "tokens" in r.json()["error"]["message"]
    assert _chat(live.url, "still fine").status_code == 200


def test_a_huge_body_is_refused_by_size(live: LiveServer) -> None:
    r = httpx.post(f"{live.url}/v1/chat/completions", content=b"x" * (3 * 1024 * 1024), timeout=30,
                   headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413


def test_models_healthz_and_metrics(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/healthz").json()["text"] == "ready"
    ids = [m["id"] for m in httpx.get(f"{live.url}/v1/models").json()["data"]]
    assert "tiny" in ids
    _chat(live.url, "count me")
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'taskwright_batch_size_bucket{kind="text"' in metrics
    assert 'taskwright_requests_total{endpoint="/v1/chat/completions",status="200"}' in metrics
    assert "taskwright_request_seconds_bucket" in metrics
    assert 'taskwright_queue_depth{kind="text"} 0.0' in metrics
    assert "taskwright_generated_tokens_total" in metrics


def test_json_response_format_returns_the_json_object(live: LiveServer) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "required": ["items"],
           "additionalProperties": False, "properties": {"items": {"type": "array"}}}}}  # fmt: skip
    r = _chat(live.url, "list things", response_format=fmt, max_tokens=10)
    assert r.status_code == 200
    # Cut at 10 tokens, but the grammar (llguidance; tests/test_generation_grammar.py) allowed only this opening.
    assert r.json()["choices"][0]["message"]["content"].startswith('{"items": [')


def test_200_concurrent_requests_against_a_queue_of_32(tiny_engine: TextEngine) -> None:
    import asyncio

    async def storm(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            body = {"max_tokens": 30, "temperature": 0}
            return list(await asyncio.gather(*(
                client.post("/v1/chat/completions", json=body | {"messages": [{"role": "user", "content": f"r{i}"}]})
                for i in range(200)
            )))  # fmt: skip

    with _server(tiny_engine, queue_max=32, batch_max=8) as srv:
        replies = asyncio.run(storm(srv.url))
        codes = [r.status_code for r in replies]
        assert set(codes) <= {200, 503}, codes
        assert codes.count(503) > 0 and codes.count(200) >= 32
        busy = next(r for r in replies if r.status_code == 503)
        assert int(busy.headers["retry-after"]) >= 1
        assert "queue is full" in busy.json()["error"]["message"]
        assert _chat(srv.url, "after the storm").status_code == 200
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'status="503"' in metrics


def test_a_client_that_disconnects_mid_stream_frees_its_slot(endless_engine: TextEngine) -> None:
    with _server(endless_engine) as srv:
        body = {"messages": [{"role": "user", "content": "go on"}], "max_tokens": 4000, "temperature": 1.0,
                "stream": True}  # fmt: skip
        with httpx.stream("POST", f"{srv.url}/v1/chat/completions", json=body, timeout=30) as r:
            lines = r.iter_lines()
            got = [next(lines) for _ in range(6)]
        assert any(line.startswith("data: {") for line in got)
        backends: Backends = srv.server.config.app.state.backends  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while backends.text().in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backends.text().in_flight == 0
        assert 0 < _tokens_generated(srv.url) < 4000  # cancelled: this model would otherwise write all 4000
        assert _chat(srv.url, "next one").status_code == 200


def test_a_request_past_its_timeout_is_a_504_and_the_service_stays_up(endless_engine: TextEngine) -> None:
    with _server(endless_engine, request_timeout_s=0.3) as srv:
        r = _chat(srv.url, "go on", max_tokens=4000, temperature=1.0)
        assert r.status_code == 504, r.text
        assert "did not finish" in r.json()["error"]["message"]
        assert _chat(srv.url, "short", max_tokens=2).status_code == 200


def test_shutdown_finishes_in_flight_requests(endless_engine: TextEngine) -> None:
    srv = _server(endless_engine).__enter__()
    result: dict[str, httpx.Response] = {}
    t = threading.Thread(target=lambda: result.setdefault("r", _chat(srv.url, "finish me", max_tokens=300)))
    t.start()
    backends: Backends = srv.server.config.app.state.backends  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while not (backends._text and backends._text.in_flight) and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.stop()
    t.join(30)
    assert result["r"].status_code == 200
    assert result["r"].json()["usage"]["completion_tokens"] == 300  # finished, not cut off by the shutdown
    with pytest.raises(httpx.ConnectError):
        _chat(srv.url, "too late")


def test_a_missing_image_checkpoint_is_a_503_for_images_only(tiny_engine: TextEngine, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    settings = load_settings(gan_checkpoint=bad)
    app = create_app(settings, backends=Backends(settings, text_engine=tiny_engine))
    with LiveServer(app) as srv:
        r = httpx.post(f"{srv.url}/v1/images/generations", json={"prompt": "a seven", "n": 2}, timeout=30)
        assert r.status_code == 503, r.text
        assert "corrupt.pt" in r.json()["error"]["message"]
        assert _chat(srv.url, "text still works").status_code == 200
        health = httpx.get(f"{srv.url}/healthz").json()
        assert health["text"] == "ready" and "corrupt.pt" in health["images"]
