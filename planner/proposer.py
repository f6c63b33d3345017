"""Builds the LLM proposer (a PlanChain over the configured chat model) from settings."""

from __future__ import annotations

import logging
import time

from bot.settings import Settings
from planner.chain import PlanChain
from planner.errors import ModelUnavailableError, TaskwrightError
from planner.llm import build_chat_model

log = logging.getLogger(__name__)


def build_proposer(settings: Settings) -> PlanChain:
    """Load the planning model once (local file or remote server) and wrap it in the validating chain."""
    started = time.perf_counter()
    try:
        model = build_chat_model(settings)
        load = getattr(model, "load", None)
        if callable(load):
            load()
    except TaskwrightError:
        raise
    except Exception as e:  # a broken file, a missing runtime: say so and let playbooks take over
        log.exception("planning model failed to load")
        raise ModelUnavailableError(f"the planning model could not be loaded: {e}") from e
    log.info("planning model ready in %.1f s (%s)", time.perf_counter() - started, settings.llm)
    return PlanChain(model)
