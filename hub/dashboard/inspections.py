"""On-site inspections (现场踏勘) on the dashboard: on an application's page with the photos they carry,
and the list of them all across applications (``/inspections``, 踏勘 in the header).

For every task of an application the page shows who inspects, when it was assigned and is due, and
the report once it came: the result, the findings, the checklist, the GPS position (its implausibility
flag highlighted), when it was recorded, the photos as thumbnails and the signature.

Photos and signatures are served by ``GET /applications/{number}/blobs/{sha256}``, to signed-in
operators only, and only for a blob that a report of *that* application names: any other address
answers 404, whether or not the hub holds the blob, so the route cannot be used to fetch arbitrary
files or to learn which ones exist. The content type comes from the file's first bytes (JPEG and PNG
are shown inline; anything else is offered as a download), never from what a station said, and is
sent with ``nosniff`` and a private cache header. A blob the hub does not hold yet is shown as
"等待上传" (awaiting upload) instead of a broken image.

The list has one row per task, newest first, from :func:`hub.inspection.list_inspections` (the same rows
``sanji hub inspections`` prints): the application (linking to its page), the item, the field device,
when the task was assigned and is due (red when overdue), its state, the report's result, how many
photos it names and how many of its files the hub still lacks. Filter links narrow it to open tasks
(``?open=1``), overdue ones (``?overdue=1``) or reports still missing files (``?missing=1``, where the
overview's missing-files figure links). Nothing about the citizen appears there.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from hub import blobindex
from hub.dashboard.auth import operator, page, refuse, shown
from hub.inspection import LIMIT, RESULT_LABELS, TASK_LABELS, assigned, list_inspections, tasks_of
from hub.operations import find_application
from protocol.blob import is_sha256_hex
from replica.errors import Refused
from sync.inspection import GPS_UNKNOWN_ACCURACY
from sync.report_flag import flag_text, lines_answered_no

if TYPE_CHECKING:
    from hub.reads import ReadHub as Hub  # read in the read model's thread

log = logging.getLogger("sanji.hub.dashboard")

JPEG, PNG, OTHER = "image/jpeg", "image/png", "application/octet-stream"
# Content-addressed: the bytes behind an address never change, so the browser may keep them a while,
# but only for this operator (never a shared proxy).
BLOB_CACHE = "private, max-age=3600"


def sniff(head: bytes) -> str:
    """The content type of a blob, from its magic bytes alone."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return OTHER


def blob_url(number: str, sha: str) -> str:
    return f"/applications/{quote(number, safe='')}/blobs/{sha}"


def _reports(hub: Hub, app_id: str) -> list[tuple[str, dict[str, object], dict[str, object]]]:
    """(task id, task fields, report fields or {}) for every task of the application, oldest first."""
    return [(task_id, task, hub.records.values("report", task_id)) for task_id, task in tasks_of(hub, app_id)]


def referenced(hub: Hub, app_id: str) -> set[str]:
    """Every blob a report of this application names."""
    return {sha for _, _, report in _reports(hub, app_id) for sha in blobindex.blobs_of(report)}


def _blob(hub: Hub, number: str, sha: str, label: str) -> dict[str, Any]:
    held = blobindex.held(hub, sha)
    kind = ""
    if held:
        with blobindex.store_of(hub).path(sha).open("rb") as fh:
            kind = sniff(fh.read(16))
    return {
        "sha": sha,
        "short": sha[:12],
        "held": held,
        "image": kind in (JPEG, PNG),
        "url": blob_url(number, sha),
        "label": label,
    }


def _gps(report: dict[str, object]) -> dict[str, Any] | None:
    gps = report.get("gps")
    if not isinstance(gps, list) or len(gps) < 2:
        return None
    accuracy = float(gps[2]) if len(gps) > 2 else GPS_UNKNOWN_ACCURACY
    return {
        "lat": float(gps[0]),
        "lon": float(gps[1]),
        "accuracy": None if accuracy == GPS_UNKNOWN_ACCURACY else accuracy,
        "flag": str(report.get("gps_flag") or ""),
    }


