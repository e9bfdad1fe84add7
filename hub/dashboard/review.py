"""Dashboard pages where an operator decides: conflicts (confirm or override) and quarantine
(release or reject). Each decision is committed together with its audit row, on the loop; the lists
are read and rendered in the read model's thread."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import conflict_resolution, quarantine_review, review_lists
from hub.dashboard import data
from hub.dashboard.auth import audit, hub_of, operator, page, redirect, session_of, shown
from hub.reads import ReadHub
from present.paging import page_links
from present.webui import RULES, field_label, read_form
from replica.errors import Refused
from replica.listing import key_of
from sync.change import Change

NOTICES = {
    "confirmed": "已确认：保留系统按规则采用的值。",
    "overridden": "已改判：区局的修改已作为一条新变更下发相关站点。",
    "released": "已放行：区局已核对并以一条新变更写入、下发。",
    "rejected": "已驳回：该变更不会被应用，理由已记录。",
}


def _paging(request: web.Request) -> dict[str, Any]:
    """The list's filters and keyset from the query string (anything malformed is the first page)."""
    older = key_of(request.query.get("after", ""))
    return {
        "show_all": request.query.get("all") == "1",
        "station": request.query.get("station", "").strip()[:64],
        "older": older,
        "newer": None if older else key_of(request.query.get("before", "")),
    }


def _links(path: str, paging: dict[str, Any], found: review_lists.Listed) -> dict[str, str]:
    return page_links(path, {"all": "1" if paging["show_all"] else "", "station": paging["station"]}, found)


def _conflict_rows(who: dict[str, str], found: review_lists.Listed) -> list[dict[str, Any]]:
    rows = []
    for c in found.rows:
        field = str(c["field"])
        label = field_label(field)
        values = [
            {**v, "who": who.get(str(v["origin"]), v["origin"]), "ms": int(v["hlc"]) >> 16}  # type: ignore[call-overload]
            for v in c["values"]
        ]  # type: ignore[attr-defined]
        rows.append({**c, "label": label, "values": values, "rule_text": RULES.get(str(c["rule"]), c["rule"])})
    return rows


async def _conflicts_page(request: web.Request, *, status: int = 200, error: str = "") -> web.StreamResponse:
    paging = _paging(request)

    def build(hub: ReadHub) -> web.Response:
        found = review_lists.conflicts(hub, **paging)
        who = data.names(hub)
        return page(
            request,
            hub,
            "conflicts.html",
            status=status,
            rows=_conflict_rows(who, found),
            total=found.total,
            groups=found.groups,
            station=paging["station"],
            who=who,
            pages=_links("/conflicts", paging, found),
            show_all=paging["show_all"],
            error=error,
            notice=NOTICES.get(request.query.get("done", ""), ""),
        )

    return await shown(request, build)


@operator
async def conflicts_page(request: web.Request) -> web.StreamResponse:
    return await _conflicts_page(request)


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
        return await _conflicts_page(request, status=409, error=str(exc))
    with hub.store.transaction():
        audit(request, f"conflict_{action}", cid, detail=str(out["resolution"]))
    return redirect("/conflicts?done=" + ("confirmed" if action == "confirm" else "overridden"))


async def _quarantine_page(request: web.Request, *, status: int = 200, error: str = "") -> web.StreamResponse:
    paging = _paging(request)

    def build(hub: ReadHub) -> web.Response:
        found = review_lists.quarantine(hub, **paging)
        return page(
            request,
            hub,
            "quarantine.html",
            status=status,
            rows=found.rows,
            total=found.total,
            groups=found.groups,
            station=paging["station"],
            pages=_links("/quarantine", paging, found),
            who=data.names(hub),
            error=error,
            show_all=paging["show_all"],
            notice=NOTICES.get(request.query.get("done", ""), ""),
        )

    return await shown(request, build)


@operator
async def quarantine_page(request: web.Request) -> web.StreamResponse:
    return await _quarantine_page(request)


@operator
async def settle(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    action = request.match_info["action"]
    try:
        qid = int(request.match_info["id"])
    except ValueError:
        return await _quarantine_page(request, status=404, error="隔离记录编号无效。")
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
                also=lambda made: audited(_released_as(hub.hub_id, made)),
            )
        else:
            quarantine_review.reject(hub, qid, by=user, reason=text, also=audited)
    except Refused as exc:
        return await _quarantine_page(request, status=409 if action == "release" else 400, error=str(exc))
    return redirect("/quarantine?done=" + ("released" if action == "release" else "rejected"))


def _released_as(hub_id: str, made: Change) -> str:
    """The audit's words for a release: a new hub change, or (a never-judged sealed change,
    hub/quarantine_review.py) the station's own change applied as it was sent."""
    where = f"{made.origin}/{made.epoch}/{made.seq}"
    return f"区局以新变更 {where} 写入" if made.origin == hub_id else f"按站点原样应用变更 {where}"


def setup(app: web.Application) -> None:
    app.router.add_get("/conflicts", conflicts_page)
    app.router.add_post(r"/conflicts/{id}/{action:confirm|override}", resolve)
    app.router.add_get("/quarantine", quarantine_page)
    app.router.add_post(r"/quarantine/{id}/{action:release|reject}", settle)
