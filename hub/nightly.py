"""The hub's nightly job, run off the event loop.

One run: integrity check, the re-fold of records against the change log, the facts the report reads
(``hub/nightly_facts.py``), the morning report (``hub/nightly_report.py``: deadline warnings,
statistics, satisfaction, stations not seen lately, the stations' anti-entropy sessions since the last
run), a backup (rotated; the database and the photos beside it, ``hub/backup.py``), compaction, and the
removal of photo uploads abandoned half-way (no chunk for ``partial_retention_days``). Every run is
recorded with its figures and a summary of its report; the report itself is kept for the last
:data:`KEEP_REPORTS` runs. A failed integrity check is loud (logged as an error, outcome
``integrity_failed``), never silent.

It works from what changed since the last run, so that it stays within a minute at a million
applications: the re-fold checks the records touched since then (the log's rowid above the mark
``refold_rowid``) and one slice of all records, the next in key order (``refold_sweep_after``), so a
record altered behind the hub's back is found within ``nightly_refold.SWEEP_NIGHTS`` runs. ``hub
serve`` runs it with :func:`run_apart` in a process of its own (``hub/nightly_worker.py``) over a
connection of its own, writing in short transactions, so the event loop and the group committer
(``hub/committer.py``) keep answering.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub import backup_rotation, blobindex, nightly_facts, nightly_numbers, nightly_refold, scope_leaves, tracking
from hub.backup import backup
from hub.nightly_report import (
    NEARLY_DUE_WORKING_DAYS,
    NOT_SEEN_DAYS,
    anti_entropy_since,
    deadline_warnings,
    not_seen,
    report_csv,
    report_text,
    statistics,
)
from hub.store import DB_NAME, database_of
from hub.store.errors import StoreError, translated
from hub.store.morning_report import OPEN_STATUSES
from hub.store.sqlite_files import integrity_check_apart as _check_apart
from protocol.codec import pack, unpack
from replica.ids import CHINA, iso_from_ms

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger("sanji.hub.nightly")
KEEP_BACKUPS = backup_rotation.KEEP_BACKUPS
KEEP_REPORTS = 30
NICE = 10  # the nightly job's threads, below the event loop's 0
REJECTED_RETENTION_DAYS = 90


def _today(hub: Hub) -> date:
    return datetime.fromtimestamp(hub.clock() / 1000, tz=CHINA).date()


def rotate_backups(hub: Hub, *, prune: bool = True, source: Path | None = None) -> dict[str, object]:
    """Tonight's backup in ``HUB/backups/``: a full copy weekly, the changed pages in between
    (``hub/backup_rotation.py``), with its photos; the newest :data:`KEEP_BACKUPS` are kept.
    ``source``: the database file to copy through a connection of its own, the hub's connection if None."""
    return backup_rotation.rotate(hub, keep=KEEP_BACKUPS if prune else None, source=source)


def _backup_apart(hub: Hub) -> tuple[dict[str, object] | None, str]:
    """Tonight's backup through a connection of its own (nothing pruned yet); or why it failed."""
    try:
        return rotate_backups(hub, prune=False, source=hub.folder / DB_NAME), ""
    except (StoreError, OSError) as exc:
        return None, str(exc)


@dataclass
class _Reading:
    """What the first, read-only part of a run found: the integrity check, tonight's backup (or why it
    failed), and the records the re-fold found not matching their log (or the error reading them)."""

    check: str
    rotated: dict[str, object] | None
    backup_error: str
    refold: nightly_refold.Found | None
    refold_error: str


