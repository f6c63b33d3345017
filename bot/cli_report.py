"""`taskwright report weekly`: the team's weekly report as Markdown, with its charts written to a folder."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import click

log = logging.getLogger(__name__)


@click.group()
def report() -> None:
    """Team reports built from the task database."""


@report.command("weekly")
@click.option("--today", help="Report on the week (Monday to Sunday) containing this YYYY-MM-DD day.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the chart PNGs (default: TASKWRIGHT_HOME/files/reports).")
@click.option("--post", is_flag=True, help="Also post it to Slack, in TASKWRIGHT_REPORT_CHANNEL.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON instead of Markdown.")
@click.pass_context
def weekly(ctx: click.Context, today: str | None, out: Path | None, post: bool, as_json: bool) -> None:
    """Per person done / in progress / overdue, workload against capacity, plans on track or late, burndown.

    Example: taskwright report weekly --today 2026-03-13 --out reports/
    """
    from bot.cli import _settings, _store
    from generation.reports.weekly import weekly_report

    day = _day(today)
    settings = _settings(ctx)
    if post and not settings.report_channel:
        raise click.ClickException(
            "--post needs a channel: set TASKWRIGHT_REPORT_CHANNEL (e.g. C0123456789).")
    folder = out or settings.files_dir / "reports"
    try:
        result = weekly_report(_store(ctx), today=day, out_dir=folder)
    except OSError as e:
        log.info("weekly report: cannot write charts to %s: %r", folder, e)
        raise click.ClickException(
            f"cannot write the charts to {folder} ({e}); pass --out with a writable folder.") from None
    if as_json:
        click.echo(json.dumps({**result.data, "charts": [str(p) for p in result.charts]}, indent=2))
    else:
        click.echo(result.markdown)
        for path in result.charts:
            click.echo(f"Chart: {path}")
    if post:
        _post(settings, result)
        click.echo(f"Posted to {settings.report_channel}.")


def _day(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like YYYY-MM-DD", param_hint="--today") from None
    if not 1900 <= day.year <= 9000:  # as `plan --today` (bot/cli.py); 9999-12-31's week ends past the calendar
        raise click.BadParameter(f"{value!r} is outside the years 1900-9000", param_hint="--today")
    return day


def _post(settings: Any, result: Any) -> None:
    """Post the report text, then each chart in its thread; a Slack failure is a clear error, not a trace."""
    from bot.slack import build_web_client
    from generation.reports.weekly import to_mrkdwn
    from planner.errors import TaskwrightError

    channel = settings.report_channel
    try:
        client = build_web_client(settings)
        resp = client.chat_postMessage(channel=channel, text=to_mrkdwn(result.markdown))
        for path in result.charts:
            client.files_upload_v2(channel=channel, thread_ts=resp.get("ts"), file=str(path), title=path.stem)
    except TaskwrightError as e:
        raise click.ClickException(str(e)) from None
    except Exception as e:  # slack_sdk's errors may not be imported here (only bot/slack*.py imports Slack)
        log.warning("posting the weekly report to %s failed: %r", channel, e)
        raise click.ClickException(f"Slack refused the report for channel {channel}: {e}") from None
