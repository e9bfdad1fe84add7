"""A field device's photos and signature scans on its own screens: the recorded report as shown
(``report_view``), whether its files have reached the hub, and ``GET /blobs/{sha}``.

A blob is served only when a report on this device names it (``blob_refs``) and its file is still here
(it is deleted once the hub holds it and the retention period has passed, ``node/purge.py``). Its
content type is sniffed from its first bytes, JPEG or PNG, else ``application/octet-stream`` sent as an
attachment; ``nosniff`` and a sandboxing CSP go with it, so a file that is not a picture can do nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import blobs
from node.station import Station
from node.store import HELD_SQL
from node.ui.page import station_of
from sync.inspection import GPS_UNKNOWN_ACCURACY

RESULT_LABELS = {"pass": "合格", "fail": "不合格", "rectify": "需整改"}


def _blob_states(st: Station, shas: list[str]) -> dict[str, str]:
    """pending (not yet at the hub) | held (the hub confirmed it) | purged (held, local copy deleted)."""
    waiting = {sha for sha, _ in blobs.pending(st)}
    out = {}
    for sha in shas:
        row = st.conn.execute("SELECT purged_ms FROM blobs WHERE sha256=?", (sha,)).fetchone()
        out[sha] = "pending" if sha in waiting else "purged" if row is not None and row[0] is not None else "held"
    return out


def _record_receipted(st: Station, task_id: str) -> bool:
    """Whether the hub has signed for every change of this device to the report and its task."""
    rows = st.conn.execute(
        "SELECT epoch, seq FROM changes WHERE origin=? AND rid=? AND entity IN ('report', 'task')", (st.code, task_id)
    ).fetchall()
    return bool(rows) and all(
        st.conn.execute(
            f"SELECT 1 FROM outbox WHERE state IN {HELD_SQL} AND epoch=? AND first_seq<=? AND last_seq>=?",
            (epoch, seq, seq),
        ).fetchone()
        is not None
        for epoch, seq in rows
    )


def report_view(st: Station, task: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded report of a task, ready to show, or None when there is none yet."""
    vals = st.records.values("report", str(task["task"]))
    if not vals.get("result"):
        return None
    answers = vals.get("checklist") if isinstance(vals.get("checklist"), dict) else {}
    assert isinstance(answers, dict)
    lines = [str(x) for x in task["checklist"]]
    checklist = [(line, answers.get(line)) for line in lines] + [(k, v) for k, v in answers.items() if k not in lines]
    gps = vals.get("gps") if isinstance(vals.get("gps"), list) else None
    photos = [str(s) for s in vals.get("photos") or []]  # type: ignore[attr-defined]
    signature = str(vals.get("signature") or "")
    states = _blob_states(st, [*photos, *([signature] if signature else [])])
    return {
        "result": vals["result"],
        "result_label": RESULT_LABELS.get(str(vals["result"]), str(vals["result"])),
        "findings": vals.get("findings", ""),
        "recorded_at": vals.get("recorded_at", ""),
        "checklist": checklist,
        "gps": gps,
        "gps_unknown_acc": bool(gps) and gps[2] == GPS_UNKNOWN_ACCURACY,  # type: ignore[index]
        "gps_flag": vals.get("gps_flag", ""),
        "check_flag": vals.get("check_flag", ""),
        "photos": photos,
        "signature": signature,
        "states": states,
        "waiting": sum(1 for s in states.values() if s == "pending"),
        "receipted": _record_receipted(st, task["task"]),
    }


def sniff(head: bytes) -> str:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return "application/octet-stream"


async def blob(request: web.Request) -> web.StreamResponse:
    """A photo or signature scan that a report on this device names, from the local store."""
    st = station_of(request)
    sha = request.match_info["sha"]
    store = blobs.store_of(st)
    named = st.conn.execute("SELECT 1 FROM blob_refs WHERE sha256=? LIMIT 1", (sha,)).fetchone()
    if named is None or not store.has(sha):
        return web.Response(
            status=404,
            text="本机没有该照片（不属于本机的踏勘报告，或已在送达区局后按期清除）",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )
    data = store.read(sha)
    kind = sniff(data[:8])
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Referrer-Policy": "no-referrer",
        "Content-Disposition": "inline" if kind != "application/octet-stream" else "attachment",
    }
    return web.Response(body=data, content_type=kind, headers=headers)
