"""Versioned schema changes for the Taskwright database (sqlite-utils Migrations).

Add new migrations at the end; never edit one that has been released.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("taskwright")


@migrations()
def m001_initial(db: Database) -> None:
    db["members"].create(
        {
            "id": int,
            "slack_id": str,
            "name": str,
            "email": str,
            "skills": str,  # JSON object: skill -> level 1..5
            "capacity_hours": float,
            "timezone": str,
            "active": int,
            "created_at": str,
        },
        pk="id",
        not_null={"slack_id", "name"},
    )
    db["members"].create_index(["slack_id"], unique=True)
    db["plans"].create(
        {
            "id": int,
            "request": str,
            "title": str,
            "requester": str,
            "source": str,
            "deadline": str,
            "warnings": str,  # JSON list
            "created_at": str,
            "channel": str,
            "thread_ts": str,
            "message_ts": str,
        },
        pk="id",
    )
    db["tasks"].create(
        {
            "id": int,
            "plan_id": int,
            "key": str,
            "title": str,
            "description": str,
            "skills": str,  # JSON list
            "estimate_hours": float,
            "depends_on": str,  # JSON list of keys
            "kind": str,
            "assignee": str,  # members.slack_id or NULL
            "why": str,
            "start": str,
            "due": str,
            "status": str,
            "updated_at": str,
        },
        pk="id",
        foreign_keys=[("plan_id", "plans", "id")],
    )
    db["tasks"].create_index(["plan_id"])
    db["tasks"].create_index(["assignee", "status"])
    db["task_events"].create(
        {
            "id": int,
            "task_id": int,
            "plan_id": int,
            "actor": str,
            "action": str,
            "before": str,
            "after": str,
            "why": str,
            "at": str,
        },
        pk="id",
    )
    db["task_events"].create_index(["task_id"])
    db["slack_events"].create({"event_id": str, "received_at": str}, pk="event_id")


@migrations()
def m002_generation_and_files(db: Database) -> None:
    """Generation requests (kept while the service is down, so Retry can finish them; drafts for tasks),
    the table a thread talks about, and scheduled posts already made."""
    db["generations"].create(
        {
            "id": int,
            "kind": str,  # image | text
            "prompt": str,
            "n": int,
            "seed": int,
            "requester": str,
            "channel": str,
            "thread_ts": str,
            "task_id": int,  # a task's "Generate draft", else NULL
            "status": str,  # pending | done | failed
            "error": str,
            "result_path": str,  # the PNG under files_dir
            "result_text": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db["generations"].create_index(["status"])
    db["generations"].create_index(["task_id"])
    db["thread_tables"].create(
        {"channel": str, "thread_ts": str, "path": str, "name": str, "created_at": str},
        pk=("channel", "thread_ts"),
    )
    db["scheduled_posts"].create({"key": str, "posted_at": str}, pk="key")
