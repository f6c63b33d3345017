"""The text generator: a transformers causal LM loaded once per process behind a batching queue."""

from generation.text.batcher import QueueFull, TextBatcher, TextEvent, TextRequest
from generation.text.engine import PromptTooLong, SamplingParams, TextEngine, load_text_engine

__all__ = [
    "PromptTooLong",
    "QueueFull",
    "SamplingParams",
    "TextBatcher",
    "TextEngine",
    "TextEvent",
    "TextRequest",
    "load_text_engine",
]
