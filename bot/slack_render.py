"""Translation between Slack's formats and ours: incoming text and event payloads to ChatRequest /
ActionRequest, and platform-neutral replies to Block Kit (slack_sdk.models.blocks). No I/O here.

Every piece of user or model text is escaped (`&`, `<`, `>`) before our own mentions are added, so model
output can never become `<!channel>` or a mention. Slack checks per-block limits but not 50 blocks per
message nor message length, so long plans paginate by a fixed number of tasks per page (a page keeps its
tasks when a button click re-renders it), long text splits into several messages, very long text
becomes a file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.types import (
    ACTIONS,
    ActionRequest,
    ButtonsReply,
    ChatRequest,
    DirectMessage,
    FileRef,
    FileReply,
    PlanReply,
    Reply,
    TaskListReply,
    TeamReply,
    TextReply,
)
from planner.types import Member, Plan, Task

log = logging.getLogger(__name__)

MAX_BLOCKS = 50  # per message (Slack rejects more; slack_sdk does not check)
SECTION_CHARS = 3000  # per section text (slack_sdk checks)
HEADER_CHARS = 150
TASKS_PER_PAGE = 20  # 2 blocks per task + at most 5 of header, context, note, footer: 45 <= 50
TEXT_CHUNK_CHARS = 2900  # one section of a long text
SECTIONS_PER_TEXT_MESSAGE = 4
TEXT_FILE_CHARS = 12_000  # longer text goes up as a file
FALLBACK_CHARS = 3000  # the notification `text` of a message
ROWS_PER_LIST_PAGE = 40  # task list / team rows per message

ACTION_IDS = {name: f"task_{name}" for name in ACTIONS}  # task_accept, …, task_generate, task_retry
_SLACK_ID = re.compile(r"[UW][A-Z0-9]{2,}")
PERSON_SUBTYPES = (None, "file_share", "thread_broadcast")
_EVENT_TEXT = ("user", "text", "channel", "ts", "thread_ts", "channel_type", "type")  # must be strings  # other subtypes: edits, deletions, joins, bots
_CHANNEL_PLAN = re.compile(r"^(?:plan|计划|规划)\s*[:：]", re.IGNORECASE)  # explicit syntax in a channel
_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,})&gt;")
_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


@dataclass(frozen=True)
class SlackMessage:
    """One chat.postMessage / chat.update payload: fallback text and blocks as dicts."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True)
class SlackFile:
    """Text too long for messages, uploaded as a file with a short comment."""

    filename: str
    content: str
    title: str
    comment: str


@dataclass(frozen=True)
class SlackUpload:
    """A file reply (an image grid, a chart) for files_upload_v2: bytes or a path on disk."""

    filename: str
    title: str
    data: bytes | None
    path: str | None
    alt_text: str
    comment: str


SlackOutput = SlackMessage | SlackFile | SlackUpload


def escape(text: str) -> str:
    """Escape Slack's control characters so text shows literally and cannot mention anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_text(text: str) -> str:
    """Escape service text but keep user mentions (`<@U..>`); `<!channel>`, links and the rest stay literal.

    For text the service wrote (help, errors, notes, reasons, list titles), never for model output.
    """
    return _ESCAPED_MENTION.sub(r"<@\1>", escape(text))


def unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<`, `>` in incoming text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean_text(text: str, *, bot_user_id: str | None = None) -> str:
    """Incoming message text for the service: bot mention stripped, links and channels as plain text, unescaped.

    Other users' mentions stay as `<@U..>` so the service can see who was named.
    """
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: m.group(2) or "@" + m.group(1), text)
    return unescape(text).strip().lstrip(":,").strip()


# ---- Slack payloads -> our requests -------------------------------------------------------------------


def is_person_message(event: dict[str, Any], *, bot_user_id: str | None) -> bool:
    """True for a person's new message; False for bots (ours included), edits, deletions and other subtypes."""
    if event.get("bot_id") or event.get("subtype") not in PERSON_SUBTYPES:
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id


