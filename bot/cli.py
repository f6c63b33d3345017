"""The one entry point: `taskwright`. Commands are thin: parse, build objects, call one method, print.

Heavy modules (torch, models, Slack) are imported inside commands so `--help` stays instant.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import click

from bot.settings import Settings, load_settings

log = logging.getLogger(__name__)


def _settings(ctx: click.Context) -> Settings:
    return ctx.ensure_object(dict).setdefault("settings", load_settings())


def _store(ctx: click.Context) -> Any:
    import sqlite3

    from bot.store import Store

    obj = ctx.ensure_object(dict)
    if "store" not in obj:
        path = _settings(ctx).db_path
        try:
            obj["store"] = Store(path)
        except (sqlite3.Error, OSError) as e:
            log.info("could not open the database %s: %r", path, e)
            _fail(f"cannot open the database {path} ({e}); point TASKWRIGHT_HOME (or TASKWRIGHT_DB) at a "
                  "writable folder (or a Taskwright SQLite file).")
    return obj["store"]


_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _check_user(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--user must look like a Slack user id; it is stored as the requester and mentioned in messages."""
    user = value.strip().upper()
    if not _SLACK_USER.match(user):
        raise click.BadParameter(f"{value!r} is not a Slack user id like U0DEMOANA")
    return user


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


class _Cli(click.Group):
    """The group; a bad setting (SettingsError from load_settings) ends any command with one line."""

    def invoke(self, ctx: click.Context) -> Any:
        from bot.settings import SettingsError

        try:
            return super().invoke(ctx)
        except SettingsError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Cli)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug) on stderr.")
