"""Running the nightly job inside `serve`: apscheduler 3 (AsyncIOScheduler), started and stopped by the
app's lifecycle, plus a catch-up for a run missed while the machine was off.

apscheduler's in-memory job store forgets missed runs across restarts, so the catch-up reads the
replica's own record of runs: if the last scheduled time passed with no run since, and it is still
within the grace period, the job runs once at start-up (runs never pile up: coalesced to one). "Since"
means since the last run, or, for a replica that has never run, since it was made: a hub made at 09:00
has missed no 02:00 run.

apscheduler's own INFO lines name its internals ("Added job 'job' to job store 'default'"); operators
read Sanji's lines, so its logger is kept to warnings.
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
# How a run was started, in the words the log shows operators.
TRIGGERS = {"scheduled": "定时", "catch-up": "补做", "on-demand": "手动"}
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
        wrong = f"{text!r} 格式不对：请写成 HH:MM，如 02:00 (not HH:MM)"
        try:
            hour, minute = int(hh), int(mm or 0)
        except ValueError:
            raise ValueError(wrong) from None
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(wrong)
        return cls(hour, minute)

    def last_due(self, now: datetime) -> datetime | None:
        """The most recent scheduled time at or before ``now`` (daily schedules only)."""
        if self.every_s is not None:
            return None
        due = now.astimezone(CHINA).replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        return due if due <= now else due - timedelta(days=1)


def missed(when: When, since: datetime | None, now: datetime) -> bool:
    """Whether a daily run fell due after ``since`` (the last run's start, or when the replica was made;
    None when neither is known) and is still within the grace period."""
    due = when.last_due(now)
    if due is None:
        return False
    return (since is None or since < due) and now - due <= GRACE


def since(last_run_ms: int | None, created_ms: int | None) -> datetime | None:
    """The reference for :func:`missed`: the last run, else the replica's creation, else unknown."""
    ms = last_run_ms if last_run_ms is not None else created_ms
    return datetime.fromtimestamp(ms / 1000, CHINA) if ms else None


def start(when: When, job: Callable[[str], Awaitable[object]], since: datetime | None) -> AsyncIOScheduler:
    """Schedule ``job(trigger_name)``; call from inside the running event loop."""
    # Only the scheduler's errors reach the log: its INFO lines are not for operators, and its one
    # warning ("skipped: maximum number of running instances") means a slot came while the last run was
    # still going, which is expected and handled (the job logs its own runs in the operators' words).
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
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
    if missed(when, since, now):
        log.info("夜间任务：%s 的一次未运行（当时未开机），现在补做", f"{when.last_due(now):%Y-%m-%d %H:%M}")
        scheduler.add_job(job, args=["catch-up"], id="catch-up", max_instances=1)
    scheduler.start()
    return scheduler
