"""Hub-side workflow on the dashboard's application page: the moves, and assigning an on-site inspection.

The application page offers the moves the hub may make from the application's current status: the hub
holds every role (``sync.workflow.MOVE_ACTORS``), so that is exactly ``allowed_moves``, one button per
move with one optional note. A button POSTs to ``/applications/{number}/transition``, which calls
``hub.operations.transition``, the code behind ``sanji hub transition``: whatever the CLI refuses (a
stale page, a move the table does not allow) the dashboard refuses with the same reason, writing
nothing. Approving, denying, refusing and withdrawing ask once more in the browser
(``hub/static/dashboard.js``); without JavaScript the buttons simply submit.

The move to 踏勘 is no plain button, since an inspection needs an inspector: while the item requires one
and the application is under review (or inspecting with every task reported, for a second visit after
整改), a form picks an enrolled, unrevoked field device and an optional due date and POSTs to
``/applications/{number}/inspect`` (``hub.inspection.assign``, as ``sanji hub inspect``).

What the page offers is decided in ``moves``. Like the dashboard's other decisions (``review``), the
change is made by the handler itself on the event loop's thread in its own transaction, not through the
sync handlers' group committer (a group never spans an ``await``, so the two never interleave; nor does
a dashboard transaction: the pages before and after it are read in the read model's thread). The
audit row (operator, move, from→to, the note) is written once the change is committed.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from hub import inspection, operations
from hub.dashboard import data
from hub.dashboard.apps import detail
from hub.dashboard.auth import audit, hub_of, operator, redirect, session_of
from hub.reads import READS
from present.webui import read_form
from replica.errors import Refused
from sync.workflow import Status

MAX_NOTE = 500


def _page_of(number: str) -> str:
    return "/applications/" + quote(number, safe="")


async def _status_now(request: web.Request, number: str) -> str | None:
    return await request.app[READS].run(lambda hub: data.status_now(hub, number))


@operator
async def transition(request: web.Request) -> web.StreamResponse:
    """One workflow move by the hub, exactly as ``sanji hub transition NUMBER --to TO --note NOTE``."""
    hub = hub_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    to = str(form.get("to", "")).strip()[:64]
    note = str(form.get("note", "")).strip()[:MAX_NOTE]
    override = str(form.get("override_reason", "")).strip()[:MAX_NOTE] if to == Status.APPROVED.value else ""
    before = await _status_now(request, number)
    if before is None:
        return await detail(request, number)  # the page's own 404
    moved = f"{before}→{to}" + (f"（未经现场踏勘准予，理由：{override}）" if override else "")
    try:
        operations.transition(
            hub,
            number,
            to,
            note,
            also=lambda: audit(request, "transition", number, detail=moved, reason=note),
            override_reason=override,
            actor=f"区局操作员 {session_of(request).user}",
        )
    except Refused as exc:
        return await detail(request, number, status=400, move_error=f"未能变更办件状态：{exc}", note=note)
    return redirect(f"{_page_of(number)}?done={quote(to)}")


@operator
async def inspect(request: web.Request) -> web.StreamResponse:
    """Assign an on-site inspection, exactly as ``sanji hub inspect NUMBER --inspector DEVICE --due DATE``."""
    hub = hub_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    inspector = str(form.get("inspector", "")).strip()[:64]
    due = str(form.get("due", "")).strip()[:32]
    before = await _status_now(request, number)
    if before is None:
        return await detail(request, number)
    if not inspector:
        return await detail(request, number, status=400, inspect_error="请选择踏勘设备。", due=due)

    def record(out: dict[str, object]) -> None:
        audit(
            request,
            "inspect",
            number,
            detail=f"{before}→{out['status']}; 踏勘设备 {inspector}; 期限 {out['due']}; 任务 {out['task']}",
        )

    try:
        inspection.assign(hub, number, inspector, due or None, also=record)
    except Refused as exc:
        return await detail(
            request, number, status=400, inspect_error=f"未能安排踏勘：{exc}", inspector=inspector, due=due
        )
    return redirect(f"{_page_of(number)}?done=inspect")


def setup(app: web.Application) -> None:
    app.router.add_post("/applications/{number}/transition", transition)
    app.router.add_post("/applications/{number}/inspect", inspect)
