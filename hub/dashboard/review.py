"""Dashboard pages where an operator decides: conflicts (confirm or override) and quarantine
(release or reject). Each decision is committed together with its audit row."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import conflict_resolution, quarantine_review
from hub.dashboard import data
from hub.dashboard.auth import audit, hub_of, operator, page, redirect, session_of
from hub.operations import conflicts as list_conflicts
from present.webui import RULES, field_label, read_form
from replica.errors import Refused

NOTICES = {
    "confirmed": "已确认：保留系统按规则采用的值。",
    "overridden": "已改判：区局的修改已作为一条新变更下发相关站点。",
    "released": "已放行：区局已核对并以一条新变更写入、下发。",
    "rejected": "已驳回：该变更不会被应用，理由已记录。",
}


def _conflict_rows(request: web.Request, show_all: bool) -> list[dict[str, Any]]:
    hub = hub_of(request)
    who = data.names(hub)
    rows = []
    for c in list_conflicts(hub, include_resolved=show_all):
        field = str(c["field"])
        label = field_label(field)
        values = [
            {**v, "who": who.get(str(v["origin"]), v["origin"]), "ms": int(v["hlc"]) >> 16}  # type: ignore[call-overload]
            for v in c["values"]
        ]  # type: ignore[attr-defined]
        rows.append({**c, "label": label, "values": values, "rule_text": RULES.get(str(c["rule"]), c["rule"])})
    # Open ones first, then newest.
    return sorted(rows, key=lambda r: (r["resolved"], -max(v["ms"] for v in r["values"])))


def _conflicts_page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    show_all = request.query.get("all") == "1"
    return page(
        request,
        "conflicts.html",
        status=status,
        rows=_conflict_rows(request, show_all),
        show_all=show_all,
        error=error,
        notice=NOTICES.get(request.query.get("done", ""), ""),
    )


@operator
async def conflicts_page(request: web.Request) -> web.StreamResponse:
    return _conflicts_page(request)


@operator
async def resolve(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    cid = request.match_info["id"]
    action = request.match_info["action"]
    user = session_of(request).user
    try:
        if action == "confirm":
            out = conflict_resolution.confirm(hub, cid, by=user)
        else:
            out = conflict_resolution.override(hub, cid, by=user)
    except Refused as exc:
        return _conflicts_page(request, status=409, error=str(exc))
    with hub.store.transaction():
        audit(request, f"conflict_{action}", cid, detail=str(out["resolution"]))
    return redirect("/conflicts?done=" + ("confirmed" if action == "confirm" else "overridden"))


def _quarantine_page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    hub = hub_of(request)
    rows = quarantine_review.quarantine_rows(hub, include_closed=request.query.get("all") == "1")
    return page(
        request,
        "quarantine.html",
        status=status,
        rows=rows,
        who=data.names(hub),
        error=error,
        show_all=request.query.get("all") == "1",
        notice=NOTICES.get(request.query.get("done", ""), ""),
    )


@operator
async def quarantine_page(request: web.Request) -> web.StreamResponse:
    return _quarantine_page(request)


@operator
async def settle(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    action = request.match_info["action"]
    try:
        qid = int(request.match_info["id"])
    except ValueError:
        return _quarantine_page(request, status=404, error="隔离记录编号无效。")
    form = await read_form(request)
    text = str(form.get("reason", "")).strip()[:500]
    user = session_of(request).user

    def audited(detail: str = "") -> None:
        audit(request, f"quarantine_{action}", str(qid), detail=detail, reason=text)

    try:
        # The audit row commits with the decision, and names the hub change a release wrote.
        if action == "release":
            quarantine_review.release(
                hub,
                qid,
                by=user,
                note=text,
                also=lambda made: audited(f"区局以新变更 {made.origin}/{made.epoch}/{made.seq} 写入"),
            )
        else:
            quarantine_review.reject(hub, qid, by=user, reason=text, also=audited)
    except Refused as exc:
        return _quarantine_page(request, status=409 if action == "release" else 400, error=str(exc))
    return redirect("/quarantine?done=" + ("released" if action == "release" else "rejected"))


def setup(app: web.Application) -> None:
    app.router.add_get("/conflicts", conflicts_page)
    app.router.add_post(r"/conflicts/{id}/{action:confirm|override}", resolve)
    app.router.add_get("/quarantine", quarantine_page)
    app.router.add_post(r"/quarantine/{id}/{action:release|reject}", settle)
