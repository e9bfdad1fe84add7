"""When the nightly job runs: on a short interval (drills and tests), daily at HH:MM, once at start-up
for a run missed while the machine was off, and inside `hub serve` / `node serve`."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from hub.service import Hub
from node.server import create_app as node_app
from protocol.codec import pack
from replica import schedule
from replica.schedule import GRACE, When, missed
from tests.applicants import People
from tests.e2e.processes import healthz, start_sanji, stop_process
from tests.hub_sql import hub_sql

from .conftest import CHINA, District, ServedHub, free_port, run_sanji


def china(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA)


# -- When ---------------------------------------------------------------------------------------------


def test_when_parses_times_and_intervals() -> None:
    assert When.parse("02:00") == When(2, 0)
    assert When.parse("23:59") == When(23, 59)
    assert When.parse("7") == When(7, 0)
    assert When.parse("every:1") == When(every_s=1.0)
    assert When.parse("every:0.2").every_s == pytest.approx(0.2)
    for bad in ("24:00", "02:60", "-1:00", "noon"):
        with pytest.raises(ValueError):
            When.parse(bad)


def test_last_due_is_the_latest_scheduled_time_not_after_now() -> None:
    two = When(2, 0)
    assert two.last_due(china(2026, 3, 3, 8, 0)) == china(2026, 3, 3, 2, 0)
    assert two.last_due(china(2026, 3, 3, 2, 0)) == china(2026, 3, 3, 2, 0)  # at the minute itself
    assert two.last_due(china(2026, 3, 3, 1, 59, 59)) == china(2026, 3, 2, 2, 0)
    # Across a month end, and from a clock that is not in China's time zone.
    assert two.last_due(china(2026, 3, 1, 0, 30)) == china(2026, 2, 28, 2, 0)
    assert two.last_due(datetime(2026, 3, 2, 18, 30, tzinfo=UTC)) == china(2026, 3, 3, 2, 0)
    assert When(every_s=5).last_due(china(2026, 3, 3, 8, 0)) is None


# -- missed -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "last_start", "expected"),
    [
        # The 02:00 run of 3 March did not happen (the PC was off); it is 08:00.
        (china(2026, 3, 3, 8, 0), china(2026, 3, 2, 2, 0, 4), True),
        (china(2026, 3, 3, 8, 0), None, True),  # never run at all
        (china(2026, 3, 3, 2, 0), china(2026, 3, 2, 2, 0, 4), True),  # exactly due
        # It ran.
        (china(2026, 3, 3, 8, 0), china(2026, 3, 3, 2, 0, 1), False),
        (china(2026, 3, 3, 8, 0), china(2026, 3, 3, 7, 0), False),  # on demand, after the due time
        # Not due yet today; yesterday's ran.
        (china(2026, 3, 3, 1, 59), china(2026, 3, 2, 2, 0, 3), False),
        # Missed, but too long ago to catch up: the next scheduled run is nearer.
        (china(2026, 3, 3, 2, 0) + GRACE + timedelta(minutes=1), china(2026, 3, 2, 2, 0, 3), False),
        (china(2026, 3, 3, 2, 0) + GRACE, china(2026, 3, 2, 2, 0, 3), True),
        # The same instants seen from UTC.
        (datetime(2026, 3, 3, 0, 0, tzinfo=UTC), datetime(2026, 3, 1, 18, 0, 4, tzinfo=UTC), True),
        (datetime(2026, 3, 3, 0, 0, tzinfo=UTC), datetime(2026, 3, 2, 18, 0, 4, tzinfo=UTC), False),
    ],
)
def test_missed(now: datetime, last_start: datetime | None, expected: bool) -> None:
    assert missed(When(2, 0), last_start, now) is expected


def test_since_is_the_last_run_else_the_replicas_creation() -> None:
    made, ran = 1_772_400_000_000, 1_772_500_000_000
    assert schedule.since(None, None) is None
    assert schedule.since(None, made) == datetime.fromtimestamp(made / 1000, CHINA)
    assert schedule.since(ran, made) == datetime.fromtimestamp(ran / 1000, CHINA)


def test_a_replica_made_after_the_due_time_missed_nothing() -> None:
    # Made at 07:00 on 3 March, never run: the 02:00 run that day was due before it existed.
    assert missed(When(2, 0), china(2026, 3, 3, 7, 0), china(2026, 3, 3, 8, 0)) is False
    # Made the evening before: that 02:00 run was really missed.
    assert missed(When(2, 0), china(2026, 3, 2, 20, 0), china(2026, 3, 3, 8, 0)) is True


def test_interval_schedules_never_catch_up() -> None:
    assert missed(When(every_s=60), None, china(2026, 3, 3, 8, 0)) is False


# -- start --------------------------------------------------------------------------------------------


async def test_an_interval_job_fires_until_shut_down() -> None:
    calls: list[str] = []

    async def job(trigger: str) -> None:
        calls.append(trigger)

    scheduler = schedule.start(When(every_s=0.2), job, None)
    try:
        await asyncio.sleep(1.1)
    finally:
        scheduler.shutdown(wait=False)
    fired = len(calls)
    assert 2 <= fired <= 7, calls  # about five: every 0.2 s for 1.1 s
    assert set(calls) == {"scheduled"}
    await asyncio.sleep(0.5)
    assert len(calls) == fired, "nothing fires after shutdown"


async def test_a_slow_job_never_runs_twice_at_once() -> None:
    running = 0
    overlap = False
    calls = 0

    async def job(trigger: str) -> None:
        nonlocal running, overlap, calls
        calls += 1
        running += 1
        overlap = overlap or running > 1
        await asyncio.sleep(0.5)
        running -= 1

    scheduler = schedule.start(When(every_s=0.1), job, None)
    try:
        await asyncio.sleep(1.3)
    finally:
        scheduler.shutdown(wait=False)
    assert calls >= 2 and not overlap


def _a_minute_ago() -> tuple[When, datetime]:
    now = datetime.now(CHINA)
    before = now - timedelta(minutes=1)
    return When(before.hour, before.minute), now


@pytest.mark.parametrize("last", ["never", "yesterday"])
async def test_a_missed_daily_run_runs_once_at_start(last: str) -> None:
    when, now = _a_minute_ago()
    last_start = None if last == "never" else now - timedelta(days=1)
    calls: list[str] = []

    async def job(trigger: str) -> None:
        calls.append(trigger)

    scheduler = schedule.start(when, job, last_start)
    try:
        await asyncio.sleep(0.6)
    finally:
        scheduler.shutdown(wait=False)
    assert calls == ["catch-up"]


async def test_no_catch_up_when_the_run_already_happened() -> None:
    when, now = _a_minute_ago()
    calls: list[str] = []

    async def job(trigger: str) -> None:
        calls.append(trigger)

    scheduler = schedule.start(when, job, now - timedelta(seconds=5))
    try:
        await asyncio.sleep(0.4)
    finally:
        scheduler.shutdown(wait=False)
    assert calls == []


# -- inside the servers -----------------------------------------------------------------------------


def _runs(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return [(str(t), str(o)) for t, o in conn.execute("SELECT trigger, outcome FROM nightly_runs ORDER BY id")]
    finally:
        conn.close()


def _hub_runs(folder: Path) -> list[tuple[str, str]]:
    """The hub's nightly runs, on either backend."""
    conn = hub_sql(folder, timeout=5)
    try:
        return [(str(t), str(o)) for t, o in conn.execute("SELECT trigger, outcome FROM nightly_runs ORDER BY id")]
    finally:
        conn.close()


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.usefixtures("hub_backend")
def test_hub_serve_runs_the_nightly_job_on_its_schedule(district: District, tmp_path: Path, hub_backend: str) -> None:
    """A real `sanji hub serve --nightly every:1` process records its runs in nightly_runs."""
    d = district
    port = free_port()
    log = tmp_path / "hub-serve.log"
    proc = start_sanji("hub", "serve", d.hub_dir, "--port", port, "--nightly", "every:1", log=log)
    try:
        _wait_for(lambda: healthz(f"http://127.0.0.1:{port}") is not None, 20)
        assert healthz(f"http://127.0.0.1:{port}") is not None, log.read_text(errors="replace")
        _wait_for(lambda: sum(o == "ok" for _, o in _hub_runs(d.hub_dir)) >= 2, 8)
        runs = _hub_runs(d.hub_dir)
        refused = run_sanji("hub", "restore", d.hub_dir, "--from", d.hub_dir / "hub.db")
    finally:
        stop_process(proc)
    assert sum(o == "ok" for _, o in runs) >= 2, (runs, log.read_text(errors="replace")[-2000:])
    assert {t for t, _ in runs} == {"scheduled"}
    assert refused.code == 2
    if hub_backend == "postgres":  # no file to put back: PostgreSQL restores with its own tools
        assert "pg_restore" in refused.stderr
    else:
        assert "serving" in refused.stderr
    text = log.read_text(errors="replace")
    assert "夜间任务（定时）完成" in text, text[-2000:]
    assert "apscheduler" not in text, "the scheduler's internal INFO lines are not for operators"
    backups = list((d.hub_dir / "backups").glob("hub-*.*"))
    if hub_backend == "sqlite":
        assert len(backups) >= 1, "each run keeps a rotated backup"
    else:
        assert backups == [], "on PostgreSQL the job makes no file copy: pg_dump backs the database up"