def _read_first(hub: Hub, do_backup: bool) -> _Reading:
    """The integrity check, the backup and the re-fold's reading side by side: all three only read
    ``hub.db``, each over its own connection, and most of their time is SQLite's, not Python's. A
    backup of a database found damaged is dropped at once and nothing is pruned: it must never push
    the last good backup out."""
    if database_of(hub.folder) is not None:
        # A PostgreSQL store: the cluster checks its own pages and is backed up by its own tools
        # (pg_dump, base backups); the hub checks only that it answers, and makes no file copy.
        return _read_on_postgresql(hub)
    with ThreadPoolExecutor(2, thread_name_prefix="sanji-nightly", initializer=lower_priority) as pool:
        checking = pool.submit(_check_apart, hub.folder / DB_NAME)
        backing = pool.submit(_backup_apart, hub) if do_backup else None
        found: nightly_refold.Found | None = None
        error = ""
        try:
            with translated():
                found = nightly_refold.find(hub)
        except StoreError as exc:
            error = str(exc)
        check = checking.result()
        rotated, backup_error = backing.result() if backing is not None else (None, "")
    if rotated is not None:
        if check != "ok":
            backup_rotation.discard(Path(str(rotated["file"])))
            rotated = None
        else:
            rotated["pruned"] = backup_rotation.prune(hub.folder / "backups", KEEP_BACKUPS)
    return _Reading(check, rotated, backup_error, found, error)


def _read_on_postgresql(hub: Hub) -> _Reading:
    found: nightly_refold.Found | None = None
    error = ""
    try:
        with translated():  # psycopg's errors as the store's own
            found = nightly_refold.find(hub)
    except StoreError as exc:
        error = str(exc)
    return _Reading(hub.store.quick_check(), None, "", found, error)


def compact(hub: Hub) -> dict[str, int]:
    """Drop what no feed, reconciliation or audit still needs: refusal notes past their retention.
    Changes, feeds and receipts are kept: anti-entropy and the audit trail rest on them."""
    limit = hub.clock() - REJECTED_RETENTION_DAYS * 86_400_000
    with hub.store.transaction():
        pruned = hub.store.prune_refusals_before(limit)
    return {"rejected_pruned": pruned}


def last_run_start(hub: Hub) -> int | None:
    return hub.store.last_run_start()


def _failed(hub: Hub, run_id: int, started: int, today: date, finding: str) -> dict[str, Any]:
    return _finish(
        hub,
        run_id,
        "integrity_failed",
        {"stations_checked": 0, "divergent": 0, "repaired": 0, "overdue": 0},
        {"day": today.isoformat(), "generated_at": iso_from_ms(started), "integrity": finding},
    )


def run(
    hub: Hub,
    trigger: str = "on-demand",
    *,
    do_backup: bool = True,
    partial_retention_days: int = blobindex.PARTIAL_RETENTION_DAYS,
) -> dict[str, Any]:
    started = hub.clock()
    since = last_run_start(hub) or 0
    with hub.store.transaction():
        run_id = hub.store.start_run(started, trigger)
    today = _today(hub)
    # Before the backup is read, so tonight's copy no longer holds the tracking hashes whose time is up.
    tracking_purged = tracking.purge_stale(hub)
    first = _read_first(hub, do_backup)
    check, rotated, backup_error = first.check, first.rotated, first.backup_error
    if check != "ok":
        # Loud, and no backup rotation: a damaged database must never push the last good backup out.
        log.error("hub database integrity check FAILED: %s; restore from a backup (README: Disaster recovery)", check)
        return _failed(hub, run_id, started, today, check)
    try:
        if first.refold is None:
            raise StoreError(first.refold_error)
        with translated():
            refolded, fixed = nightly_refold.finish(hub, first.refold)
            facts = nightly_facts.refresh(hub, also=fixed)
            twice = nightly_numbers.refresh(hub, also=fixed)
            merkle = scope_leaves.prepare_all(hub)
    except StoreError as exc:
        log.error("hub database failed while re-checking records: %s; restore from a backup", exc)
        return _failed(hub, run_id, started, today, str(exc))
    rebuilt = int(str(refolded["rebuilt"]))
    if rebuilt:
        log.warning("nightly: %d record(s) did not match their change log and were rebuilt", rebuilt)
    warnings = deadline_warnings(hub, today)
    report: dict[str, Any] = {
        "day": today.isoformat(),
        "generated_at": iso_from_ms(started),
        "integrity": check,
        "warnings": warnings,
        "statistics": statistics(hub, today),
        "not_seen": not_seen(hub),
        "anti_entropy": anti_entropy_since(hub, since),
        "records_rebuilt": rebuilt,
        "refold": refolded,
        "facts": facts,
        "merkle_leaves": merkle,
        "duplicate_numbers": twice,
    }
    if backup_error:
        log.error("nightly backup failed: %s", backup_error)
        report["backup_error"] = backup_error
    report["tracking_purged"] = tracking_purged
    report["backup"] = rotated["file"] if rotated else None
    report["backup_blobs"] = rotated["blobs"] if rotated else None
    if rotated:
        report["backup_kind"], report["backup_bytes"] = rotated["kind"], rotated["bytes"]
    if rotated and rotated["blobs_damaged"]:
        report["backup_blobs_damaged"] = rotated["blobs_damaged"]  # photos whose files no longer match
    report["compaction"] = compact(hub)
    report["partial_uploads"] = blobindex.drop_abandoned(hub, partial_retention_days)
    ae = report["anti_entropy"]
    figures = {
        "stations_checked": ae["stations_checked"],
        "divergent": ae["divergent"] + int(rebuilt > 0),
        "repaired": ae["repaired"] + rebuilt,
        "overdue": len(warnings["red"]),
    }
    return _finish(hub, run_id, "ok", figures, report)


