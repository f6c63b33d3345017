"""`taskwright team ...`: import, list, add, remove members, or load the demo team."""

from __future__ import annotations

import click

from planner.errors import RosterError


def _store(ctx: click.Context):  # type: ignore[no-untyped-def]
    from bot.cli import _store as store

    return store(ctx)


@click.group()
def team() -> None:
    """Manage the team roster (skills, capacity) used for assignment."""


@team.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--replace", is_flag=True, help="Deactivate members not in the file.")
@click.pass_context
def import_(ctx: click.Context, file: str, replace: bool) -> None:
    """Import a CSV (name,slack_id,email,skills,capacity_hours,timezone) or YAML roster.

    Example: taskwright team import team.csv   (skills like python:4;sql:3, levels 1-5)
    """
    from bot.roster import load_roster

    try:
        members = load_roster(file)
    except RosterError as e:
        raise click.ClickException(str(e)) from None
    _store(ctx).save_members(members, replace=replace)
    click.echo(f"Imported {len(members)} member(s) from {file}.")


@team.command("demo")
@click.option("--if-empty", is_flag=True, help="Only when the database has no team yet.")
@click.pass_context
def demo(ctx: click.Context, if_empty: bool) -> None:
    """Load the bundled 10-person demo team."""
    from bot.roster import demo_roster_path, load_roster

    store = _store(ctx)
    if if_empty and store.has_team():
        click.echo(f"Team already present ({len(store.members())} members); demo team not loaded.")
        return
    members = load_roster(demo_roster_path())
    store.save_members(members)
    click.echo(f"Loaded the demo team ({len(members)} members) into {store.path}.")


@team.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List members with skills and hours used / capacity."""
    store = _store(ctx)
    members, hours = store.members(), store.open_hours()
    if not members:
        click.echo("The team is empty. Run: taskwright team import FILE (or taskwright team demo)")
        return
    for m in members:
        click.echo(f"{m.slack_id:<14} {m.name:<20} {hours.get(m.slack_id, 0):>5g}/{m.capacity_hours:<4g} h  "
                   f"{m.skills_text()}")


@team.command("add")
@click.argument("slack_id")
@click.argument("name")
@click.option("--skills", required=True, help="Like python:4;sql:3 (levels 1-5).")
@click.option("--capacity", "capacity_hours", default=40.0, show_default=True, help="Hours per week.")
@click.option("--email", default="")
@click.option("--timezone", default="UTC", show_default=True)
@click.pass_context
def add(ctx: click.Context, slack_id: str, name: str, skills: str, capacity_hours: float, email: str,
        timezone: str) -> None:
    """Add or update one member.

    Example: taskwright team add U012ABC "Ana Lima" --skills "sql:4;excel:3" --capacity 30
    """
    from bot.roster import parse_member

    try:
        member = parse_member({"name": name, "slack_id": slack_id, "skills": skills,
                               "capacity_hours": capacity_hours, "email": email, "timezone": timezone})
    except RosterError as e:
        raise click.ClickException(str(e)) from None
    _store(ctx).save_members([member])
    click.echo(f"Saved {member.name} ({member.slack_id}).")


@team.command("remove")
@click.argument("slack_id")
@click.pass_context
def remove(ctx: click.Context, slack_id: str) -> None:
    """Remove a member; their open tasks become unassigned (history is kept)."""
    store = _store(ctx)
    if store.member(slack_id) is None:
        raise click.ClickException(f"No active member {slack_id}; see `taskwright team list`.")
    freed = store.remove_member(slack_id)
    click.echo(f"Removed {slack_id}; {len(freed)} open task(s) are now unassigned.")