@pytest.mark.usefixtures("hub_backend")
def test_the_hub_catches_up_a_missed_run_when_it_starts(district: District) -> None:
    d = district
    when, now = _a_minute_ago()
    # The hub has existed since yesterday and was off when today's run fell due.
    conn = hub_sql(d.hub_dir)
    with conn:
        conn.execute(
            "UPDATE hub_meta SET value=? WHERE key='created_ms'",
            (pack(int((now - timedelta(days=1)).timestamp() * 1000)),),
        )
    conn.close()
    hub = ServedHub(d.hub_dir, d.hub.port, nightly=f"{when.hour:02d}:{when.minute:02d}")
    with hub.serving():
        _wait_for(lambda: ("catch-up", "ok") in _hub_runs(d.hub_dir), 5)
    assert _hub_runs(d.hub_dir) == [("catch-up", "ok")]
    with hub.serving():  # started again the same day: the run happened, nothing to catch up
        time.sleep(0.5)
    assert _hub_runs(d.hub_dir) == [("catch-up", "ok")]


@pytest.mark.usefixtures("hub_backend")
def test_a_hub_made_a_minute_ago_catches_up_nothing(tmp_path: Path, hub_database: str | None) -> None:
    """A hub made after today's scheduled time has missed no run: it waits for tomorrow's."""
    when, _ = _a_minute_ago()
    folder = tmp_path / "hub"
    Hub.create(folder, district="360802", name="测试区行政审批局", catalogue=None, database=hub_database).close()
    hub = ServedHub(folder, free_port(), nightly=f"{when.hour:02d}:{when.minute:02d}")
    with hub.serving():
        time.sleep(0.8)
    assert _hub_runs(folder) == []


