"""The district's morning report: what the nightly job (``hub/nightly.py``) tells operators.

Deadline warnings (yellow when a promised item is nearly due, red when overdue, 容缺 materials past
their supplement date), daily statistics per station and per tier, satisfaction from ratings,
stations not seen lately, the stations' anti-entropy sessions since the last run, and numbers held
twice. Every part is one indexed query or one aggregate in SQLite: the red and yellow warnings read
the open promised applications due by a day (index ``nightly_open_due``), the materials and ratings
the tables ``hub/nightly_facts.py`` keeps, the statistics the counts triggers keep
(``station_statistics``), the numbers held twice a re-check of what changed
(``hub/nightly_numbers.py``); nothing is unpacked per application.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from replica.ids import iso_from_ms
from sync.identity import mask_name

if TYPE_CHECKING:
    from hub.service import Hub

NEARLY_DUE_WORKING_DAYS = 3
NOT_SEEN_DAYS = 3


def _yellow_horizon(cal: Any, today: date) -> date:
    """The last day at most NEARLY_DUE_WORKING_DAYS working days after ``today`` (the days count
    from the day after, so the horizon only grows with later days: one range of the index)."""
    day = today
    while cal.working_days_between(today, day + timedelta(days=1)) <= NEARLY_DUE_WORKING_DAYS:
        day += timedelta(days=1)
    return day


def deadline_warnings(hub: Hub, today: date) -> dict[str, list[dict[str, object]]]:
    _, cat = hub.catalogue()
    cal = cat.calendar
    red: list[dict[str, object]] = []
    yellow: list[dict[str, object]] = []
    rows = hub.store.promised_open_due_by(_yellow_horizon(cal, today).isoformat())
    for number, station, item, status, name, due in rows:
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
        else:
            yellow.append({**entry, "working_days_left": cal.working_days_between(today, due_day)})
    materials = [
        {"number": number, "station": station, "material": material, "due": due}
        for number, station, material, due in hub.store.materials_due_before(today.isoformat())
    ]
    return {"red": red, "yellow": yellow, "materials_overdue": materials}


def _station_row(code: object, tier: object) -> dict[str, Any]:
    return {
        "station": code,
        "tier": tier,
        "accepted": 0,
        "accepted_today": 0,
        "completed": 0,
        "on_time": 0,
        "immediate": 0,
        "promised": 0,
    }


def statistics(hub: Hub, today: date) -> dict[str, Any]:
    tiers = hub.tiers()
    store = hub.store
    # field devices take no applications; every other station is listed, with or without any
    per_station = {st.code: _station_row(st.code, st.tier) for st in hub.store.stations() if st.tier != "field"}
    # The counts are kept by triggers (hub/schema.py m203_station_statistics); today's acceptances are
    # one day's range of the accepted_at index.
    for station, immediate, closed, on_time, n in store.station_statistics():
        s = per_station.setdefault(str(station), _station_row(station, tiers.get(str(station), "?")))
        s["accepted"] += n
        s["immediate" if immediate else "promised"] += n
        s["completed"] += n if closed else 0
        s["on_time"] += n if on_time else 0
    tomorrow = (today + timedelta(days=1)).isoformat()
    for station, today_n in store.accepted_between(today.isoformat(), tomorrow):
        s = per_station.setdefault(str(station), _station_row(station, tiers.get(str(station), "?")))
        s["accepted_today"] += today_n
    for station, count, total in store.ratings_per_station():
        s = per_station.get(str(station))
        if s is not None:
            s["ratings"], s["rating_sum"] = count, total
    bad = [
        {"station": station, "score": score, "comment": comment}
        for station, score, comment in store.bad_reviews()
        if str(station) in per_station
    ]
    per_tier: dict[str, dict[str, int]] = {}
    for s in per_station.values():
        s["on_time_rate"] = round(s["on_time"] / s["completed"], 3) if s["completed"] else None
        s["satisfaction"] = round(s.pop("rating_sum") / s["ratings"], 2) if s.get("ratings") else None
        s.pop("rating_sum", None)
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
    checked, divergent, repaired, mismatches = hub.store.reconciliations_since(since_ms)
    return {
        "stations_checked": checked,
        "divergent": divergent,
        "repaired": repaired,
        "summary_mismatches": mismatches,
    }


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