@click.version_option(package_name="taskwright")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Taskwright: turn a team's requests into planned, assigned work, in Slack or the console.

    Example: taskwright plan "Prepare the Q3 sales report for the board meeting next Friday"
    """
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.ensure_object(dict)


@cli.command()
@click.option("--user", default="U0DEMOELI", show_default=True, callback=_check_user,
              help="Who you are (a Slack user id).")
@click.option("--today", help="Pretend today is YYYY-MM-DD (for dates like 'next Friday').")
@click.pass_context
def chat(ctx: click.Context, user: str, today: str | None) -> None:
    """Chat with the assistant in this terminal (same commands as in Slack).

    Example: taskwright chat --user U0DEMOANA
    """
    from bot.console import Console
    from bot.service import build_assistant

    assistant = build_assistant(_settings(ctx), store=_store(ctx))
    Console(assistant, user=user, today=_check_date(today)).run(sys.stdin)


@cli.command()
@click.option("--user", default="U0DEMOELI", show_default=True, callback=_check_user,
              help="Who you are in the console.")
@click.pass_context
def run(ctx: click.Context, user: str) -> None:
    """Start the bot: Slack Socket Mode when SLACK_BOT_TOKEN and SLACK_APP_TOKEN are set, else the console.

    Example: taskwright run
    """
    settings = _settings(ctx)
    if settings.slack_socket_mode:
        click.echo("SLACK_BOT_TOKEN and SLACK_APP_TOKEN are set: starting Slack Socket Mode.", err=True)
        ctx.invoke(slack, http=False, port=3000)
    else:
        click.echo("No Slack tokens set: starting the console chat (see README to connect Slack).", err=True)
        ctx.invoke(chat, user=user, today=None)


@cli.command()
@click.argument("message")
@click.option("--json", "as_json", is_flag=True, help="Print the structured replies as JSON.")
@click.option("--user", default="U0DEMOELI", show_default=True, callback=_check_user,
              help="Who is asking (a Slack user id).")
@click.option("--today", help="Pretend today is YYYY-MM-DD.")
@click.pass_context
def ask(ctx: click.Context, message: str, as_json: bool, user: str, today: str | None) -> None:
    """Send one message through the same router as Slack and print the reply.

    Example: taskwright ask "my tasks" --user U0DEMOANA
    """
    from bot.console import render_text
    from bot.service import build_assistant
    from bot.types import ChatRequest

    assistant = build_assistant(_settings(ctx), store=_store(ctx))
    replies = assistant.handle(ChatRequest(user, message, today=_check_date(today), is_dm=True))
    if as_json:
        click.echo(json.dumps([_reply_json(r) for r in replies], ensure_ascii=False, indent=2))
    else:
        names = {m.slack_id: m.name for m in assistant.store.members()}
        click.echo("\n\n".join(render_text(r, names=names) for r in replies))


@cli.command()
@click.argument("request")
@click.option("--json", "as_json", is_flag=True, help="Print {\"plan\": {...}, \"warnings\": [...]} as JSON.")
@click.option("--user", default="U0DEMOELI", show_default=True, callback=_check_user,
              help="Who is asking (a Slack user id).")
@click.option("--today", help="Pretend today is YYYY-MM-DD (dates like 'next Friday' resolve against it).")
@click.pass_context
def plan(ctx: click.Context, request: str, as_json: bool, user: str, today: str | None) -> None:
    """Plan a request, assign it to the team, store it and print it.

    Example: taskwright plan --json "Prepare the Q3 sales report for the board meeting next Friday"
    """
    from bot.console import render_text
    from bot.service import build_assistant
    from bot.types import ChatRequest, PlanReply, TextReply

    assistant = build_assistant(_settings(ctx), store=_store(ctx))
    replies = assistant.handle(ChatRequest(user, f"plan: {request}", today=_check_date(today), is_dm=True))
    plans = [r for r in replies if isinstance(r, PlanReply)]
    if not plans:
        errors = [r.text for r in replies if isinstance(r, TextReply)]
        _fail("; ".join(errors) or "no plan was made")
    p = plans[0].plan
    if as_json:
        click.echo(json.dumps({"plan": p.to_json(), "warnings": list(p.warnings)}, ensure_ascii=False, indent=2))
    else:
        names = {m.slack_id: m.name for m in assistant.store.members()}
        click.echo(render_text(plans[0], names=names))


@cli.command()
@click.option("--http", is_flag=True, help="Serve the Events API over HTTP instead of Socket Mode.")
@click.option("--port", default=3000, show_default=True, help="Port for --http.")
@click.pass_context
def slack(ctx: click.Context, http: bool, port: int) -> None:
    """Run the Slack app (Socket Mode with SLACK_APP_TOKEN, or --http at POST /slack/events).

    Example: SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... taskwright slack --http --port 3000
    """
    settings = _settings(ctx)
    if not settings.slack_bot_token:
        _fail("SLACK_BOT_TOKEN is not set: create a Slack app (see README, 'Connect to Slack') and export it.")
    if http and not settings.slack_signing_secret:
        _fail("HTTP mode needs SLACK_SIGNING_SECRET (Basic Information → App Credentials).")
    if not http and not settings.slack_app_token:
        _fail("Socket Mode needs SLACK_APP_TOKEN (xapp-...); or use --http with SLACK_SIGNING_SECRET.")
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    from bot.service import build_assistant
    from bot.slack import run_http, run_socket_mode

    assistant = build_assistant(settings, store=_store(ctx))
    if http:
        run_http(assistant, settings, port=port)
    else:
        run_socket_mode(assistant, settings)


def _check_date(value: str | None) -> str | None:
    import datetime as dt

    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"--today {value!r} is not a date like 2026-12-03")
        return None
    if not 1900 <= day.year <= 9000:  # dates are computed years ahead of it; keep clear of the calendar's ends
        _fail(f"--today {value!r} is outside the years 1900-9000")
    return day.isoformat()


def _reply_json(reply: Any) -> dict[str, Any]:
    from bot.types import DirectMessage, PlanReply, TaskListReply, TeamReply, TextReply

    if isinstance(reply, PlanReply):
        return {"type": "plan", "plan": reply.plan.to_json(), "warnings": list(reply.plan.warnings)}
    if isinstance(reply, TextReply):
        return {"type": "text", "kind": reply.kind, "text": reply.text}
    if isinstance(reply, TaskListReply):
        return {"type": "tasks", "title": reply.title, "tasks": [
            {"id": t.id, "title": t.title, "status": t.status, "due": t.due.isoformat() if t.due else None,
             "assignee": t.assignee.slack_id if t.assignee else None} for t in reply.tasks]}
    if isinstance(reply, TeamReply):
        return {"type": "team", "members": [
            {"name": m.name, "slack_id": m.slack_id, "skills": m.skills, "capacity_hours": m.capacity_hours,
             "open_hours": reply.open_hours.get(m.slack_id, 0.0)} for m in reply.members]}
    if isinstance(reply, DirectMessage):
        return {"type": "dm", "user": reply.user, "body": _reply_json(reply.body)}
    return {"type": "unknown", "repr": repr(reply)}


from bot.cli_team import team  # noqa: E402

cli.add_command(team)
try:  # the models group is optional until its module lands
    from bot.cli_models import models  # noqa: E402

    cli.add_command(models)
except ImportError:  # pragma: no cover
    pass

from bot.cli_serve import serve  # noqa: E402

cli.add_command(serve)

from bot.cli_report import report  # noqa: E402

cli.add_command(report)

from bot.cli_summarize import summarize  # noqa: E402

cli.add_command(summarize)

from bot.cli_gan import gan  # noqa: E402

cli.add_command(gan)