def to_chat_request(
    event: dict[str, Any], *, event_id: str | None, bot_user_id: str | None,
    thread_has_table: Callable[[str, str], bool] | None = None,
) -> ChatRequest | None:
    """The ChatRequest for an app_mention or message event, or None when the bot should stay quiet.

    Channel messages count only when they start with "plan:" or are in a thread that has a table (follow-up
    questions about a shared file), and do not mention the bot (the app_mention event carries those); DMs
    always count. ValueError when a field has a type Slack never sends.
    """
    if not is_person_message(event, bot_user_id=bot_user_id):
        return None
    files = event.get("files") or []
    bad = [k for k in _EVENT_TEXT if event.get(k) is not None and not isinstance(event[k], str)]
    if not event.get("channel"):
        bad.append("channel")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        bad.append("files")
    if bad:
        raise ValueError(f"the event's {', '.join(bad)} is missing or of the wrong type")
    raw = event.get("text") or ""
    text = clean_text(raw, bot_user_id=bot_user_id)
    is_dm = event.get("channel_type") == "im"
    mentions_bot = bool(bot_user_id) and f"<@{bot_user_id}" in raw  # the app_mention event carries it
    if event.get("type") == "message" and not is_dm and (mentions_bot or not _CHANNEL_PLAN.match(text)):
        thread = event.get("thread_ts")
        follow_up = bool(thread) and not mentions_bot and not files and thread_has_table is not None
        if not (follow_up and thread_has_table(event["channel"], thread)):  # type: ignore[misc]
            return None
    channel, ts, thread_ts = event["channel"], event.get("ts"), event.get("thread_ts")
    files_in = tuple(_file_ref(f) for f in files)
    return ChatRequest(event["user"], text, channel, ts, thread_ts, is_dm, files_in, event_id)


def _file_ref(f: dict[str, Any]) -> FileRef:
    def text(*keys: str) -> str:
        return next((f[k] for k in keys if isinstance(f.get(k), str) and f[k]), "")

    size = f.get("size")
    return FileRef(text("id"), text("name", "id"), text("url_private_download", "url_private"),
                   size if isinstance(size, int) and size >= 0 else 0,
                   text("mimetype"))


def ref_id(ref: Any) -> str:
    """The id in a payload reference: Slack sends `"user": "U.."` in some payloads, `{"id": "U.."}` in others."""
    value = ref.get("id") if isinstance(ref, dict) else ref
    return value if isinstance(value, str) else ""


def to_action_request(body: dict[str, Any], action: dict[str, Any]) -> ActionRequest:
    """The ActionRequest for a task button click; ValueError when the button is not one of ours."""
    name = str(action.get("action_id", "")).removeprefix("task_")
    value = str(action.get("value", ""))
    if name not in ACTIONS or not (value.isascii() and value.isdigit()):
        raise ValueError(f"button {action.get('action_id')!r} with value {value!r} does not name a task")
    box, user = body.get("container") or {}, ref_id(body.get("user"))
    if not user or not isinstance(box, dict):
        raise ValueError("the click names no user or container")
    ids = {k: v for k, v in box.items() if isinstance(v, str)}
    return ActionRequest(user, name, int(value), ids.get("channel_id") or ref_id(body.get("channel")),  # type: ignore[arg-type]
                         ids.get("message_ts"), ids.get("thread_ts"))


# ---- our replies -> Block Kit -------------------------------------------------------------------------


def plain(text: str) -> str:
    """Text for a plain_text field: angle brackets become look-alikes (‹ ›), so nothing there reads as markup."""
    return text.replace("<", "‹").replace(">", "›")


