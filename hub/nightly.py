"""The hub's nightly job and the district's morning report.

One run: integrity check, deadline warnings (yellow when a promised item is nearly due, red when
overdue, 容缺 materials past their supplement date), daily statistics per station and per tier,
satisfaction from ratings, stations not seen lately, the stations' anti-entropy sessions since the
last run, a backup (rotated; the database and the photos beside it, ``hub/backup.py``), compaction,
and the removal of photo uploads abandoned half-way (no chunk for ``partial_retention_days``). Every
run is recorded with its figures; a failed integrity check is loud (logged as an error, outcome
``integrity_failed``), never silent.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import sqlite3
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hub import blobindex, tracking
from hub.backup import backup, blobs_beside
from protocol.codec import pack, unpack
from replica.db import integrity_check
from replica.ids import CHINA, iso_from_ms
from sync.identity import mask_name

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger("sanji.hub.nightly")
NEARLY_DUE_WORKING_DAYS = 3
NOT_SEEN_DAYS = 3
KEEP_BACKUPS = 7
REJECTED_RETENTION_DAYS = 90
OPEN_STATUSES = ("accepted", "supplement_requested", "under_review", "inspecting", "approved", "denied")


def _today(hub: Hub) -> date:
    return datetime.fromtimestamp(hub.clock() / 1000, tz=CHINA).date()


def deadline_warnings(hub: Hub, today: date) -> dict[str, list[dict[str, object]]]:
    _, cat = hub.catalogue()
    cal = cat.calendar
    red, yellow, materials = [], [], []
    rows = hub.store.conn.execute(
        f"SELECT number, station, item, status, applicant_name, due_date, paused FROM applications"
        f" WHERE kind='promised' AND status IN ({','.join('?' * len(OPEN_STATUSES))})",
        OPEN_STATUSES,
    ).fetchall()
    for number, station, item, status, name, due, paused in rows:
        if not due or paused:
            continue
        due_day = date.fromisoformat(str(due))
        entry = {
            "number": number,
            "station": station,
            "item": item,
            "status": status,
            "applicant": mask_name(str(name or "")),
            "due_date": due,
        }
        if due_day < today:
            red.append({**entry, "overdue_working_days": cal.working_days_between(due_day, today)})
        elif cal.working_days_between(today, due_day) <= NEARLY_DUE_WORKING_DAYS:
            yellow.append({**entry, "working_days_left": cal.working_days_between(today, due_day)})
    for app_id, number, station in hub.store.conn.execute(
        f"SELECT id, number, station FROM applications WHERE status IN ({','.join('?' * len(OPEN_STATUSES))})",
        OPEN_STATUSES,
    ):
        for name, value in hub.records.values("application", str(app_id)).items():
            if (
                name.startswith("m.")
                and isinstance(value, list)
                and value[0] == "deferred"
                and value[1]
                and date.fromisoformat(str(value[1])) < today
            ):
                materials.append({"number": number, "station": station, "material": name[2:], "due": value[1]})
    return {"red": red, "yellow": yellow, "materials_overdue": materials}


def statistics(hub: Hub, today: date) -> dict[str, Any]:
    tiers = hub.tiers()
    day = today.isoformat()
    per_station: dict[str, dict[str, Any]] = {}
    for st in hub.store.stations():
        if st.tier != "field":  # field devices take no applications; every other station is listed
            per_station[st.code] = {
                "station": st.code,
                "tier": st.tier,
                "accepted": 0,
                "accepted_today": 0,
                "completed": 0,
                "on_time": 0,
                "immediate": 0,
                "promised": 0,
            }
    rows = hub.store.conn.execute(
        "SELECT station, kind, status, accepted_at, due_date, updated_hlc FROM applications"
    ).fetchall()
    for station, kind, status, accepted_at, due, updated in rows:
        s = per_station.setdefault(
            str(station),
            {
                "station": station,
                "tier": tiers.get(str(station), "?"),
                "accepted": 0,
                "accepted_today": 0,
                "completed": 0,
                "on_time": 0,
                "immediate": 0,
                "promised": 0,
            },
        )
        s["accepted"] += 1
        s["accepted_today"] += int(str(accepted_at or "")[:10] == day)
        s["immediate" if kind == "immediate" else "promised"] += 1
        if status in ("completed", "delivered"):
            s["completed"] += 1
            done_day = iso_from_ms(int(updated) >> 16)[:10]
            s["on_time"] += int(not due or done_day <= str(due))
    ratings = hub.store.conn.execute(
        "SELECT a.station, r.state FROM records r JOIN applications a ON a.id = r.application WHERE r.entity='rating'"
    ).fetchall()
    bad: list[dict[str, object]] = []
    for station, state in ratings:
        raw = unpack(state)
        assert isinstance(raw, dict)
        score = raw.get("score", [0, "", 0, 0])[2]
        s = per_station.get(str(station))
        if s is None or not isinstance(score, int):
            continue
        s["ratings"] = s.get("ratings", 0) + 1
        s["rating_sum"] = s.get("rating_sum", 0) + score
        if score <= 2:
            bad.append({"station": station, "score": score, "comment": raw.get("comment", [0, "", "", 0])[2]})
    per_tier: dict[str, dict[str, int]] = {}
    for s in per_station.values():
        s["on_time_rate"] = round(s["on_time"] / s["completed"], 3) if s["completed"] else None
        s["satisfaction"] = round(s.pop("rating_sum") / s["ratings"], 2) if s.get("ratings") else None
        t = per_tier.setdefault(s["tier"], {"accepted": 0, "completed": 0, "on_time": 0})
        for k in ("accepted", "completed", "on_time"):
            t[k] += s[k]
    return {
        "per_station": sorted(per_station.values(), key=lambda s: s["station"]),
        "per_tier": per_tier,
        "bad_reviews_to_call_back": bad,
    }


def not_seen(hub: Hub, days: int = NOT_SEEN_DAYS) -> list[dict[str, object]]:
    limit = hub.clock() - days * 86_400_000
    return [
        {"station": s.code, "tier": s.tier, "last_seen": iso_from_ms(s.last_seen_ms) if s.last_seen_ms else None}
        for s in hub.store.stations()
        if not s.revoked and (s.last_seen_ms or 0) < limit
    ]


def anti_entropy_since(hub: Hub, since_ms: int) -> dict[str, int]:
    row = hub.store.conn.execute(
        "SELECT COUNT(DISTINCT station), COALESCE(SUM(divergent > 0), 0), COALESCE(SUM(repaired), 0),"
        " COALESCE(SUM(summary_match = 0), 0) FROM reconciliations WHERE at_ms > ?",
        (since_ms,),
    ).fetchone()
    return {
        "stations_checked": int(row[0]),
        "divergent": int(row[1]),
        "repaired": int(row[2]),
        "summary_mismatches": int(row[3]),
    }


def rotate_backups(hub: Hub) -> dict[str, object]:
    """A backup in ``HUB/backups/`` (database and blobs), keeping the newest :data:`KEEP_BACKUPS`. The
    blobs it shares with the previous backup are hard links to that backup's files."""
    folder = hub.folder / "backups"
    folder.mkdir(exist_ok=True)
    stamp = datetime.fromtimestamp(hub.clock() / 1000, tz=CHINA).strftime("%Y%m%d-%H%M%S")
    path = folder / f"hub-{stamp}.db"
    earlier = sorted(folder.glob("hub-*.db"))
    out = backup(hub, path, link_from=blobs_beside(earlier[-1]) if earlier else None)
    for old in sorted(folder.glob("hub-*.db"))[:-KEEP_BACKUPS]:
        old.unlink()
        shutil.rmtree(blobs_beside(old), ignore_errors=True)
    return out


