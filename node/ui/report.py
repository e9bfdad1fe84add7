"""Recording an inspection report from the field device's form: ``POST /tasks/{task}/report``.

The uploaded photos and signature are written to a temporary folder inside the device's own folder
(citizens' photos never go to a shared temp directory) and handed to ``node.inspection.report``, the
code ``sanji node report`` runs, so the form refuses exactly what the command refuses and writes
nothing when it does. A refusal shows the form again with the reason and everything typed kept. The
photos and signature that were fine are kept too (``uploads``), so an inspector on site never has
to take a photo twice because a GPS figure was mistyped.

The signature comes either from the drawing pad (a PNG data URL put in a hidden field by
``static/inspect.js``) or, with JavaScript off, from a scanned file. aiohttp reads at most 1 MiB of a
request body by default; this route allows what one report may carry at most (``MAX_PHOTOS`` photos and
a signature, each at the per-blob cap) and answers anything larger with a 413 page saying why.
"""

from __future__ import annotations

import hmac
import re
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from node import inspection
from node.ui import uploads
from node.ui.keys import CSRF, UPLOAD_LIMIT
from node.ui.page import station_of
from node.ui.signin import author_of
from node.ui.tasks import EMPTY_FORM, find_task, task_page
from present.webui import read_form
from protocol.blob import MAX_BLOB_BYTES
from replica.blobstore import BlobStore
from replica.errors import Refused
from sync.inspection import InspectionError, parse_gps
from sync.model import MAX_TEXT, REPORT_RESULTS
from sync.report_flag import flag_text, lines_answered_no

MAX_UPLOAD_BYTES = (inspection.MAX_PHOTOS + 1) * MAX_BLOB_BYTES + 1024 * 1024
_CHECK = re.compile(r"check(\d{1,3})")


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


async def submit(request: web.Request) -> web.StreamResponse:
    """Read the multipart body under this route's own limit, then record (the CSRF token checked first)."""
    limit = request.app[UPLOAD_LIMIT]
    size = request.content_length
    if size is not None and size > limit:
        return await _too_large(request, limit, size)
    big = request.clone(client_max_size=limit)
    try:
        await read_form(big)
    except web.HTTPRequestEntityTooLarge:
        return await _too_large(request, limit, None)
    return await _record(big)


async def _too_large(request: web.Request, limit: int, size: int | None) -> web.Response:
    sent = f"本次提交共 {_mib(size)}，" if size else ""
    return await task_page(
        request,
        request.match_info["task"],
        status=413,
        form=dict(EMPTY_FORM),
        general=f"照片太大，报告未保存：{sent}超过单次提交 {_mib(limit)} 的上限。"
        f"每张照片不超过 {MAX_BLOB_BYTES // (1024 * 1024)} MiB、"
        f"最多 {inspection.MAX_PHOTOS} 张；请降低分辨率或减少照片后重新提交。",
    )


def _values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        **EMPTY_FORM,
        **{k: str(form.get(k, "")).strip() for k in ("result", "lat", "lon", "acc")},
    }
    values["findings"] = str(form.get("findings", "")).replace("\r\n", "\n").strip()  # browsers send CRLF
    values["checks"] = {
        m.group(1): str(v) for k, v in form.items() if (m := _CHECK.fullmatch(k)) and str(v) in ("yes", "no")
    }
    return values


def _gps_text(values: dict[str, Any]) -> str | None:
    if not (values["lat"] or values["lon"] or values["acc"]):
        return None
    return f"{values['lat']},{values['lon']}" + (f",{values['acc']}" if values["acc"] else "")