def clip(text: str, limit: int) -> str:
    """Cut text to at most limit characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def mention(member: Member | None) -> str:
    """`<@U..>` for a member with a real-looking Slack id, else the escaped name."""
    if member is None:
        return "_unassigned_"
    if _SLACK_ID.fullmatch(member.slack_id):
        return f"<@{member.slack_id}>"
    return escape(member.name)


def user_ref(user_id: str) -> str:
    """`<@U..>` for a Slack user id, else the escaped text (console users, CLI names)."""
    return f"<@{user_id}>" if _SLACK_ID.fullmatch(user_id) else escape(user_id)


def render(reply: Reply) -> list[SlackOutput]:
    """Render one reply as the messages (or file) that carry it; DirectMessage renders its body."""
    if isinstance(reply, DirectMessage):
        return render(reply.body)
    if isinstance(reply, TextReply):
        return render_text(reply.text, kind=reply.kind, generated=reply.generated)
    if isinstance(reply, FileReply):
        return [render_file(reply)]
    if isinstance(reply, ButtonsReply):
        return [render_buttons(reply)]
    if isinstance(reply, PlanReply):
        return [render_plan_page(reply.plan, page, note=reply.note) for page in range(plan_pages(reply.plan))]
    if isinstance(reply, TaskListReply):
        return render_task_list(reply)
    if isinstance(reply, TeamReply):
        return render_team(reply)
    raise TypeError(f"no Slack rendering for {type(reply).__name__}")


# ---- text ------------------------------------------------------------------------------------------


def render_file(reply: FileReply) -> SlackUpload:
    """A file reply as an upload; titles and comments are service text (escaped, mentions kept)."""
    return SlackUpload(
        filename=reply.filename,
        title=plain(clip(reply.title or reply.filename, 250)),
        data=reply.data,
        path=str(reply.path) if reply.path is not None and reply.data is None else None,
        alt_text=plain(clip(reply.alt_text, 1000)),
        comment=escape_text(clip(reply.comment, SECTION_CHARS)),
    )


def render_buttons(reply: ButtonsReply) -> SlackMessage:
    """A service message with buttons (Retry, …): one section and one actions block."""
    prefix = ":warning: " if reply.kind == "error" else ""
    text = prefix + escape_text(clip(reply.text, SECTION_CHARS - len(prefix)))
    buttons = [
        ButtonElement(text=plain(clip(b.label, 75)), action_id=ACTION_IDS[b.action], value=str(b.value),
                      style="primary" if b.primary else None)
        for b in reply.buttons[:25]
    ]
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=text))]
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    return SlackMessage(text=clip(text, FALLBACK_CHARS), blocks=_dicts(blocks))


def render_text(text: str, *, kind: str = "info", generated: bool = False) -> list[SlackOutput]:
    """Plain text as sections of at most TEXT_CHUNK_CHARS, several messages if needed, a file past a limit.

    generated=True (model output): everything is escaped, so no mention, `<!channel>` or link can come of it.
    """
    body = text.strip() or "(empty)"
    esc = escape if generated else escape_text
    prefix = ":warning: " if kind == "error" else ""
    if len(body) > TEXT_FILE_CHARS:
        comment = (
            prefix
            + esc(clip(body.split("\n", 1)[0], 200))
            + f"\n_(full text, {len(body):,} characters, attached)_"
        )
        return [SlackFile(filename="reply.txt", content=body, title="Full reply", comment=comment)]
    chunks = split_text(esc(body), TEXT_CHUNK_CHARS)
    messages: list[SlackOutput] = []
    for start in range(0, len(chunks), SECTIONS_PER_TEXT_MESSAGE):
        part = chunks[start : start + SECTIONS_PER_TEXT_MESSAGE]
        if start == 0:
            part = [prefix + part[0], *part[1:]]
        blocks = [SectionBlock(text=MarkdownTextObject(text=c)) for c in part]
        messages.append(SlackMessage(text=clip("\n".join(part), FALLBACK_CHARS), blocks=_dicts(blocks)))
    return messages


def split_text(text: str, limit: int) -> list[str]:
    """Split text into chunks of at most limit characters, at a line break or space where possible.

    Never splits inside an escape entity such as `&amp;`.
    """
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", limit // 2, limit)
        if cut < 0:
            cut = rest.rfind(" ", limit // 2, limit)
        if cut < 0:
            cut = limit
            amp = rest.rfind("&", cut - 5, cut)
            if amp >= 0 and ";" not in rest[amp:cut]:
                cut = amp
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)
    return chunks


# ---- plans -----------------------------------------------------------------------------------------


def plan_pages(plan: Plan) -> int:
    """How many messages the plan takes (at least one, even with no tasks)."""
    return max(1, -(-len(plan.tasks) // TASKS_PER_PAGE))


def page_of_task(plan: Plan, task_id: int) -> int:
    """The page (0-based) that shows task_id; 0 when the task is not in the plan."""
    for i, task in enumerate(plan.tasks):
        if task.id == task_id:
            return i // TASKS_PER_PAGE
    return 0


def render_plan_page(plan: Plan, page: int, *, note: str = "") -> SlackMessage:
    """One page of a plan: header, request and source, the page's tasks with buttons, a note if any."""
    pages = plan_pages(plan)
    suffix = f" ({page + 1}/{pages})" if pages > 1 else ""
    title = plan.title or plan.request or "Plan"
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=plain(clip(title, HEADER_CHARS - len(suffix))) + suffix))
    ]
    if page == 0:
        blocks.append(_plan_context(plan))
        if plan.warnings:
            warn = "\n".join(f":warning: {escape(w)}" for w in plan.warnings)
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(warn, SECTION_CHARS))]))
    if note:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(escape_text(note), SECTION_CHARS))))
    tasks = plan.tasks[page * TASKS_PER_PAGE : (page + 1) * TASKS_PER_PAGE]
    if not plan.tasks:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="_This plan has no subtasks._")))
    for task in tasks:
        blocks.extend(_task_blocks(task))
    if pages > 1:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"Page {page + 1} of {pages} · plan #{plan.id}")])
        )
    assert len(blocks) <= MAX_BLOCKS, len(blocks)
    n = len(plan.tasks)
    fallback = f"Plan #{plan.id}{suffix}: {escape(clip(title, 200))} ({n} subtask{'s' if n != 1 else ''})"
    return SlackMessage(text=fallback, blocks=_dicts(blocks))


