"""The station's nightly job: integrity check, anti-entropy with the hub, outbox compaction.

Compaction drops the bytes of batches the hub receipted more than ``retention_days`` ago; the rows
stay (with the hub's signed receipt) and so do the changes themselves, which are the application's
history and what anti-entropy compares.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from node import at_rest_minimise, reconcile
from node.station import Station
from protocol.codec import pack
from replica.db import integrity_check
from replica.errors import Refused, Unreachable
from sync.outbox import BatchState

log = logging.getLogger("sanji.node.nightly")
RETENTION_DAYS = 30


def compact(st: Station, retention_days: int = RETENTION_DAYS) -> int:
    limit = st.clock() - retention_days * 86_400_000
    with st.transaction():
        cur = st.conn.execute(
            "UPDATE outbox SET frame=x'' WHERE state=? AND receipted_ms < ? AND length(frame) > 0",
            (BatchState.RECEIPTED.value, limit),
        )
    return cur.rowcount


def run(st: Station, trigger: str = "on-demand", retention_days: int = RETENTION_DAYS) -> dict[str, Any]:
    started = st.clock()
    with st.transaction():
        run_id = int(
            st.conn.execute(
                "INSERT INTO nightly_runs (started_ms, trigger) VALUES (?, ?)", (started, trigger)
            ).lastrowid
            or 0
        )
    check = integrity_check(st.db)
    figures: dict[str, Any] = {"integrity": check}
    if check == "ok":
        try:
            with st.transaction():
                figures["records_rebuilt"] = st.records.refold()
        except sqlite3.DatabaseError as exc:
            check = figures["integrity"] = f"database error: {exc}"
    if check != "ok":
        # Loud, and nothing else: a damaged database must not be reconciled or compacted.
        log.error(
            "本站数据库完整性检查未通过：%s；请用 sanji node restore 从备份恢复 "
            "(station database integrity check FAILED)",
            check,
        )
        return _finish(st, run_id, "integrity_failed", figures)
    outcome = "ok"
    try:
        figures["reconcile"] = reconcile.reconcile(st).to_dict()
    except (Unreachable, Refused) as exc:
        figures["reconcile"] = {"error": str(exc)}
        outcome = "reconcile_failed" if outcome == "ok" else outcome
    figures["compacted_batches"] = compact(st, retention_days)
    try:  # delivered applications the hub has long held keep only masks here (node/at_rest_minimise.py)
        figures["minimised"] = at_rest_minimise.minimise(st)
    except Refused as exc:
        figures["minimised"] = {"error": str(exc)}
    return _finish(st, run_id, outcome, figures)


def _finish(st: Station, run_id: int, outcome: str, figures: dict[str, Any]) -> dict[str, Any]:
    try:
        with st.transaction():
            st.conn.execute(
                "UPDATE nightly_runs SET ended_ms=?, outcome=?, figures=? WHERE id=?",
                (st.clock(), outcome, pack(figures), run_id),
            )
    except sqlite3.DatabaseError:
        log.error("夜间任务的结果（%s）未能记下：本站数据库已损坏，请从备份恢复 (the database is damaged)", outcome)
    return {"outcome": outcome, **figures}


def last_run_start(st: Station) -> int | None:
    row = st.conn.execute("SELECT MAX(started_ms) FROM nightly_runs WHERE outcome!='running'").fetchone()
    return int(row[0]) if row and row[0] is not None else None
