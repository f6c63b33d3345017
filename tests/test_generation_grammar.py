"""Constrained decoding in the generation service (llguidance), on the tiny random model over real HTTP.

The tiny model writes random bytes: left alone it never writes JSON, let alone JSON that fits a schema. So
a reply that parses and validates against the schema shows the grammar was enforced while generating.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.settings import load_settings
from generation.runtime import Backends
from generation.server import create_app
from generation.text.engine import TextEngine
from generation.text.grammar import GrammarError, grammar_for
from tests.generation_tiny import LiveServer, build_tiny_model


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory: pytest.TempPathFactory) -> TextEngine:
    from planner.llm import load_causal_lm

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    model, tok, device = load_causal_lm(path, None, device="cpu", n_threads=1)
    return TextEngine.from_loaded(model, tok, device, "tiny")


def _server(engine: TextEngine, **overrides: Any) -> LiveServer:
    settings = load_settings(**({"batch_max": 8, "batch_wait_ms": 20, "queue_max": 32} | overrides))
    return LiveServer(create_app(settings, backends=Backends(settings, text_engine=engine), preload=False))


@pytest.fixture(scope="module")
def live(tiny_engine: TextEngine) -> Iterator[LiveServer]:
    with _server(tiny_engine) as srv:
        yield srv


def _chat(url: str, content: str = "Draft a reply", **body: Any) -> httpx.Response:
    payload = {"messages": [{"role": "user", "content": content}], "max_tokens": 300, "temperature": 0} | body
    return httpx.post(f"{url}/v1/chat/completions", json=payload, timeout=60)


def _schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}


def check(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """A hand validator for the JSON-schema subset these tests use (jsonschema is not installed here)."""
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "number": (int, float), "integer": int}
    if kind:
        assert isinstance(value, types[kind]), f"{where}: {value!r} is not {kind}"
        assert kind in ("boolean",) or not isinstance(value, bool), f"{where}: {value!r} is a boolean, not {kind}"
    if kind == "object":
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            assert name in value, f"{where}: required {name!r} missing from {value}"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(props), f"{where}: extra keys {set(value) - set(props)}"
        for name, sub in props.items():
            if name in value:
                check(value[name], sub, f"{where}.{name}")
    if kind == "array":
        assert schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 10**9), f"{where}: {len(value)} items"
        for i, item in enumerate(value):
            check(item, schema.get("items", {}), f"{where}[{i}]")
    if kind == "string":
        assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10**9), f"{where}: {value!r}"
    if kind in ("integer", "number"):
        assert schema.get("minimum", -(10**30)) <= value <= schema.get("maximum", 10**30), f"{where}: {value!r}"


def test_the_hand_validator_refuses_what_it_should() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["a"],
              "properties": {"a": {"type": "array", "items": {"enum": ["x"]}, "maxItems": 1}}}  # fmt: skip
    check({"a": ["x"]}, schema)
    for bad in ({}, {"a": ["y"]}, {"a": ["x", "x"]}, {"a": ["x"], "b": 1}, {"a": "x"}):
        with pytest.raises(AssertionError):
            check(bad, schema)


SCHEMAS = {
    "enums": {
        "type": "object", "additionalProperties": False, "required": ["kind", "priority"],
        "properties": {"kind": {"enum": ["text", "image", "data"]}, "priority": {"type": "string",
                       "enum": ["low", "high", "紧急"]}, "flag": {"type": "boolean"}},
    },
    "arrays": {
        "type": "object", "additionalProperties": False, "required": ["tags", "scores"],
        "properties": {"tags": {"type": "array", "minItems": 2, "maxItems": 3,
                                "items": {"type": "string", "minLength": 1, "maxLength": 5}},
                       "scores": {"type": "array", "minItems": 1, "maxItems": 4,
                                  "items": {"type": "integer", "minimum": 0, "maximum": 99}}},
    },
    "nested": {
        "type": "object", "additionalProperties": False, "required": ["title", "subtasks"],
        "properties": {
            "title": {"type": "string", "maxLength": 12},
            "subtasks": {"type": "array", "minItems": 2, "maxItems": 2, "items": {
                "type": "object", "additionalProperties": False, "required": ["name", "estimate_hours", "owner"],
                "properties": {"name": {"type": "string", "maxLength": 8},
                               "estimate_hours": {"type": "number", "minimum": 0, "maximum": 40},
                               "owner": {"type": "object", "additionalProperties": False, "required": ["id"],
                                         "properties": {"id": {"type": "string", "maxLength": 4}}}}}},
        },
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@pytest.mark.parametrize(("temperature", "prompt"), [(0.0, "Draft a reply"), (1.0, "Write an announcement"),
                                                     (1.5, "画三个七")])  # fmt: skip
def test_json_schema_replies_validate(live: LiveServer, name: str, temperature: float, prompt: str) -> None:
    schema = SCHEMAS[name]
    r = _chat(live.url, prompt, response_format=_schema_format(schema), temperature=temperature)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice  # the grammar completed, well inside max_tokens
    content = choice["message"]["content"]
    check(json.loads(content), schema)
    assert "\n" not in content  # compact JSON: no tokens spent on indentation


def test_without_a_format_the_tiny_model_does_not_write_json(live: LiveServer) -> None:
    """The control for the tests above: the same model unconstrained writes no schema-valid JSON."""
    r = _chat(live.url, "Draft a reply", max_tokens=60)
    assert r.status_code == 200
    content = r.json()["choices"][0]["message"]["content"]
    with pytest.raises((ValueError, AssertionError)):
        check(json.loads(content), SCHEMAS["enums"])


def test_json_object_parses(live: LiveServer) -> None:
    for temperature in (0.0, 1.0):
        r = _chat(live.url, "hi", response_format={"type": "json_object"}, temperature=temperature, max_tokens=400)
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        assert isinstance(json.loads(choice["message"]["content"]), dict)


def test_streamed_constrained_reply_validates(live: LiveServer) -> None:
    schema = SCHEMAS["nested"]
    payload = {"messages": [{"role": "user", "content": "plan it"}], "max_tokens": 300, "temperature": 1.0,
               "stream": True, "response_format": _schema_format(schema)}  # fmt: skip
    deltas, finish = [], None
    with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=payload, timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choice = json.loads(line[len("data: ") :])["choices"][0]
                deltas.append(choice["delta"].get("content", ""))
                finish = choice["finish_reason"] or finish
    assert finish == "stop"
    assert sum(1 for d in deltas if d) > 3  # streamed in pieces, not in one lump at the end
    check(json.loads("".join(deltas)), schema)


def test_max_tokens_cuts_a_constrained_reply(live: LiveServer) -> None:
    r = _chat(live.url, response_format=_schema_format(SCHEMAS["nested"]), max_tokens=5)
    choice = r.json()["choices"][0]
    assert r.status_code == 200 and choice["finish_reason"] == "length"
    assert choice["message"]["content"].startswith('{"') and r.json()["usage"]["completion_tokens"] == 5


def test_a_stop_string_still_ends_a_constrained_reply(live: LiveServer) -> None:
    r = _chat(live.url, response_format=_schema_format(SCHEMAS["enums"]), stop=['"priority"'])
    choice = r.json()["choices"][0]
    assert r.status_code == 200 and choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith('{"kind": "') and '"priority"' not in choice["message"]["content"]


def test_a_constrained_and_a_free_request_in_one_batch(tiny_engine: TextEngine) -> None:
    schema = SCHEMAS["arrays"]
    free = {"messages": [{"role": "user", "content": "Draft a reply to the customer"}], "max_tokens": 24,
            "temperature": 0}  # fmt: skip
    constrained = {"messages": [{"role": "user", "content": "tags please"}], "max_tokens": 300, "temperature": 0,
                   "response_format": _schema_format(schema)}  # fmt: skip
    with _server(tiny_engine, batch_max=2, batch_wait_ms=2000) as srv:
        alone = httpx.post(f"{srv.url}/v1/chat/completions", json=free, timeout=60).json()  # waits 2 s for a pair
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(httpx.post, f"{srv.url}/v1/chat/completions", json=b, timeout=60)
                    for b in (free, constrained)]  # fmt: skip
            replies = [j.result().json() for j in jobs]
        metrics = httpx.get(f"{srv.url}/metrics").text
    # Two batches in all: the lone request, then the pair together.
    assert 'taskwright_batch_size_count{kind="text"} 2.0' in metrics
    assert 'taskwright_batch_size_sum{kind="text"} 3.0' in metrics
    free_reply, constrained_reply = (r["choices"][0] for r in replies)
    # The free row is untouched by its neighbour's mask: the same greedy reply as alone.
    assert free_reply["message"]["content"] == alone["choices"][0]["message"]["content"]
    assert free_reply["finish_reason"] == alone["choices"][0]["finish_reason"]
    assert constrained_reply["finish_reason"] == "stop"
    check(json.loads(constrained_reply["message"]["content"]), schema)


@pytest.mark.parametrize(
    ("fmt", "reason"),
    [
        (_schema_format({"type": "nosuch"}), "nosuch"),
        (_schema_format({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}), "missing"),
        ({"type": "json_schema", "json_schema": {"name": "no-schema"}}, "json_schema.schema"),
        ({"type": "json_schema"}, "json_schema.schema"),
    ],
)
def test_a_schema_that_cannot_be_enforced_is_a_400(live: LiveServer, fmt: dict[str, Any], reason: str) -> None:
    r = _chat(live.url, response_format=fmt)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "response_format" and reason in err["message"], err
    assert "\n" not in err["message"]
    assert _chat(live.url, max_tokens=2).status_code == 200  # the service is still up


def test_grammars_are_compiled_once_per_schema(tiny_engine: TextEngine) -> None:
    grammars = tiny_engine.grammars
    grammar = grammar_for(_schema_format({"type": "object", "properties": {"once": {"type": "boolean"}}}))
    assert grammar is not None
    first = grammars.matcher(grammar)
    size = len(grammars._compiled)
    second = grammars.matcher(grammar)
    assert len(grammars._compiled) == size and first is not second  # a fresh copy, from the cached compile
    brace = tiny_engine.tokenizer.encode("{", add_special_tokens=False)
    assert len(brace) == 1 and first.consume_token(brace[0])
    assert not first.consume_token(brace[0])  # "{{" is not JSON
    assert second.consume_token(brace[0])  # the copy's state is its own


def test_the_mask_matches_llguidances_own(tiny_engine: TextEngine) -> None:
    """Grammars.mask unpacks llguidance's bitmask itself (no torch.compile): it must agree with compute_logit_bias."""
    import torch

    grammars = tiny_engine.grammars
    grammar = grammar_for(_schema_format(SCHEMAS["enums"]))
    assert grammar is not None
    matcher = grammars.matcher(grammar)
    prefix = tiny_engine.tokenizer.encode('{"kind": "', add_special_tokens=False)
    assert matcher.consume_tokens(prefix)
    logits = torch.zeros((3, grammars.vocab_size))
    grammars.mask(logits, [(1, matcher)])
    bias = torch.frombuffer(bytearray(matcher.compute_logit_bias()), dtype=torch.uint8)[: grammars.vocab_size]
    allowed = torch.isfinite(logits[1])
    assert torch.equal(allowed, bias > 0)
    assert 0 < int(allowed.sum()) < 20  # only the starts of "text", "image", "data"
    assert torch.isfinite(logits[0]).all() and torch.isfinite(logits[2]).all()  # other rows untouched


def test_grammar_for_response_formats() -> None:
    assert grammar_for(None) is None and grammar_for({"type": "text"}) is None
    obj = grammar_for({"type": "json_object"})
    assert obj is not None and '"type": "object"' in obj
    with pytest.raises(GrammarError, match="json_schema.schema"):
        grammar_for({"type": "json_schema", "json_schema": {"schema": "not an object"}})


def test_constrained_decoding_on_a_second_engine(tmp_path: Path) -> None:
    """A second, differently seeded tiny model: the tokenizer conversion is per engine, not shared."""
    from planner.llm import load_causal_lm

    path = build_tiny_model(tmp_path / "other", seed=7)
    model, tok, device = load_causal_lm(path, None, device="cpu", n_threads=1)
    engine = TextEngine.from_loaded(model, tok, device, "other")
    with _server(engine) as srv:
        r = _chat(srv.url, response_format=_schema_format(SCHEMAS["enums"]), temperature=1.0)
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "stop"
    check(json.loads(r.json()["choices"][0]["message"]["content"]), SCHEMAS["enums"])