@pytest.mark.usefixtures("hub_backend")
async def test_node_serve_runs_the_station_nightly_job(district: District, people: People) -> None:
    """`node serve --nightly every:N`: the station's job reconciles with the hub and records its runs."""
    d, a = district, district.a
    d.hub.start()
    try:
        await asyncio.to_thread(a.accept, people, "360802-0001")
        runner = web.AppRunner(node_app(a.dir, interval=0.3, nightly_at="every:0.7"))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", free_port())
        await site.start()
        try:
            for _ in range(60):
                await asyncio.sleep(0.1)
                if sum(o == "ok" for _, o in _runs(a.dir / "node.db")) >= 2:
                    break
        finally:
            await runner.cleanup()
        runs = _runs(a.dir / "node.db")
        assert sum(o == "ok" for _, o in runs) >= 2, runs
        assert {t for t, _ in runs} == {"scheduled"}
        view = await asyncio.to_thread(a.view)
        assert await asyncio.to_thread(d.hub_view, a.code) == view and len(view) == 1
        conn = hub_sql(d.hub_dir)
        try:
            sessions = conn.execute("SELECT COUNT(*) FROM reconciliations WHERE station=?", (a.code,)).fetchone()[0]
        finally:
            conn.close()
        assert sessions >= 2
    finally:
        d.hub.stop()
