"""Sync from the staff UI: the status bar's data, "sync now", and "export for USB".

"Sync now" runs the same round as the background loop (``node.client.sync_round``: push, then pull).
Rounds are idempotent at the hub, so one racing the background loop costs bandwidth, not correctness;
a per-app lock still keeps a double click from starting two at once. Export writes the station's
pending batches (and its enrolment claim, for a station never online) to a folder the staff member
names, by default ``DIR/usb-export``, for carrying to the hub by hand.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from node import sync_lock, uplink
from node.ui import form_post, page, safe_back, station_of
from node.ui_status import PROBE, status_context
from replica.errors import Refused, Unreachable
from replica.webui import ago, ms_text, read_form

SYNC_LOCK = web.AppKey("ui_sync_lock", asyncio.Lock)


async def status_json(request: web.Request) -> web.Response:
    """For the status bar's self-refresh (``static/station.js``)."""
    st = station_of(request)
    bar = await status_context(request.app, st, wait=True)
    bar["last_sync_text"] = ago(bar["last_sync_ms"], st.clock())
    bar["last_sync_at"] = ms_text(bar["last_sync_ms"], "%Y-%m-%d %H:%M:%S")
    return web.json_response(bar, headers={"Cache-Control": "no-store"})


@form_post
async def sync_now(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    form = await read_form(request)
    back = safe_back(str(form.get("back", "/")))
    lock = request.app[SYNC_LOCK]
    if lock.locked():
        outcome = "busy"
    else:
        async with lock:
            try:
                result = await sync_lock.sync_round(st)
                request.app[PROBE].note(True)
                # Pages refused or set aside (an answer over the cap, a replay) are not "区局的更新已下载".
                outcome = "refused" if (result.refused and not result.pushed) or result.feed_problems else "ok"
            except Unreachable:
                request.app[PROBE].note(False)
                outcome = "offline"
            except sync_lock.SyncBusy:
                outcome = "busy"  # a CLI sync or the background loop is doing it now
            except Refused:
                outcome = "refused"
    sep = "&" if "?" in back else "?"
    return web.Response(status=303, headers={"Location": f"{back}{sep}sync={outcome}"})


def _default_folder(request: web.Request) -> str:
    return str(station_of(request).folder.resolve() / "usb-export")


async def export_form(request: web.Request) -> web.StreamResponse:
    return await page(request, "export.html", folder=_default_folder(request), result=None, error="")


@form_post
async def export(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    form = await read_form(request)
    raw = str(form.get("folder", "")).strip()
    if not raw:
        return await page(
            request,
            "export.html",
            status=400,
            folder=_default_folder(request),
            result=None,
            error="请填写导出文件夹（如 U 盘的盘符或挂载路径）。",
        )
    folder = Path(raw).expanduser()
    if not folder.is_absolute():
        folder = st.folder.resolve() / folder
    try:
        result = uplink.export(st, folder)
    except OSError as exc:
        return await page(
            request,
            "export.html",
            status=400,
            folder=raw,
            result=None,
            error=f"无法写入 {folder}：{exc.strerror or exc}。请检查 U 盘是否已插好、是否有写权限。",
        )
    except Refused as exc:
        return await page(request, "export.html", status=400, folder=raw, result=None, error=str(exc))
    return await page(request, "export.html", folder=str(folder), result=result, error="")


def setup(app: web.Application) -> None:
    app[SYNC_LOCK] = asyncio.Lock()
    app.router.add_get("/status.json", status_json)
    app.router.add_post("/sync", sync_now)
    app.router.add_get("/export", export_form)
    app.router.add_post("/export", export)