def compact(hub: Hub) -> dict[str, int]:
    """Drop what no feed, reconciliation or audit still needs: refusal notes past their retention.
    Changes, feeds and receipts are kept: anti-entropy and the audit trail rest on them."""
    limit = hub.clock() - REJECTED_RETENTION_DAYS * 86_400_000
    with hub.store.transaction():
        cur = hub.store.conn.execute("DELETE FROM rejected WHERE at_ms < ?", (limit,))
    return {"rejected_pruned": cur.rowcount}


def last_run_start(hub: Hub) -> int | None:
    row = hub.store.conn.execute("SELECT MAX(started_ms) FROM nightly_runs WHERE outcome!='running'").fetchone()
    return int(row[0]) if row and row[0] is not None else None


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
        run_id = int(
            hub.store.conn.execute(
                "INSERT INTO nightly_runs (started_ms, trigger) VALUES (?, ?)", (started, trigger)
            ).lastrowid
            or 0
        )
    today = _today(hub)
    check = integrity_check(hub.store.db)
    if check != "ok":
        # Loud, and no backup rotation: a damaged database must never push the last good backup out.
        log.error("hub database integrity check FAILED: %s; restore from a backup (README: Disaster recovery)", check)
        return _finish(
            hub,
            run_id,
            "integrity_failed",
            {"stations_checked": 0, "divergent": 0, "repaired": 0, "overdue": 0},
            {"day": today.isoformat(), "generated_at": iso_from_ms(started), "integrity": check},
        )
    outcome = "ok"
    try:
        with hub.store.transaction():
            refolded = hub.records.refold()
    except sqlite3.DatabaseError as exc:
        log.error("hub database failed while re-checking records: %s; restore from a backup", exc)
        return _finish(
            hub,
            run_id,
            "integrity_failed",
            {"stations_checked": 0, "divergent": 0, "repaired": 0, "overdue": 0},
            {"day": today.isoformat(), "generated_at": iso_from_ms(started), "integrity": str(exc)},
        )
    if refolded:
        log.warning("nightly: %d record(s) did not match their change log and were rebuilt", refolded)
    warnings = deadline_warnings(hub, today)
    report: dict[str, Any] = {
        "day": today.isoformat(),
        "generated_at": iso_from_ms(started),
        "integrity": check,
        "warnings": warnings,
        "statistics": statistics(hub, today),
        "not_seen": not_seen(hub),
        "anti_entropy": anti_entropy_since(hub, since),
        "records_rebuilt": refolded,
        "duplicate_numbers": duplicate_numbers(hub),
    }
    # Before the backup, so tonight's copy no longer holds the tracking hashes whose time is up.
    report["tracking_purged"] = tracking.purge_stale(hub)
    rotated = rotate_backups(hub) if do_backup else None
    report["backup"] = rotated["file"] if rotated else None
    report["backup_blobs"] = rotated["blobs"] if rotated else None
    if rotated and rotated["blobs_damaged"]:
        report["backup_blobs_damaged"] = rotated["blobs_damaged"]  # photos whose files no longer match
    report["compaction"] = compact(hub)
    report["partial_uploads"] = blobindex.drop_abandoned(hub, partial_retention_days)
    ae = report["anti_entropy"]
    figures = {
        "stations_checked": ae["stations_checked"],
        "divergent": ae["divergent"] + int(refolded > 0),
        "repaired": ae["repaired"] + refolded,
        "overdue": len(warnings["red"]),
    }
    return _finish(hub, run_id, outcome, figures, report)


