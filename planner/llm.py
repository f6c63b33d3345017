"""The planner's LangChain chat model, built from Settings and loaded once per process.

Three backends: llama.cpp through xllamacpp (the CPU default; a JSON-schema `response_format` becomes a
grammar, so output is constrained while it is generated), transformers over a GGUF (the path a GPU server
takes; saved once as safetensors so later loads are fast), and any OpenAI-compatible server via ChatOpenAI.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from planner.errors import ModelUnavailableError
from planner.models import DEFAULT_MODEL, REGISTRY, ensure_model, fetch_command, is_present

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
_CACHE: dict[tuple[Any, ...], BaseChatModel] = {}
_CACHE_LOCK = threading.Lock()


def to_openai_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as OpenAI chat dicts (text content only)."""
    out = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise ValueError(f"unsupported message type {m.type!r} for a local chat model")
        out.append({"role": role, "content": m.text if hasattr(m, "text") else str(m.content)})
    return out


def _result(content: str, *, finish_reason: str, model_name: str, usage: dict[str, int]) -> ChatResult:
    msg = AIMessage(
        content=content,
        response_metadata={"finish_reason": finish_reason, "model_name": model_name},
        usage_metadata={
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
        },
    )
    return ChatResult(generations=[ChatGeneration(message=msg)])


