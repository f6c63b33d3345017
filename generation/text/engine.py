"""A causal LM and its tokenizer, loaded once: prompt encoding (chat template), sampling and decoding.

The step loop lives in the batcher; this module holds what one step needs, so the loop stays readable.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generation.text.grammar import Grammars
from planner.errors import ModelUnavailableError

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

# A prompt over this many tokens (or the model's context, if smaller) is refused with 413.
PROMPT_MAX_TOKENS = 8192
_GRAMMARS_LOCK = threading.Lock()
# Tokens are rarely longer than this many characters: a longer prompt is refused before tokenizing it.
CHARS_PER_TOKEN_MAX = 6


class PromptTooLong(ValueError):
    """The prompt does not fit the model's context; the message gives the limit and the size."""


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling: temperature 0 is greedy; stop strings end the reply (not included)."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    # A llguidance grammar the reply must match (from a json_schema/json_object response_format), or None.
    grammar: str | None = None


@dataclass
class TextEngine:
    """A loaded model: `encode` turns chat messages into ids, `sample` picks next tokens for a batch."""

    model: Any
    tokenizer: Any
    device: str
    name: str
    max_context: int
    eos_ids: frozenset[int] = field(default_factory=frozenset)
    pad_id: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The forward() keyword for the KV cache: `cache` in transformers 5.x, `past_key_values` before.
    cache_arg: str = "past_key_values"
    # llguidance state for constrained decoding, made on first use (not copied by dataclasses.replace).
    _grammars: Grammars | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, device: str, name: str) -> TextEngine:
        tokenizer.padding_side = "left"
        eos: set[int] = set()
        for source in (getattr(model, "generation_config", None), model.config, tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                eos.add(value)
            elif isinstance(value, (list, tuple)):
                eos.update(int(v) for v in value)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = min(eos) if eos else 0
        ctx = int(getattr(model.config, "max_position_embeddings", 0) or PROMPT_MAX_TOKENS)
        import inspect

        params = inspect.signature(model.forward).parameters
        cache_arg = "cache" if "cache" in params else "past_key_values"
        return cls(model, tokenizer, device, name, min(ctx, 32768), frozenset(eos), int(pad), cache_arg=cache_arg)

    @property
    def grammars(self) -> Grammars:
        """The engine's llguidance state (tokenizer converted once, grammars compiled once each)."""
        with _GRAMMARS_LOCK:
            if self._grammars is None:
                vocab = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
                self._grammars = Grammars(self.tokenizer, vocab, self.eos_ids)
            return self._grammars

    @property
    def prompt_limit(self) -> int:
        return min(PROMPT_MAX_TOKENS, self.max_context)

    def check_size(self, messages: list[dict[str, str]], max_tokens: int) -> None:
        """Refuse an oversized prompt by its length in characters, before any tokenizing."""
        chars = sum(len(m.get("content", "")) for m in messages)
        if chars > self.prompt_limit * CHARS_PER_TOKEN_MAX:
            raise PromptTooLong(
                f"the prompt is {chars:,} characters; this model takes at most about {self.prompt_limit:,} "
                f"tokens ({self.prompt_limit * CHARS_PER_TOKEN_MAX:,} characters). Shorten it."
            )
        if max_tokens > self.max_context:
            raise PromptTooLong(f"max_tokens {max_tokens} is over the model's context of {self.max_context}")

    def encode(self, messages: list[dict[str, str]], params: SamplingParams) -> list[int]:
        """Token ids for the chat (template applied, generation prompt added)."""
        self.check_size(messages, params.max_tokens)
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:  # a base model without a template: plain role-tagged lines
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        ids = list(tok(text, add_special_tokens=False)["input_ids"])
        if len(ids) > self.prompt_limit or len(ids) + params.max_tokens > self.max_context:
            raise PromptTooLong(
                f"the prompt is {len(ids):,} tokens; with max_tokens {params.max_tokens} it must fit "
                f"{min(self.prompt_limit, self.max_context - params.max_tokens):,} tokens. Shorten it."
            )
        return ids

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


def sample_next(logits: Any, temperature: Any, top_p: Any, generator: Any = None) -> Any:
    """Next token per row: greedy where temperature is 0, else temperature + nucleus (top-p) sampling."""
    import torch

    logits = logits.float()
    greedy = logits.argmax(dim=-1)
    hot = temperature > 0
    if not bool(hot.any()):
        return greedy
    scaled = logits / temperature.clamp(min=1e-5).unsqueeze(-1)
    probs = torch.softmax(scaled, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    cum = sorted_p.cumsum(dim=-1)
    # Keep the smallest set whose mass reaches top_p (the first token always stays).
    drop = (cum - sorted_p) >= top_p.unsqueeze(-1)
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    picked = torch.multinomial(sorted_p, 1, generator=generator).squeeze(-1)
    sampled = order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)
    return torch.where(hot, sampled, greedy)


def resolve_text_model(settings: Settings) -> tuple[Path, Path | None, str]:
    """(model path, safetensors cache folder or None, display name) for settings.text_model.

    A catalog name is fetched once (planner/models.py); a folder is used as it is; a .gguf file is
    de-quantised once into `<models_dir>/<stem>.hf`, the same cache the planner's transformers engine uses.
    """
    from planner.models import REGISTRY, ensure_model

    name = settings.text_model
    path = Path(name).expanduser()
    if name not in REGISTRY and path.is_dir():
        return path, None, path.name
    label = name if name in REGISTRY else path.stem
    gguf = ensure_model(name, settings.models_dir)
    return gguf, settings.models_dir / f"{label}.hf", label


def load_text_engine(settings: Settings, *, n_threads: int | None = None) -> TextEngine:
    """Load settings.text_model once; raises ModelUnavailableError with what is wrong."""
    from planner.llm import load_causal_lm

    path, saved, label = resolve_text_model(settings)
    try:
        model, tok, device = load_causal_lm(
            path, saved, device=settings.device, n_threads=n_threads or settings.llm_threads
        )
    except ModelUnavailableError:
        raise
    except Exception as exc:  # a corrupt file, an unsupported architecture
        raise ModelUnavailableError(f"the text model {path} could not be loaded: {exc}") from exc
    return TextEngine.from_loaded(model, tok, device, label)