def lower_priority() -> None:
    """Make the calling thread yield the CPU to the event loop's: on Linux a thread has a nice value
    of its own. Where that is not so, nothing changes."""
    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


def run_apart(folder: Path, clock: Callable[[], int], trigger: str, **options: Any) -> dict[str, Any]:
    """:func:`run` on a hub opened here, over its own connection (``hub/nightly_worker.py``; the serving
    process's connection stays its event loop's). The calling thread, and those it starts, run at a
    lower priority, so a busy machine serves requests first."""
    from hub.service import Hub  # the service imports this module's callers, not this module

    lower_priority()
    own = Hub.open(folder, clock=clock)
    try:
        return run(own, trigger, **options)
    finally:
        own.close()


def summary(report: dict[str, Any]) -> dict[str, object]:
    """What a run's report comes to, kept with the run after the report itself is pruned."""
    if "warnings" not in report:
        return {"day": report["day"], "integrity": report["integrity"]}
    w, stats = report["warnings"], report["statistics"]
    return {
        "day": report["day"],
        "integrity": report["integrity"],
        "red": len(w["red"]),
        "yellow": len(w["yellow"]),
        "materials_overdue": len(w["materials_overdue"]),
        "accepted": sum(t["accepted"] for t in stats["per_tier"].values()),
        "accepted_today": sum(s["accepted_today"] for s in stats["per_station"]),
        "completed": sum(t["completed"] for t in stats["per_tier"].values()),
        "bad_reviews": len(stats["bad_reviews_to_call_back"]),
        "not_seen": len(report["not_seen"]),
        "records_rebuilt": report["records_rebuilt"],
        "duplicate_numbers": len(report["duplicate_numbers"]),
        "backup": report.get("backup"),
    }


def _finish(hub: Hub, run_id: int, outcome: str, figures: dict[str, int], report: dict[str, Any]) -> dict[str, Any]:
    with hub.store.transaction():
        # hub.db must not grow by a report a night: the last KEEP_REPORTS stay whole, older runs keep
        # their figures and summary. The pages freed are reused by the next reports.
        hub.store.end_run(
            run_id,
            hub.clock(),
            outcome,
            pack(figures),
            pack(summary(report)),
            str(report["day"]),
            pack(report),
            KEEP_REPORTS,
        )
    return {**figures, "report": report, "run": run_id, "outcome": outcome}


def runs(hub: Hub, limit: int = 10) -> list[dict[str, object]]:
    rows = hub.store.recent_runs(limit)
    return [
        {
            "run": r[0],
            "started": iso_from_ms(r[1]),
            "ended": iso_from_ms(r[2]) if r[2] else None,
            "trigger": r[3],
            "outcome": r[4],
            "figures": unpack(r[5]) if r[5] else None,
            "summary": unpack(r[6]) if r[6] else None,
        }
        for r in rows
    ]


__all__ = [
    "NEARLY_DUE_WORKING_DAYS",
    "NOT_SEEN_DAYS",
    "OPEN_STATUSES",
    "backup",
    "deadline_warnings",
    "report_csv",
    "report_text",
    "run",
    "run_apart",
    "runs",
    "statistics",
]