class ChatLlamaCpp(BaseChatModel):
    """A chat model over an in-process llama.cpp server (xllamacpp); one generation at a time."""

    model_path: str
    model_name: str = "local"
    n_ctx: int = 4096
    n_threads: int = 2
    max_tokens: int = 1024
    temperature: float = 0.2
    timeout_s: float = 120.0

    _server: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "xllamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "n_threads": self.n_threads}

    def load(self) -> None:
        """Load the GGUF now (otherwise the first call does); raises ModelUnavailableError."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        if self._server is not None:
            return
        path = Path(self.model_path)
        if not path.is_file() or _magic(path) != b"GGUF":
            raise ModelUnavailableError(f"{path} is not a GGUF model file; run `taskwright models fetch`.")
        import xllamacpp  # type: ignore[import-untyped]

        p = xllamacpp.CommonParams()
        p.model.path = str(path)
        p.n_ctx = self.n_ctx
        p.cpuparams.n_threads = self.n_threads
        p.cpuparams_batch.n_threads = self.n_threads
        p.n_parallel = 1
        p.verbosity = -1  # llama.cpp logs every load and request to stderr otherwise
        p.warmup = False
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(p)
        except Exception as exc:  # the binding raises RuntimeError/ValueError with llama.cpp's message
            raise ModelUnavailableError(f"llama.cpp could not load {path}: {exc}") from exc
        log.info(
            "loaded %s with llama.cpp in %.1f s (%d threads)",
            path.name,
            time.perf_counter() - t0,
            self.n_threads,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body: dict[str, Any] = {
            "messages": to_openai_messages(messages),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "t_max_predict_ms": int(self.timeout_s * 1000),
        }
        if stop:
            body["stop"] = stop
        if kwargs.get("response_format"):
            grammar = compact_json_grammar(kwargs["response_format"])
            body["grammar" if grammar else "response_format"] = grammar or kwargs["response_format"]
        with self._lock:
            self._load_locked()
            reply = self._server.handle_chat_completions(body)
        if not isinstance(reply, dict) or "choices" not in reply:
            err = reply.get("error", reply) if isinstance(reply, dict) else reply
            raise RuntimeError(f"llama.cpp returned an error: {err}")
        choice = reply["choices"][0]
        return _result(
            choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            model_name=self.model_name,
            usage=reply.get("usage") or {},
        )


def compact_json_grammar(response_format: Any) -> str | None:
    """A llguidance grammar for a json_schema response_format that also forces compact JSON.

    What llama.cpp builds from response_format lets the model pretty-print: Qwen2.5-Coder-1.5B spent about a
    third of its tokens on newlines and indentation. `x-guidance` is only read inside a grammar.
    """
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        return None
    compact = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
    return "%llguidance {}\nstart: %json " + json.dumps({"x-guidance": compact, **schema})


def _magic(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(4)


def _json_prefix(response_format: Any) -> str:
    """The opening of the JSON the schema demands, forced into the reply (a cheap constraint)."""
    if not isinstance(response_format, dict):
        return ""
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    props = list((schema.get("properties") or {}).items())
    if not props:
        return "{" if response_format.get("type") in ("json_object", "json_schema") else ""
    name, prop = props[0]
    return '{"' + name + '": ' + ("[" if prop.get("type") == "array" else "")


def pick_device() -> str:
    """cuda > mps > cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class ChatTransformersLocal(BaseChatModel):
    """A chat model over transformers: loads a GGUF (dequantised) once, then a safetensors copy next time."""

    model_path: str
    saved_dir: str
    model_name: str = "local"
    device: str = "auto"
    n_threads: int = 2
    max_tokens: int = 1024
    temperature: float = 0.0
    timeout_s: float = 120.0

    _model: Any = PrivateAttr(default=None)
    _tok: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "transformers-local"

    def load(self) -> None:
        """Load the model now (otherwise the first call does); raises ModelUnavailableError."""
        with self._lock:
            if self._model is None:
                try:
                    self._load_locked()
                except ModelUnavailableError:
                    raise
                except Exception as exc:
                    raise ModelUnavailableError(
                        f"transformers could not load {self.model_path}: {exc}"
                    ) from exc

    def _load_locked(self) -> None:
        self._model, self._tok, _ = load_causal_lm(
            self.model_path, self.saved_dir, device=self.device, n_threads=self.n_threads
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import torch

        self.load()
        max_new = int(kwargs.get("max_tokens", self.max_tokens))
        temperature = float(kwargs.get("temperature", self.temperature))
        prefix = _json_prefix(kwargs.get("response_format"))
        with self._lock:
            text = self._tok.apply_chat_template(
                to_openai_messages(messages), tokenize=False, add_generation_prompt=True
            )
            enc = self._tok(text + prefix, return_tensors="pt").to(self._model.device)
            sampling = (
                {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            )
            with torch.inference_mode():
                out = self._model.generate(
                    **enc,
                    max_new_tokens=max_new,
                    max_time=self.timeout_s,
                    pad_token_id=self._tok.pad_token_id or self._tok.eos_token_id,
                    stop_strings=stop or None,
                    tokenizer=self._tok if stop else None,
                    **sampling,
                )
        new = out[0][enc["input_ids"].shape[1] :]
        content = prefix + self._tok.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= max_new else "stop"
        usage = {"prompt_tokens": int(enc["input_ids"].shape[1]), "completion_tokens": len(new)}
        return _result(content, finish_reason=finish, model_name=self.model_name, usage=usage)


def load_causal_lm(
    model_path: str | Path, saved_dir: str | Path | None, *, device: str = "auto", n_threads: int = 2
) -> tuple[Any, Any, str]:
    """(model, tokenizer, device) for a GGUF file or a transformers folder; shared with generation/text.

    A GGUF is de-quantised once and saved as safetensors in saved_dir, which later loads read instead.
    Raises ModelUnavailableError when there is nothing at model_path.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # GGUF de-quantising draws a bar per tensor on stderr
    device = pick_device() if device == "auto" else device
    if device == "cpu":
        torch.set_num_threads(n_threads)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    src = Path(model_path)
    saved = Path(saved_dir) if saved_dir else None
    t0 = time.perf_counter()
    if saved is not None and (saved / "config.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(saved, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(saved)
    elif src.is_dir():
        model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(src)
    elif src.is_file():
        model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        if saved is not None:
            _save_dequantised(model, tok, saved)
    else:
        raise ModelUnavailableError(f"No model at {src}; run `taskwright models fetch`.")
    log.info("loaded %s with transformers on %s in %.1f s", src.name, device, time.perf_counter() - t0)
    return model.to(device).eval(), tok, device


def _save_dequantised(model: Any, tok: Any, saved: Path) -> None:
    """Save a GGUF-loaded model as safetensors once (a 0.5B load falls from ~76 s to ~6 s next time)."""
    tmp = saved.with_name(saved.name + ".tmp")
    try:
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.replace(saved)
    except Exception as exc:  # noqa: BLE001 - a cache we cannot write only costs time next start
        log.warning("could not save %s as safetensors: %s", saved, exc)


def _build(settings: Settings, *, fetch: bool) -> BaseChatModel:
    if settings.llm == "openai":
        return _build_openai(settings)
    name = settings.llm_model or DEFAULT_MODEL
    if not fetch and name in REGISTRY and not is_present(REGISTRY[name], settings.models_dir):
        raise ModelUnavailableError(f"Model {name} is not fetched; run `{fetch_command(name)}`.")
    label = name if name in REGISTRY else Path(name).stem
    if settings.local_engine == "transformers" and Path(name).is_dir():  # a transformers model folder
        path = Path(name)
    else:
        path = ensure_model(name, settings.models_dir)
    if settings.local_engine == "transformers":
        return ChatTransformersLocal(
            model_path=str(path),
            saved_dir=str(settings.models_dir / f"{label}.hf"),
            model_name=label,
            n_threads=settings.llm_threads,
            timeout_s=settings.llm_timeout_s,
        )
    return ChatLlamaCpp(
        model_path=str(path),
        model_name=label,
        n_threads=settings.llm_threads,
        timeout_s=settings.llm_timeout_s,
    )


def _build_openai(settings: Settings) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    if not settings.openai_base_url and not settings.openai_api_key:
        raise ModelUnavailableError(
            "TASKWRIGHT_LLM=openai needs OPENAI_BASE_URL (any OpenAI-compatible server) or OPENAI_API_KEY."
        )
    return ChatOpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key or "not-needed",  # type: ignore[arg-type]
        model=settings.llm_model or "gpt-4o-mini",
        timeout=settings.llm_timeout_s,
        max_retries=1,
        temperature=0.2,
    )


def build_chat_model(settings: Settings, *, fetch: bool = True) -> BaseChatModel:
    """The planner's chat model for these settings, built once per process and shared.

    Local models are fetched (fetch=True) but loaded lazily on the first call; call `.load()` to warm up.
    """
    key = (
        settings.llm,
        settings.llm_model,
        settings.local_engine,
        settings.llm_threads,
        settings.llm_timeout_s,
        settings.openai_base_url,
        settings.openai_api_key,
        str(settings.models_dir),
    )
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(settings, fetch=fetch)
        return _CACHE[key]
