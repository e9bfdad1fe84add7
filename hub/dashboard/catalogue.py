"""The catalogue page: the release stations work from, and publishing a new one in two steps.

Upload a file, see exactly what it changes against the current release (``diff_catalogues``), then
publish. The uploaded document waits in ``dash_drafts`` between the two steps, tied to the release it
was compared with, so a publish never goes out on the strength of a diff against an older release.
The page is read and rendered in the read model's thread; the draft and the release are written on
the loop.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from aiohttp import web

from hub.dashboard.auth import audit, hub_of, operator, operators, page, redirect, session_of, shown
from hub.reads import ReadHub
from present.webui import read_form
from replica.errors import Refused
from sync.catalogue import Catalogue, CatalogueError, diff_catalogues, parse_catalogue

MAX_UPLOAD = 2 * 1024 * 1024
ITEM_FIELD_NAMES = {
    "name": "名称",
    "category": "类别",
    "kind": "办件类型",
    "legal_days": "法定时限",
    "promised_days": "承诺时限",
    "accepted_at": "受理层级",
    "decided_at": "决定层级",
    "inspection_required": "是否踏勘",
    "materials": "材料清单",
    "code": "编码",
}


async def _catalogue_page(
    request: web.Request, *, status: int = 200, error: str = "", preview: dict[str, Any] | None = None
) -> web.StreamResponse:
    return await shown(request, lambda hub: _render(request, hub, status, error, preview))


def _render(
    request: web.Request, hub: ReadHub, status: int, error: str, preview: dict[str, Any] | None
) -> web.Response:
    version, cat = hub.catalogue()
    notice = ""
    if request.query.get("done") == "published":
        notice = f"已发布事项目录 v{version}，各站点下次同步时将收到新目录。"
    return page(
        request,
        hub,
        "catalogue.html",
        status=status,
        version=version,
        cat=cat,
        releases=[asdict(r) for r in hub.reads.releases(20)],
        error=error,
        preview=preview,
        notice=notice,
        field_names=ITEM_FIELD_NAMES,
    )


@operator
async def catalogue_page(request: web.Request) -> web.StreamResponse:
    return await _catalogue_page(request)


def _parse_upload(raw: bytes, next_version: int) -> tuple[dict[str, Any], Catalogue]:
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(f"文件不是有效的 UTF-8 JSON：{exc}") from exc
    if not isinstance(doc, dict):
        raise Refused("目录文件的顶层必须是一个 JSON 对象")
    # The hub numbers and dates releases itself; what the file says about them does not matter.
    body = {k: v for k, v in doc.items() if k not in ("issued_at", "expires_at")}
    body["version"] = next_version
    try:
        return body, parse_catalogue(body)
    except CatalogueError as exc:
        raise Refused(f"目录文件有误（{exc}），未发布任何内容") from exc


@operator
async def preview(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    form = await read_form(request)
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
        return await _catalogue_page(request, status=400, error="请选择要发布的目录文件（JSON）。")
    raw = upload.file.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        return await _catalogue_page(request, status=413, error="目录文件超过 2 MB，请检查文件是否正确。")
    version, current = hub.catalogue()
    try:
        body, new = _parse_upload(raw, version + 1)
    except Refused as exc:
        return await _catalogue_page(request, status=400, error=str(exc))
    with hub.store.transaction():
        draft = operators(hub).add_draft(
            session_of(request).user,
            version,
            json.dumps(body, ensure_ascii=False),
            str(upload.filename)[:200],
            hub.clock(),
        )
    diff = diff_catalogues(current, new)
    warn = (
        ""
        if new.district_code == hub.hub_id
        else (f"注意：文件中的区划代码 {new.district_code} 与本枢纽 {hub.hub_id} 不一致。")
    )
    return await _catalogue_page(
        request,
        preview={
            "draft": draft,
            "diff": diff,
            "new": new,
            "old": current,
            "filename": upload.filename,
            "warning": warn,
            "unchanged": not any(diff[k] for k in diff if k not in ("from_version", "to_version", "changed_fields")),
        },
    )


@operator
async def publish(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    form = await read_form(request)
    try:
        draft_id = int(str(form.get("draft", "")))
    except ValueError:
        return await _catalogue_page(request, status=400, error="发布请求无效，请重新上传目录文件。")
    row = operators(hub).draft(draft_id)
    if row is None:
        return await _catalogue_page(request, status=404, error="该待发布目录已不存在（可能已发布），请重新上传。")
    version, _ = hub.catalogue()
    if row.base_version != version:
        return await _catalogue_page(
            request, status=409, error=(f"预览之后目录已更新为 v{version}，差异已不准确；请重新上传并核对后再发布。")
        )
    try:
        new_version = hub.publish(json.loads(row.doc))
    except Refused as exc:
        return await _catalogue_page(request, status=400, error=str(exc))
    with hub.store.transaction():
        operators(hub).drop_draft(draft_id)
        audit(request, "publish", f"v{new_version}", detail=row.filename)
    return redirect("/catalogue?done=published")


def setup(app: web.Application) -> None:
    app.router.add_get("/catalogue", catalogue_page)
    app.router.add_post("/catalogue/preview", preview)
    app.router.add_post("/catalogue/publish", publish)