def _plan_context(plan: Plan) -> ContextBlock:
    parts = [f"Requested by {user_ref(plan.requester)}"]
    parts.append(f"made by `{escape(plan.source)}`")
    if plan.deadline:
        parts.append(f"deadline {plan.deadline.isoformat()}")
    parts.append(f"plan #{plan.id}")
    request = "> " + escape_text(clip(" ".join(plan.request.split()), 500))
    return ContextBlock(
        elements=[MarkdownTextObject(text=clip(request + "\n" + " · ".join(parts), SECTION_CHARS))]
    )


def task_line(task: Task) -> str:
    """The mrkdwn line for a task: key, title, assignee, estimate, dependencies, due, status."""
    bits = [mention(task.assignee), f"{task.estimate_hours:g} h"]
    if task.depends_on:
        bits.append("after " + ", ".join(f"#{escape(k)}" for k in task.depends_on))
    if task.due:
        bits.append(f"due {task.due.isoformat()}")
    bits.append(_STATUS_LABEL.get(task.status, escape(task.status)))
    return f"*{escape(task.key)}. {escape(clip(task.title, 300))}* — " + " · ".join(bits)


_STATUS_LABEL = {
    "proposed": "_proposed_",
    "accepted": ":white_check_mark: accepted",
    "done": ":heavy_check_mark: done",
}


def _task_blocks(task: Task) -> list[Block]:
    line = task_line(task)
    why = f"\n_{escape_text(clip(task.why, 600))}_" if task.why else ""
    desc = f"\n{escape(clip(task.description, 800))}" if task.description else ""
    text = clip(line + desc + why, SECTION_CHARS)
    section = SectionBlock(block_id=f"task-{task.id}", text=MarkdownTextObject(text=text))
    buttons = task_buttons(task)
    if not buttons:
        done = ContextBlock(
            block_id=f"task-{task.id}-state", elements=[MarkdownTextObject(text="Done — no actions left.")]
        )
        return [section, done]
    return [section, ActionsBlock(block_id=f"task-{task.id}-actions", elements=buttons)]


def task_buttons(task: Task) -> list[ButtonElement]:
    """Buttons that apply to the task's status: proposed -> Accept (if assigned), Reassign, Done."""
    names: list[str] = []
    if task.status == "proposed" and task.assignee is not None:
        names.append("accept")
    if task.status != "done":
        names += ["reassign", "done"]
        if task.kind in ("text", "image"):
            names.append("generate")
    labels = {"accept": "Accept", "reassign": "Reassign" if task.assignee else "Find someone", "done": "Done",
              "generate": "Generate draft"}
    styles = {"accept": "primary", "done": None, "reassign": None, "generate": None}
    return [
        ButtonElement(text=labels[n], action_id=ACTION_IDS[n], value=str(task.id), style=styles[n])
        for n in names
    ]


# ---- lists -----------------------------------------------------------------------------------------


def render_task_list(reply: TaskListReply) -> list[SlackOutput]:
    """A task list: a title, then one line per task (no buttons: the plan message carries them)."""
    rows = [task_line(t) + f" · plan #{t.plan_id}" for t in reply.tasks]
    return _paged_rows(reply.title, rows, empty=reply.empty_text)


def render_team(reply: TeamReply) -> list[SlackOutput]:
    """The team: one line per member with open hours against capacity and top skills."""
    rows = []
    for m in reply.members:
        used = reply.open_hours.get(m.slack_id, 0.0)
        skills = escape(clip(m.skills_text(), 300)) or "no skills listed"
        rows.append(f"*{escape(m.name)}* {mention(m)} — {used:g} / {m.capacity_hours:g} h used · {skills}")
    return _paged_rows("Team", rows, empty="No team yet: import one with `taskwright team import FILE`.")


def _paged_rows(title: str, rows: Sequence[str], *, empty: str) -> list[SlackOutput]:
    """A bold title (service text: may mention users) then one section per row, ROWS_PER_LIST_PAGE a message."""
    heading = escape_text(clip(title, 500))
    if not rows:
        text = f"*{heading}*\n{escape_text(empty)}"
        return [SlackMessage(text=clip(text, FALLBACK_CHARS), blocks=_dicts([_mrkdwn(text)]))]
    pages = [rows[i : i + ROWS_PER_LIST_PAGE] for i in range(0, len(rows), ROWS_PER_LIST_PAGE)]
    out: list[SlackOutput] = []
    for n, page in enumerate(pages):
        suffix = f" ({n + 1}/{len(pages)})" if len(pages) > 1 else ""
        blocks = [_mrkdwn(f"*{heading}*{suffix}"), *(_mrkdwn(r) for r in page)]
        fallback = clip(f"{heading}{suffix}: " + "; ".join(page), FALLBACK_CHARS)
        out.append(SlackMessage(text=fallback, blocks=_dicts(blocks)))
    return out


def _mrkdwn(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_CHARS)))


def _dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]