def inspections(hub: Hub, app_id: str, number: str, who: dict[str, str]) -> list[dict[str, Any]]:
    """Every task of the application with its report, shaped for ``application.html``."""
    out = []
    for task_id, task, report in _reports(hub, app_id):
        assigned_at, assigned_by = assigned(hub, task_id)
        inspector = str(task.get("inspector") or "")
        status = str(task.get("status") or "")
        entry: dict[str, Any] = {
            "task": task_id,
            "inspector": inspector,
            "inspector_name": who.get(inspector, ""),
            "assigned_at": assigned_at,
            "assigned_by": who.get(assigned_by, assigned_by),
            "due": task.get("due") or "",
            "status": status,
            "status_label": TASK_LABELS.get(status, status or "—"),
            "report": None,
        }
        if report:
            order = [str(line) for line in task.get("checklist") or []]  # type: ignore[attr-defined]
            results = report.get("checklist")
            results = results if isinstance(results, dict) else {}
            lines = [(line, bool(results[line])) for line in order if line in results]
            lines += [(str(line), bool(ok)) for line, ok in results.items() if line not in order]
            photos = [p for p in report.get("photos") or [] if isinstance(p, str)]  # type: ignore[attr-defined]
            signature = report.get("signature")
            blobs = [_blob(hub, number, sha, f"现场照片 {i}") for i, sha in enumerate(photos, 1)]
            sig = _blob(hub, number, signature, "签名") if isinstance(signature, str) and signature else None
            result = str(report.get("result") or "")
            entry["report"] = {
                "result": result,
                "result_label": RESULT_LABELS.get(result, result or "—"),
                "findings": [f for f in str(report.get("findings") or "").split("\n") if f.strip()],
                "checklist": lines,
                # a pass some checks contradict (sync/report_flag.py); counted again for older reports
                "check_flag": str(report.get("check_flag") or "")
                or flag_text(lines_answered_no(result, {line: ok for line, ok in lines})),
                "gps": _gps(report),
                "recorded_at": report.get("recorded_at") or "",
                "photos": blobs,
                "signature": sig,
                "missing": sum(1 for b in [*blobs, *([sig] if sig else [])] if not b["held"]),
                "total": len(blobs) + (1 if sig else 0),
            }
        out.append(entry)
    return out


@operator
async def blob(request: web.Request) -> web.StreamResponse:
    """A photo or signature of one of this application's reports, to a signed-in operator. Found,
    read from disk and checked in the read model's thread: a photo is megabytes to hash."""
    return await shown(request, lambda hub: _blob_response(request, hub))


def _blob_response(request: web.Request, hub: Hub) -> web.Response:
    number, sha = request.match_info["number"], request.match_info["sha256"]
    not_here = "该办件的踏勘报告中没有这个文件。"
    try:
        app_id = find_application(hub, number)
    except Refused:
        return refuse(request, hub, 404, f"没有编号为 {number} 的办件。")
    if not is_sha256_hex(sha) or sha not in referenced(hub, app_id):
        return refuse(request, hub, 404, not_here)
    if not blobindex.held(hub, sha):
        return refuse(request, hub, 404, "该文件尚未从踏勘设备上传到区局（等待上传）。")
    data = blobindex.store_of(hub).read(sha)
    if hashlib.sha256(data).hexdigest() != sha:
        log.error("blob %s does not hash to its name; the hub's copy is damaged", sha)
        return refuse(request, hub, 500, "区局保存的该文件已损坏，请让踏勘设备重新上传或从备份恢复。")
    kind = sniff(data[:16])
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": BLOB_CACHE,
        "ETag": f'"{sha}"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Referrer-Policy": "no-referrer",
    }
    if kind == OTHER:
        headers["Content-Disposition"] = f'attachment; filename="{sha[:16]}.bin"'
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type=kind, headers=headers)


# (query parameter, tab label); "" is the whole list.
FILTERS = (("", "全部"), ("open", "待踏勘"), ("overdue", "逾期"), ("missing", "缺照片"))


@operator
async def inspection_list(request: web.Request) -> web.StreamResponse:
    picked = next((key for key, _ in FILTERS[1:] if request.query.get(key) == "1"), "")

    def build(hub: Hub) -> web.Response:
        rows = list_inspections(
            hub,  # a ReadHub reads as the Hub does
            open_only=picked == "open",
            overdue_only=picked == "overdue",
            missing_only=picked == "missing",
            limit=LIMIT,
        )
        return page(
            request,
            hub,
            "inspections.html",
            rows=rows,
            shown=picked,
            filters=FILTERS,
            limit=LIMIT,
            results=RESULT_LABELS,
            task_labels=TASK_LABELS,
        )

    return await shown(request, build)


def setup(app: web.Application) -> None:
    app.router.add_get("/applications/{number}/blobs/{sha256}", blob)
    app.router.add_get("/inspections", inspection_list)
