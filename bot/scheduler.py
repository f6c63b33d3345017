"""The weekly report on a schedule: "fri 16:00" (local time) posts it from the running bot.

One daemon thread sleeps until the next slot, then posts. Each slot is claimed in the store first
(scheduled_posts), so two bot processes, or a restart inside the minute, post it once.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

from planner.errors import TaskwrightError

log = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEDULE = re.compile(r"^\s*(?P<day>[a-z]+)\s+(?P<h>\d{1,2}):(?P<m>\d{2})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Schedule:
    """A weekly slot: weekday (0 = Monday) and local time."""

    weekday: int
    at: dt.time

    def next_after(self, now: dt.datetime) -> dt.datetime:
        """The first slot strictly after now (same tzinfo as now)."""
        days = (self.weekday - now.weekday()) % 7
        slot = dt.datetime.combine(now.date() + dt.timedelta(days=days), self.at, tzinfo=now.tzinfo)
        return slot if slot > now else slot + dt.timedelta(days=7)


def parse_schedule(text: str) -> Schedule:
    """ "fri 16:00" -> Schedule(4, 16:00); TaskwrightError naming the setting when it is not that shape."""
    m = _SCHEDULE.match(text or "")
    day = m.group("day").lower()[:3] if m else ""
    if not m or day not in DAYS or not m.group("day").lower().startswith(day):
        raise TaskwrightError(f"TASKWRIGHT_REPORT_SCHEDULE {text!r} is not like 'fri 16:00' (weekday, then HH:MM).")
    hour, minute = int(m.group("h")), int(m.group("m"))
    if hour > 23 or minute > 59:
        raise TaskwrightError(f"TASKWRIGHT_REPORT_SCHEDULE {text!r}: {hour:02d}:{minute:02d} is not a time of day.")
    return Schedule(DAYS.index(day), dt.time(hour, minute))


class ReportScheduler:
    """Calls post(today) at each slot of schedule, on a daemon thread, until stop()."""

    def __init__(self, schedule: Schedule, post: Callable[[dt.date], None], *, store: Any,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone()) -> None:
        self.schedule = schedule
        self.post = post
        self.store = store
        self._now = now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskwright-report", daemon=True)

    def start(self) -> None:
        log.info("weekly report: next post at %s", self.schedule.next_after(self._now()).isoformat(timespec="minutes"))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            slot = self.schedule.next_after(self._now())
            while not self._stop.is_set():
                left = (slot - self._now()).total_seconds()
                if left <= 0:
                    break
                self._stop.wait(min(left, 60.0))  # re-check the clock each minute (sleep, clock changes)
            if self._stop.is_set():
                return
            self.run_slot(slot)

    def run_slot(self, slot: dt.datetime) -> bool:
        """Post for slot unless it was posted already; True when this call posted."""
        key = f"weekly-report:{slot.date().isoformat()}"
        if not self.store.claim_scheduled(key):
            log.info("weekly report for %s was already posted", slot.date())
            return False
        try:
            self.post(slot.date())
            log.info("weekly report for %s posted", slot.date())
        except Exception:
            log.exception("weekly report for %s failed to post", slot.date())
        return True