def duplicate_numbers(hub: Hub) -> list[dict[str, object]]:
    """Numbers held by more than one application (possible only after a station's raw copy-back)."""
    rows = hub.store.conn.execute(
        "SELECT number, COUNT(*), GROUP_CONCAT(id) FROM applications GROUP BY number HAVING COUNT(*) > 1"
    ).fetchall()
    return [{"number": n, "count": c, "ids": str(ids).split(",")} for n, c, ids in rows]


def _finish(hub: Hub, run_id: int, outcome: str, figures: dict[str, int], report: dict[str, Any]) -> dict[str, Any]:
    with hub.store.transaction():
        hub.store.conn.execute(
            "UPDATE nightly_runs SET ended_ms=?, outcome=?, figures=? WHERE id=?",
            (hub.clock(), outcome, pack(figures), run_id),
        )
        hub.store.conn.execute(
            "INSERT INTO reports (run, day, report) VALUES (?,?,?)", (run_id, report["day"], pack(report))
        )
    return {**figures, "report": report, "run": run_id, "outcome": outcome}


def runs(hub: Hub, limit: int = 10) -> list[dict[str, object]]:
    rows = hub.store.conn.execute(
        "SELECT id, started_ms, ended_ms, trigger, outcome, figures FROM nightly_runs ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "run": r[0],
            "started": iso_from_ms(r[1]),
            "ended": iso_from_ms(r[2]) if r[2] else None,
            "trigger": r[3],
            "outcome": r[4],
            "figures": unpack(r[5]) if r[5] else None,
        }
        for r in rows
    ]


def report_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    cols = [
        "station",
        "tier",
        "accepted",
        "accepted_today",
        "completed",
        "on_time",
        "on_time_rate",
        "immediate",
        "promised",
        "ratings",
        "satisfaction",
    ]
    w = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for s in report["statistics"]["per_station"]:
        w.writerow(s)
    return out.getvalue()


__all__ = ["backup", "report_csv", "run", "runs", "timedelta"]


def report_text(d: dict[str, Any]) -> str:
    """``sanji hub reconcile`` without ``--json``."""
    r = d["report"]
    if "warnings" not in r:
        return (
            f"夜间任务 {r['generated_at']}  数据库检查失败: {r['integrity']}\n请停机并从备份恢复（见 README 灾难恢复）"
        )
    w = r["warnings"]
    lines = [
        f"夜间任务 {r['generated_at']}  数据库检查: {r['integrity']}",
        f"对账站点 {d['stations_checked']}，发现不一致 {d['divergent']}，已修复 {d['repaired']}",
        f"红色预警（超期）{len(w['red'])} 件，黄色预警（临期）{len(w['yellow'])} 件，容缺材料逾期 "
        f"{len(w['materials_overdue'])} 项",
    ]
    lines += [f"  红 {x['number']} {x['item']} 时限 {x['due_date']}" for x in w["red"][:20]]
    lines += [f"  黄 {x['number']} {x['item']} 时限 {x['due_date']}" for x in w["yellow"][:20]]
    for s in r["statistics"]["per_station"]:
        lines.append(
            f"  {s['station']:<16} 受理 {s['accepted']}（今日 {s['accepted_today']}） 办结 {s['completed']}"
            f" 按时率 {s['on_time_rate'] if s['on_time_rate'] is not None else '-'}"
        )
    if r["not_seen"]:
        lines.append("多日未同步: " + ", ".join(str(x["station"]) for x in r["not_seen"]))
    if r.get("backup"):
        lines.append(f"备份: {r['backup']}（照片 {r.get('backup_blobs') or 0} 张）")
    partial = r.get("partial_uploads") or {}
    if partial.get("dropped"):
        lines.append(
            f"清理中断超过 {partial['retention_days']} 天的照片上传 {partial['dropped']} 个，"
            f"释放 {partial['bytes']} 字节"
        )
    return "\n".join(lines)
