"""Constrained decoding with llguidance: a response_format becomes a grammar, each constrained row of a batch a
matcher that masks the logits before sampling and is fed the token sampled.

`grammar_for` turns an OpenAI response_format into a llguidance grammar (the planner's compact JSON one:
no pretty-printing, so a CPU spends no tokens on indentation). `Grammars` holds what one engine needs: the
tokenizer converted once, grammars compiled once per distinct schema (later requests deep-copy the compiled
matcher), and `mask` to apply several rows' token masks to a batch of logits.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any

log = logging.getLogger(__name__)

# Distinct grammars kept compiled (the planner sends one or two schemas; clients rarely send many).
CACHE_MAX = 64


class GrammarError(ValueError):
    """A response_format that cannot be turned into a grammar; the message says why (a 400 for the caller)."""


def grammar_for(response_format: dict[str, Any] | None) -> str | None:
    """The llguidance grammar for an OpenAI response_format, or None for none/`text`.

    json_schema → its schema as compact JSON; json_object → any JSON object, compact. Raises GrammarError
    when a json_schema has no schema object.
    """
    from planner.llm import compact_json_grammar

    if not response_format or response_format.get("type") in (None, "text"):
        return None
    if response_format.get("type") == "json_object":
        return compact_json_grammar({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}})
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise GrammarError("response_format json_schema needs json_schema.schema, a JSON schema object")
        grammar = compact_json_grammar(response_format)
        if grammar is None:  # pragma: no cover - compact_json_grammar accepts every dict schema
            raise GrammarError("response_format json_schema could not be turned into a grammar")
        return grammar
    raise GrammarError(f"response_format type {response_format.get('type')!r} is not supported")


class Grammars:
    """Per-engine llguidance state: the converted tokenizer, compiled grammars, a mask executor."""

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: frozenset[int]) -> None:
        self._tokenizer = tokenizer
        self.vocab_size = vocab_size
        self._eos = sorted(eos_ids)
        self._llt: Any = None
        self._executor: Any = None
        self._compiled: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _ll_tokenizer(self) -> Any:
        if self._llt is None:
            import llguidance
            import llguidance.hf

            try:
                self._llt = llguidance.hf.from_tokenizer(
                    self._tokenizer, n_vocab=self.vocab_size, eos_token=self._eos or None
                )
            except Exception as exc:  # a slow (python) tokenizer, an unknown tokenizer type
                raise GrammarError(f"this model's tokenizer cannot be used for constrained decoding: {exc}") from exc
            self._executor = llguidance.LLExecutor()
        return self._llt

    def matcher(self, grammar: str) -> Any:
        """A fresh matcher for grammar (compiled on first use, then copied); raises GrammarError."""
        from llguidance import LLMatcher

        with self._lock:
            llt = self._ll_tokenizer()
            template = self._compiled.get(grammar)
            if template is not None:
                self._compiled.move_to_end(grammar)
        if template is None:
            template = LLMatcher(llt, grammar, log_level=0)  # drops the GIL while it compiles
            if template.is_error():
                # The first line says what is wrong; the rest lists our grammar wrapper around the schema.
                reason = re.sub(r"^at \d+\(\d+\): ", "", template.get_error().strip().splitlines()[0])
                log.info("grammar refused: %s", reason)
                raise GrammarError(f"the response_format schema cannot be enforced: {reason}")
            for warning in template.get_grammar_warnings():
                log.info("grammar warning: %s", warning)
            with self._lock:
                self._compiled[grammar] = template
                while len(self._compiled) > CACHE_MAX:
                    self._compiled.popitem(last=False)
        return template.deep_copy()

    def mask(self, logits: Any, rows: list[tuple[int, Any]]) -> None:
        """Set logits[i] to -inf for every token matcher m disallows next, for each (i, m) in rows (in place)."""
        import llguidance.torch as lt
        import torch

        bitmask = lt.allocate_token_bitmask(len(rows), self.vocab_size)
        lt.fill_next_token_bitmask_par(self._executor, [(m, k) for k, (_, m) in enumerate(rows)], bitmask)
        # Unpacked here rather than with llguidance.torch.apply_token_bitmask_inplace, which is a torch.compile
        # kernel: its first call compiled for 13 s on this CPU (and needs a C compiler on the server).
        dev = logits.device
        bits = bitmask.to(dev, non_blocking=True)
        shifts = torch.arange(32, device=dev, dtype=torch.int32)
        allowed = ((bits.unsqueeze(-1) >> shifts) & 1).bool().flatten(1)
        width = logits.shape[-1]
        if allowed.shape[1] < width:
            allowed = torch.cat([allowed, allowed.new_zeros((len(rows), width - allowed.shape[1]))], dim=1)
        allowed = allowed[:, :width]
        index = torch.tensor([i for i, _ in rows], device=dev)
        logits.index_copy_(0, index, logits.index_select(0, index).masked_fill(~allowed, float("-inf")))
