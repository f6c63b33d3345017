"""Settings, read once at the entry point and passed down (pydantic-settings; `.env` supported)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("taskwright", appauthor=False))


class Settings(BaseSettings):
    """Every setting the product reads. README's "Settings" table documents each one."""

    # env_prefix keeps field names from matching unrelated variables (HOME, DB, LLM); aliases are exact.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, populate_by_name=True, env_prefix="TASKWRIGHT_"
    )

    home: Path = Field(default_factory=_default_home, validation_alias="TASKWRIGHT_HOME")
    db: Path | None = Field(default=None, validation_alias="TASKWRIGHT_DB")

    slack_bot_token: str | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: str | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: str | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_api_url: str | None = Field(default=None, validation_alias="TASKWRIGHT_SLACK_API_URL")

    llm: Literal["local", "openai"] = Field(default="local", validation_alias="TASKWRIGHT_LLM")
    llm_model: str | None = Field(default=None, validation_alias="TASKWRIGHT_LLM_MODEL")
    local_engine: Literal["llamacpp", "transformers"] = Field(
        default="llamacpp", validation_alias="TASKWRIGHT_LOCAL_ENGINE"
    )
    llm_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, validation_alias="TASKWRIGHT_LLM_THREADS")
    llm_timeout_s: float = Field(default=120.0, validation_alias="TASKWRIGHT_LLM_TIMEOUT")
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "TASKWRIGHT_OPENAI_BASE_URL")
    )
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")

    assign_time_limit_s: float = Field(default=0.5, validation_alias="TASKWRIGHT_ASSIGN_TIME_LIMIT")

    # Generation (issue 3): unset URL = the same backends in-process.
    generation_url: str | None = Field(default=None, validation_alias="TASKWRIGHT_GENERATION_URL")
    generation_timeout_s: float = Field(default=60.0, validation_alias="TASKWRIGHT_GENERATION_TIMEOUT")
    # A catalog name (`taskwright models list`), a local model directory, or a .gguf file.
    text_model: str = Field(default="qwen2.5-coder-0.5b", validation_alias="TASKWRIGHT_TEXT_MODEL")
    # None = the checkpoint shipped in generation/gan/checkpoints/.
    gan_checkpoint: Path | None = Field(default=None, validation_alias="TASKWRIGHT_GAN_CHECKPOINT")
    batch_max: int = Field(default=8, ge=1, le=256, validation_alias="TASKWRIGHT_BATCH_MAX")
    batch_wait_ms: float = Field(default=20.0, ge=0, validation_alias="TASKWRIGHT_BATCH_WAIT_MS")
    queue_max: int = Field(default=32, ge=1, validation_alias="TASKWRIGHT_QUEUE_MAX")
    request_timeout_s: float = Field(default=120.0, gt=0, validation_alias="TASKWRIGHT_REQUEST_TIMEOUT")
    device: str = Field(default="auto", pattern=r"^(?:auto|cpu|cuda(?::\d+)?|mps)$",
                        validation_alias="TASKWRIGHT_DEVICE")  # auto | cpu | cuda | cuda:N | mps

    # Data summaries and reports (issue 4).
    max_file_mb: float = Field(default=200.0, gt=0, validation_alias="TASKWRIGHT_MAX_FILE_MB")
    report_channel: str | None = Field(default=None, validation_alias="TASKWRIGHT_REPORT_CHANNEL")
    # When the weekly report is posted: "<weekday> HH:MM" in local time, e.g. "fri 16:00"; empty = never.
    report_schedule: str = Field(default="fri 16:00", validation_alias="TASKWRIGHT_REPORT_SCHEDULE")

    @property
    def db_path(self) -> Path:
        return self.db or self.home / "taskwright.db"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def files_dir(self) -> Path:
        """Generated images, charts and reports."""
        return self.home / "files"

    @property
    def slack_socket_mode(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)


class SettingsError(ValueError):
    """A setting with a value it cannot have; the message is one line per bad setting, naming it."""


_HINTS = {"TASKWRIGHT_DEVICE": "use auto, cpu, cuda, cuda:N or mps"}


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`, with explicit overrides first.

    A bad value raises SettingsError ("TASKWRIGHT_QUEUE_MAX='0': Input should be greater than or equal to 1"),
    which the CLI prints as one line instead of pydantic's report.
    """
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        parts = []
        for err in e.errors():
            name = ".".join(str(x) for x in err.get("loc", ())) or "settings"
            hint = _HINTS.get(name, err.get("msg", "invalid"))
            parts.append(f"{name}={err.get('input')!r}: {hint}")
        message = "bad setting: " + "; ".join(parts)
        logging.getLogger(__name__).warning("%s", message)
        raise SettingsError(message) from None
