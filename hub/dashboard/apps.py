"""Dashboard pages about applications: search and filters, and one application's full story.

ID numbers and phones are masked everywhere. Seeing a full value is a deliberate act: the operator
gives a reason, the reveal is written to the audit trail with who and why, and only that one response
carries the full values (nothing is remembered, so a reload masks them again).

The page's workflow card (the moves the hub may make, assigning an inspection) is built and handled by
``workflow``.
"""

from __future__ import annotations

from aiohttp import web

from hub.dashboard import data
from hub.dashboard.auth import audit, hub_of, operator, page, refuse, refused, shown
from hub.dashboard.moves import workflow
from hub.reads import READS, ReadHub
from present.paging import page_links
from present.webui import read_form
from replica import listing
from replica.errors import Refused

MIN_REASON = 4


@operator
async def applications(request: web.Request) -> web.StreamResponse:
    q = request.query.get("q", "").strip()[:64]
    station = request.query.get("station", "").strip()[:64]
    status = request.query.get("status", "").strip()
    due = request.query.get("due", "").strip()
    error = ""
    if status and status not in {s for s, _ in data.status_choices()}:
        error, status = "未知的办件状态，已忽略该筛选条件。", ""
    if due not in data.DUE_FILTERS:
        error, due = "未知的时限筛选条件，已忽略。", ""
    older = listing.key_of(request.query.get("after", ""))
    newer = None if older else listing.key_of(request.query.get("before", ""))
    keep = {"q": q, "station": station, "status": status, "due": due}

    def build(hub: ReadHub) -> web.Response:
        found = data.search(hub, q=q, station=station, status=status, due=due, older_than=older, newer_than=newer)
        return page(
            request,
            hub,
            "applications.html",
            rows=found.rows,
            total=found.total,
            error=error,
            filters=keep,
            pages=page_links("/applications", keep, found),
            stations=hub.store.stations(),
            statuses=data.status_choices(),
            due_filters=data.DUE_FILTERS,
            names=data.names(hub),
        )

    return await shown(request, build)


async def detail(
    request: web.Request,
    number: str,
    *,
    reveal: bool = False,
    status: int = 200,
    reveal_error: str = "",
    reason: str = "",
    move_error: str = "",
    note: str = "",
    inspect_error: str = "",
    inspector: str = "",
    due: str = "",
) -> web.StreamResponse:
    """The application page. After a refused workflow step (``workflow``) it shows the reason
    and what the operator typed: the note, or the inspector and due date."""

    def build(hub: ReadHub) -> web.Response:
        try:
            app = data.application(hub, number, reveal=reveal)
        except Refused:
            return refuse(request, hub, 404, f"没有编号为 {number} 的办件。")
        return page(
            request,
            hub,
            "application.html",
            status=status,
            a=app,
            reveal_error=reveal_error,
            reason=reason,
            wf=workflow(request, hub, app),
            move_error=move_error,
            note=note,
            inspect_error=inspect_error,
            inspector=inspector,
            due=due,
        )

    return await shown(request, build)


@operator
async def application(request: web.Request) -> web.StreamResponse:
    return await detail(request, request.match_info["number"])


@operator
async def reveal(request: web.Request) -> web.StreamResponse:
    """Show the full ID number and phone once, after recording who asked and why."""
    hub = hub_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    reason = str(form.get("reason", "")).strip()[:500]
    if len(reason) < MIN_REASON:
        return await detail(
            request,
            number,
            status=400,
            reason=reason,
            reveal_error=f"请填写查看完整信息的理由（至少 {MIN_REASON} 个字），该操作将记入审计日志。",
        )
    if not await request.app[READS].run(lambda rh: data.held(rh, number)):
        return await refused(request, 404, f"没有编号为 {number} 的办件。")
    with hub.store.transaction():
        audit(request, "reveal", number, detail="applicant_id, applicant_phone", reason=reason)
    return await detail(request, number, reveal=True)


def setup(app: web.Application) -> None:
    app.router.add_get("/applications", applications)
    app.router.add_get("/applications/{number}", application)
    app.router.add_post("/applications/{number}/reveal", reveal)
