"""Running the nightly job inside `serve`: apscheduler 3 (AsyncIOScheduler), started and stopped by the
app's lifecycle, plus a catch-up for a run missed while the machine was off.

apscheduler's in-memory job store forgets missed runs across restarts, so the catch-up reads the
replica's own record of runs: if the last scheduled time passed with no run since, and it is still
within the grace period, the job runs once at start-up (runs never pile up: coalesced to one).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from replica.ids import CHINA

log = logging.getLogger("sanji.nightly")
GRACE = timedelta(hours=12)


@dataclass(frozen=True)
class When:
    """``HH:MM`` daily in the district's time zone, or ``every:N`` seconds (for tests and drills)."""

    hour: int = 2
    minute: int = 0
    every_s: float | None = None

    @classmethod
    def parse(cls, text: str) -> When:
        if text.startswith("every:"):
            return cls(every_s=float(text.split(":", 1)[1]))
        hh, _, mm = text.partition(":")
        hour, minute = int(hh), int(mm or 0)
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(f"nightly time {text!r} is not HH:MM")
        return cls(hour, minute)

    def last_due(self, now: datetime) -> datetime | None:
        """The most recent scheduled time at or before ``now`` (daily schedules only)."""
        if self.every_s is not None:
            return None
        due = now.astimezone(CHINA).replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        return due if due <= now else due - timedelta(days=1)


def missed(when: When, last_start: datetime | None, now: datetime) -> bool:
    due = when.last_due(now)
    if due is None:
        return False
    return (last_start is None or last_start < due) and now - due <= GRACE


def start(when: When, job: Callable[[str], Awaitable[object]], last_start: datetime | None) -> AsyncIOScheduler:
    """Schedule ``job(trigger_name)``; call from inside the running event loop."""
    scheduler = AsyncIOScheduler(timezone=CHINA)
    trigger = (
        IntervalTrigger(seconds=when.every_s, timezone=CHINA)
        if when.every_s is not None
        else CronTrigger(hour=when.hour, minute=when.minute, timezone=CHINA)
    )
    scheduler.add_job(
        job,
        trigger,
        args=["scheduled"],
        id="nightly",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=int(GRACE.total_seconds()),
    )
    now = datetime.now(CHINA)
    if missed(when, last_start, now):
        log.info("the nightly run due at %s was missed; running it now", when.last_due(now))
        scheduler.add_job(job, args=["catch-up"], id="catch-up", max_instances=1)
    scheduler.start()
    return scheduler
