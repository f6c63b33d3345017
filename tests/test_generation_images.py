"""Images through the service (shipped MNIST checkpoint, real HTTP) and prompt -> class resolution."""

from __future__ import annotations

import base64
import concurrent.futures
import io
from typing import Any, Iterator

import httpx
import pytest

from bot.settings import load_settings
from generation.gan.errors import UnknownLabel
from generation.labels import LabelResolver, parse_draw_request
from generation.runtime import Backends
from generation.server import create_app
from tests.generation_tiny import LiveServer

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def images_url(embedder: Any) -> Iterator[str]:
    settings = load_settings(batch_max=8, batch_wait_ms=100, queue_max=32)
    app = create_app(settings, backends=Backends(settings, embedder=embedder), preload=False)
    with LiveServer(app) as srv:
        yield srv.url


def _draw(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/images/generations", json=body, timeout=60)


def _png_size(b64: str) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(b64))).size  # type: ignore[no-any-return]


def test_a_prompt_draws_n_images_of_its_class(images_url: str) -> None:
    r = _draw(images_url, prompt="a handwritten seven", n=4, seed=3)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "7" and len(body["data"]) == 4 and body["created"] > 0
    assert all(_png_size(d["b64_json"]) == (28, 28) for d in body["data"])


def test_grid_label_and_seed(images_url: str) -> None:
    a = _draw(images_url, label="七", n=8, seed=11, grid=True).json()
    b = _draw(images_url, label="7", n=8, seed=11, grid=True).json()
    c = _draw(images_url, label="7", n=8, seed=12, grid=True).json()
    assert a["label"] == b["label"] == "7" and len(a["data"]) == 1
    w, h = _png_size(a["data"][0]["b64_json"])
    assert w > 28 * 2 and h >= 28 * 2
    assert a["data"] == b["data"]  # the same seed draws the same images
    assert a["data"] != c["data"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"prompt": "a seven", "n": 0}, 400, "n must be between 1 and 64 (got 0)"),
        ({"prompt": "a seven", "n": 10000}, 400, "(got 10000)"),
        ({"prompt": "a seven", "n": "lots"}, 422, "n"),
        ({"prompt": "  "}, 400, "give a prompt"),
        ({}, 400, "give a prompt"),
        ({"prompt": "a seven", "response_format": "url"}, 400, "b64_json"),
        ({"prompt": "a seven", "seed": -1}, 422, "seed"),
        ({"prompt": ["a seven"]}, 422, "prompt"),
        ({"prompt": "a giraffe"}, 422, "This model can draw: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"),
        ({"label": "cat"}, 422, "can draw: 0, 1, 2"),
    ],
)
def test_bad_image_requests_say_what_is_wrong(images_url: str, body: dict[str, Any], status: int,
                                              needle: str) -> None:  # fmt: skip
    r = _draw(images_url, **body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_concurrent_image_requests_share_forward_passes(images_url: str) -> None:
    def batches() -> float:
        for line in httpx.get(f"{images_url}/metrics").text.splitlines():
            if line.startswith('taskwright_batch_size_count{kind="image"}'):
                return float(line.split()[-1])
        return 0.0

    before = batches()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda d: _draw(images_url, label=str(d), n=3), range(6)))
    assert [r.json()["label"] for r in replies] == [str(d) for d in range(6)]
    assert batches() - before < 6  # six requests, fewer forward passes


@pytest.mark.parametrize(
    ("prompt", "digit"),
    [("a handwritten seven", 7), ("七", 7), ("柒", 7), ("7", 7), ("sevens", 7), ("Seven", 7),
     ("the digit three", 3), ("一", 1), ("玖", 9), ("some zeros", 0)],
)  # fmt: skip
def test_digit_words_in_english_and_chinese(prompt: str, digit: int) -> None:
    assert LabelResolver(DIGITS).resolve(prompt) == digit


def test_unknown_or_ambiguous_prompts_list_the_classes() -> None:
    with pytest.raises(UnknownLabel, match="can draw: 0, 1") as info:
        LabelResolver(DIGITS).resolve("a cat")
    assert info.value.classes == DIGITS
    with pytest.raises(UnknownLabel, match="more than one digit"):
        LabelResolver(DIGITS).resolve("a three and a seven")


def test_other_class_sets_match_by_embedding_similarity(embedder: Any) -> None:
    resolver = LabelResolver(["cat", "dog", "car", "tree"], embedder=embedder)
    assert resolver.resolve("cats") == 0
    assert resolver.resolve("a small kitten") == 0
    assert resolver.resolve("a fluffy puppy") == 1
    assert resolver.resolve("an oak in autumn") == 3
    with pytest.raises(UnknownLabel, match="can draw: cat, dog, car, tree"):
        resolver.resolve("quantum chromodynamics lecture notes")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("draw 8 sevens", (8, "sevens")), ("画三个七", (3, "七")), ("draw a seven", (None, "seven")),
     ("please draw eight images of a cat", (8, "a cat")), ("画8张猫", (8, "猫")), ("给我画十二个五", (12, "五")),
     ("draw 7", (None, "7")), ("a handwritten seven", (None, "a handwritten seven")), ("画七", (None, "七"))],
)  # fmt: skip
def test_parse_draw_request(text: str, expected: tuple[int | None, str]) -> None:
    assert parse_draw_request(text) == expected
