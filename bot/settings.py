"""Settings, read once at the entry point and passed down (pydantic-settings; `.env` supported)."""

from __future__ import annotations

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

    @property
    def db_path(self) -> Path:
        return self.db or self.home / "taskwright.db"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def slack_socket_mode(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and `.env`, with explicit overrides first."""
    return Settings(**overrides)  # type: ignore[arg-type]
