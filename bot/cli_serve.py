"""`taskwright serve`: the generation service (text + images over HTTP) on this machine."""

from __future__ import annotations

import logging

import click

from bot.settings import Settings, load_settings


def _settings() -> Settings:
    obj = click.get_current_context().obj
    if isinstance(obj, dict) and isinstance(obj.get("settings"), Settings):
        return obj["settings"]
    return load_settings()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for all).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
def serve(host: str, port: int) -> None:
    """Serve the text model and the GAN: OpenAI-compatible /v1/chat/completions and /v1/images/generations.

    Models come from TASKWRIGHT_TEXT_MODEL and TASKWRIGHT_GAN_CHECKPOINT; TASKWRIGHT_DEVICE picks the
    device (auto = cuda > mps > cpu). Point the bot at it with TASKWRIGHT_GENERATION_URL=http://HOST:PORT
    and the planner with TASKWRIGHT_LLM=openai OPENAI_BASE_URL=http://HOST:PORT/v1.
    """
    from generation.server import serve as run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    try:
        run(settings, host=host, port=port)
    except (OSError, ValueError) as exc:  # port in use, bad host
        raise click.ClickException(str(exc)) from exc
