"""Getting a shared file onto disk under a size cap: from Slack (bot token) or from a local path (console).

The declared size is checked before a byte is fetched; the download streams into a file and stops the moment
it passes the cap; an HTML answer (Slack's login page when the app lacks the files:read scope) is refused
with a message naming the scope. A refused or broken download leaves no partial file behind.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Protocol

from bot.types import FileRef
from planner.errors import TaskwrightError

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
MISSING_SCOPE = (
    "Slack sent me its login page instead of “{name}”: the app is missing the `files:read` scope. "
    "Add files:read under OAuth & Permissions → Bot Token Scopes, reinstall the app, and share the file again."
)


class FileFetchError(TaskwrightError):
    """A file that could not be fetched; the message says why and what to do."""


class FileFetcher(Protocol):
    """Puts a shared file on disk (under dest_dir) and returns its path; FileFetchError when it cannot."""

    def fetch(self, ref: FileRef, dest_dir: Path, *, max_bytes: int) -> Path: ...


MB = 1024 * 1024  # TASKWRIGHT_MAX_FILE_MB counts binary megabytes; messages use the same unit


def max_bytes_for(max_file_mb: float) -> int:
    """The byte cap for a TASKWRIGHT_MAX_FILE_MB value (one place, so checks and messages agree)."""
    return int(max_file_mb * MB)


def mb_text(n_bytes: int, places: int = 1) -> str:
    """Bytes as MB in the cap's unit: 1.3, 200 (no trailing .0), 0.5."""
    text = f"{n_bytes / MB:,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def too_big(name: str, size: int, max_bytes: int, *, at_least: bool = False) -> str:
    """The refusal for a file over the cap; `at_least` when the download was cut off (the true size is larger)."""
    return (f"“{name}” is {'more than ' if at_least else ''}{mb_text(size)} MB, over the size cap: "
            f"the limit is {mb_text(max_bytes, 2)} MB (TASKWRIGHT_MAX_FILE_MB). "
            "Share a smaller extract, e.g. one sheet or fewer rows.")


def safe_name(name: str) -> str:
    """A file name that stays inside its folder and is readable in logs."""
    base = re.sub(r"[^\w.\-]+", "_", Path(name.replace("\\", "/")).name, flags=re.UNICODE).strip("._")
    return base[:120] or "upload"


def _dest(dest_dir: Path, ref: FileRef) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    return dest_dir / f"{safe_name(ref.id or uuid.uuid4().hex[:8])}-{safe_name(ref.name)}"


class LocalFiles:
    """The console's fetcher: FileRef.url (or id) is a path on this machine; it is copied under the cap."""

    def fetch(self, ref: FileRef, dest_dir: Path, *, max_bytes: int) -> Path:
        src = Path(ref.url or ref.id).expanduser()
        if not src.is_file():
            raise FileFetchError(f"No such file: {src}")
        size = src.stat().st_size
        if size > max_bytes:
            raise FileFetchError(too_big(ref.name or src.name, size, max_bytes))
        dest = _dest(dest_dir, replace(ref, id=uuid.uuid4().hex[:8], name=ref.name or src.name))
        shutil.copyfile(src, dest)
        return dest


class SlackFiles:
    """Slack's fetcher: stubs resolved through files.info, url_private downloaded with the bot token.

    Args:
        files_info: file id -> the `file` object of files.info (the adapter passes its WebClient call).
    """

    def __init__(self, token: str, files_info: Callable[[str], dict[str, Any]], *, timeout_s: float = 60.0) -> None:
        self.token = token
        self.files_info = files_info
        self.timeout_s = timeout_s

    def resolve(self, ref: FileRef) -> FileRef:
        """Fill in url and size from files.info when the event carried only a stub (id, maybe a name)."""
        if ref.url and ref.size:
            return ref
        if not ref.id:
            raise FileFetchError("That file has no id I can look up; please share it again.")
        try:
            info = self.files_info(ref.id)
        except Exception as e:
            log.warning("files.info failed for %s: %s", ref.id, e)
            raise FileFetchError(f"I couldn't look up file {ref.id} in Slack ({e}). If the app lacks the "
                                 "`files:read` scope, add it and reinstall the app.") from e
        size = info.get("size")
        return FileRef(
            id=ref.id,
            name=str(info.get("name") or ref.name or ref.id),
            url=str(info.get("url_private_download") or info.get("url_private") or ref.url),
            size=size if isinstance(size, int) and size >= 0 else ref.size,
            mimetype=str(info.get("mimetype") or ref.mimetype),
        )

    def fetch(self, ref: FileRef, dest_dir: Path, *, max_bytes: int) -> Path:
        import httpx

        if ref.size > max_bytes:  # the event's declared size: refused before even asking files.info
            raise FileFetchError(too_big(ref.name, ref.size, max_bytes))
        ref = self.resolve(ref)
        if ref.size > max_bytes:
            raise FileFetchError(too_big(ref.name, ref.size, max_bytes))
        if not ref.url.startswith(("https://", "http://")):
            raise FileFetchError(f"Slack gave no download link for “{ref.name}”; please share it again.")
        dest = _dest(dest_dir, ref)
        try:
            with httpx.stream("GET", ref.url, headers={"Authorization": f"Bearer {self.token}"},
                              timeout=self.timeout_s, follow_redirects=True) as resp:
                self._check_response(resp, ref, max_bytes)
                self._save(resp, dest, ref, max_bytes)
        except FileFetchError:
            dest.unlink(missing_ok=True)
            raise
        except (httpx.HTTPError, OSError) as e:
            dest.unlink(missing_ok=True)
            log.warning("download of %s (%s) failed: %r", ref.id, ref.name, e)
            raise FileFetchError(f"Downloading “{ref.name}” from Slack failed ({type(e).__name__}). "
                                 "Please try again.") from e
        log.info("downloaded %s (%s, %d bytes) to %s", ref.id, ref.name, dest.stat().st_size, dest)
        return dest

    @staticmethod
    def _check_response(resp: Any, ref: FileRef, max_bytes: int) -> None:
        if resp.status_code in (401, 403, 404):
            raise FileFetchError(f"Slack refused the download of “{ref.name}” ({resp.status_code}). "
                                 "Check that the app has the `files:read` scope and is in this channel.")
        if resp.status_code != 200:
            raise FileFetchError(f"Slack answered {resp.status_code} for “{ref.name}”; please try again.")
        if "text/html" in resp.headers.get("content-type", "").lower() and "html" not in ref.mimetype:
            log.warning("download of %s got an HTML page (missing files:read scope?)", ref.id)
            raise FileFetchError(MISSING_SCOPE.format(name=ref.name))
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise FileFetchError(too_big(ref.name, int(declared), max_bytes))

    @staticmethod
    def _save(resp: Any, dest: Path, ref: FileRef, max_bytes: int) -> None:
        got = 0
        with dest.open("wb") as out:
            for chunk in resp.iter_bytes(CHUNK_BYTES):
                got += len(chunk)
                if got > max_bytes:
                    log.warning("download of %s passed the %d-byte cap; aborted", ref.id, max_bytes)
                    raise FileFetchError(too_big(ref.name, got, max_bytes, at_least=True))
                out.write(chunk)
