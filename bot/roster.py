"""Team roster files: CSV (`name,slack_id,email,skills,capacity_hours,timezone`) or YAML, validated whole.

A file is checked completely before anything is written, so a bad row never leaves a half-imported team.
Skills look like `python:4;sql:3` with levels 1-5.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

from planner.errors import RosterError
from planner.types import Member

log = logging.getLogger(__name__)

COLUMNS = ("name", "slack_id", "email", "skills", "capacity_hours", "timezone")
REQUIRED = ("name", "slack_id", "skills", "capacity_hours")
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def load_roster(path: str | Path) -> list[Member]:
    """Read and validate a roster file; raise RosterError naming every bad row and column."""
    path = Path(path)
    if not path.exists():
        raise RosterError(f"{path}: no such file")
    text = _read_text(path)
    if not text.strip():
        raise RosterError(f"{path}: the file is empty; the header must be {','.join(COLUMNS)}")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise RosterError(f"{path}: not valid YAML ({e})") from None
        rows = data.get("members", data) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise RosterError(f"{path}: expected a list of members (or a 'members:' list)")
        return parse_rows(rows, source=str(path))
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        hint = next((f" (the file seems to be separated by {sep!r}; save it comma-separated)"
                     for sep in (";", "\t") if len(header) == 1 and sep in header[0]), "")
        raise RosterError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must be {','.join(COLUMNS)}{hint}"
        )
    reader.fieldnames = header
    rows = [_csv_row(r) for r in reader]
    return parse_rows(rows, source=str(path), first_line=2)


def _read_text(path: Path) -> str:
    """The file as text: UTF-8 (with or without BOM), or UTF-16 with a BOM (Excel's "Unicode text")."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RosterError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RosterError(f"{path}: not a UTF-8 text file (byte {e.start}); save the roster as CSV UTF-8 "
                          "or YAML") from None


def _csv_row(row: dict[str | None, Any]) -> dict[str, Any]:
    """A CSV row keyed by column; values beyond the header (DictReader's None key) kept as `_extra`."""
    extra = [v for v in row.pop(None, None) or [] if str(v).strip()]
    out: dict[str, Any] = {k: v for k, v in row.items() if k is not None}
    if extra:
        out["_extra"] = extra
    return out


def parse_rows(rows: Iterable[Any], *, source: str = "roster", first_line: int = 1) -> list[Member]:
    members: list[Member] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=first_line):
        try:
            m = parse_member(row)
        except RosterError as e:
            errors.append(f"row {n}: {e}")
            continue
        if m.slack_id in seen:
            errors.append(f"row {n}: duplicate slack_id {m.slack_id} (first on row {seen[m.slack_id]})")
            continue
        seen[m.slack_id] = n
        members.append(m)
    if errors:
        shown = "; ".join(errors[:10]) + (f"; and {len(errors) - 10} more" if len(errors) > 10 else "")
        raise RosterError(f"{source}: nothing imported, {len(errors)} bad row(s): {shown}")
    if not members:
        raise RosterError(f"{source}: no members in the file")
    return members


def parse_member(row: Any) -> Member:
    if not isinstance(row, dict):
        raise RosterError("expected a mapping of column -> value")
    if row.get("_extra"):
        raise RosterError(f"more values than columns ({row['_extra']!r} left over); quote a value that "
                          "contains a comma")
    for column in COLUMNS:
        if _CONTROL.search(str(row.get(column) or "")):
            raise RosterError(f"{column} contains control characters (NUL, escape codes …)")
    name = str(row.get("name") or "").strip()
    slack_id = str(row.get("slack_id") or "").strip()
    if not name:
        raise RosterError("name is empty")
    if not _SLACK_ID.match(slack_id):
        raise RosterError(f"slack_id {slack_id!r} is not a Slack user id like U012ABCDEF")
    skills = parse_skills(row.get("skills"))
    try:
        capacity = float(str(row.get("capacity_hours", "")).strip())
    except ValueError:
        raise RosterError(f"capacity_hours {row.get('capacity_hours')!r} is not a number") from None
    if not 0 <= capacity <= 168:
        raise RosterError(f"capacity_hours {capacity:g} is outside 0-168")
    timezone = str(row.get("timezone") or "UTC").strip() or "UTC"
    zones = _time_zones()
    if zones and timezone not in zones:
        raise RosterError(f"timezone {timezone!r} is not a time zone name like Europe/Berlin or UTC")
    return Member(
        name=name,
        slack_id=slack_id,
        skills=skills,
        capacity_hours=capacity,
        email=str(row.get("email") or "").strip(),
        timezone=timezone,
    )


@functools.cache
def _time_zones() -> frozenset[str]:
    """IANA zone names known here (empty when this machine has no zone database: then any name passes)."""
    import zoneinfo

    zones = zoneinfo.available_timezones()
    return frozenset(zones | {"UTC"}) if zones else frozenset()


def parse_skills(value: Any) -> dict[str, int]:
    """`python:4;sql:3` (or a YAML mapping) -> {"python": 4, "sql": 3}; levels must be 1-5."""
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = []
        for part in str(value or "").split(";"):
            if not part.strip():
                continue
            skill, sep, level = part.rpartition(":")
            if not sep:
                raise RosterError(f"skill {part.strip()!r} has no level; write it as skill:level (1-5)")
            items.append((skill, level))
    skills: dict[str, int] = {}
    for skill, level in items:
        skill = " ".join(skill.strip().lower().split())
        if not skill:
            raise RosterError("a skill name is empty")
        try:
            lvl = int(str(level).strip())
        except ValueError:
            raise RosterError(f"skill {skill!r} level {level!r} is not a whole number 1-5") from None
        if not 1 <= lvl <= 5:
            raise RosterError(f"skill {skill!r} level {lvl} is outside 1-5")
        if skill in skills:
            raise RosterError(f"skill {skill!r} is listed twice (levels {skills[skill]} and {lvl})")
        skills[skill] = lvl
    if not skills:
        raise RosterError("skills is empty; write them like python:4;sql:3")
    return skills


def demo_roster_path() -> Path:
    return Path(__file__).parent / "data" / "demo_team.csv"