def _hints(values: dict[str, Any], gps: str | None) -> dict[str, str]:
    """Next to each field, in the inspector's words, what the refusal was about."""
    errors: dict[str, str] = {}
    if values["result"] not in REPORT_RESULTS:
        errors["result"] = "请选择踏勘结论：合格、不合格或需整改"
    if not values["findings"]:
        errors["findings"] = "请填写现场踏勘情况"
    elif len(values["findings"]) > MAX_TEXT:
        errors["findings"] = f"踏勘情况过长（最多 {MAX_TEXT} 字）"
    if gps is not None:
        if not (values["lat"] and values["lon"]):
            errors["gps"] = "请同时填写纬度和经度（或三项都不填）"
        else:
            try:
                parse_gps(gps)
            except InspectionError:
                errors["gps"] = "定位无效：纬度应在 -90 至 90 之间，经度在 -180 至 180 之间，精度为不小于 0 的米数"
    return errors


def _confirmed(values: dict[str, Any], form: Any) -> None:
    """A 合格 report with lines answered 否 is saved only once the inspector confirms it (the browser
    asks, static/inspect.js; without JavaScript the form comes back with a box to tick)."""
    no = lines_answered_no(values["result"], {n: v == "yes" for n, v in values["checks"].items()})
    if no and str(form.get("confirm_no", "")) != "1":
        values["confirm_no_needed"] = no
        raise Refused(f"{flag_text(no)}。请核对核查清单；确认无误请勾选「确认保存」后再提交", code="confirm_checks")


async def _record(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    task_id = request.match_info["task"]
    form = await read_form(request)
    values = _values(form)
    gps = _gps_text(values)
    # As ``form_post`` checks, but a stale page (the device restarted while the form was being filled)
    # gets the form back with its text and a fresh token instead of an error page. Files are not kept:
    # a request that fails this check may come from another site and must not write anything here.
    sent = str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")
    if not hmac.compare_digest(sent.encode(), request.app[CSRF].encode()):
        return await task_page(
            request,
            task_id,
            status=403,
            form=values,
            general="页面已失效（安全校验未通过），报告未保存。已填写的文字仍在下方，请重新选择照片和签名后再提交。",
        )
    staging = BlobStore(st.folder / uploads.STAGING)
    uploads.sweep(staging)
    names: dict[str, str] = {}
    photos: list[Path] = []
    signature: Path | None = None
    with tempfile.TemporaryDirectory(prefix=uploads.UPLOAD_PREFIX, dir=st.folder) as tmp:
        try:
            photos = uploads.photos(form, Path(tmp), names, staging)
            signature = uploads.signature(form, Path(tmp), names, staging)
            _confirmed(values, form)
            inspection.report(
                st,
                task_id,
                result=values["result"],
                findings=[values["findings"]],
                gps=gps,
                photos=photos,
                signature=signature,
                checks=[f"{n}={v}" for n, v in sorted(values["checks"].items(), key=lambda x: int(x[0]))],
                author=author_of(request),
            )
        except Refused as exc:
            reason = str(exc)
            for path, name in names.items():
                reason = reason.replace(path, name)
            for path in [*photos, *([signature] if signature else [])]:
                reason = reason.replace(str(path), "已保留的文件")
            values["kept_photos"] = uploads.keep(staging, photos)
            kept_sig = uploads.keep(staging, [signature] if signature else [])
            values["kept_signature"] = kept_sig[0] if kept_sig else None
            task = find_task(st, task_id)
            done = task is not None and task["status"] == "done"
            general = (
                f"该任务已有踏勘报告，不能再次提交（{reason}）"
                if done
                else f"未能保存踏勘报告，本次未保存任何内容，已填写的内容仍在下方：{reason}"
            )
            return await task_page(
                request, task_id, status=409 if done else 400, form=values, errors=_hints(values, gps), general=general
            )
    for path in [*photos, *([signature] if signature else [])]:
        if path.parent.parent == staging.root:
            staging.delete(path.parent.name + path.name)
    return web.Response(status=303, headers={"Location": f"/tasks/{task_id}?done=report"})


def setup(app: web.Application) -> None:
    app[UPLOAD_LIMIT] = MAX_UPLOAD_BYTES
    app.router.add_post("/tasks/{task}/report", submit)
