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

Like the dashboard's other decisions (``dashboard_review``), the change is made by the handler itself
on the event loop's thread in its own transaction, not through the sync handlers' group committer (a
group never spans an ``await``, so the two never interleave). The audit row (operator, move, from→to,
the note) is written once the change is committed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from hub import dashboard_data as data
from hub import inspection, operations
from hub.dashboard_apps import detail
from hub.dashboard_auth import audit, hub_of, operator, redirect, session_of
from replica import approval
from replica.errors import Refused
from replica.webui import read_form, status_label
from sync.inspection import DEFAULT_TASK_DAYS, TASK_DONE
from sync.workflow import MOVE_LABELS, Move, Status, allowed_moves, next_status

MAX_NOTE = 500
# Moves that fix the outcome or close the file ask once more in the browser.
CONFIRM = {
    Move.APPROVE: "确认准予许可？决定将下发受理站点，作出后不能撤回或改判。",
    Move.DENY: "确认作出不予许可决定？决定将下发受理站点，作出后不能撤回或改判。",
    Move.REJECT: "确认不予受理？办件将就此办结。",
    Move.WITHDRAW: "确认撤回该办件？办件将就此办结。",
}
DANGER = {Move.DENY, Move.REJECT, Move.WITHDRAW}


def field_devices(request: web.Request) -> list[dict[str, str]]:
    """Field devices an inspection may go to: enrolled (they hold keys) and not revoked."""
    return [
        {"code": s.code, "name": s.name}
        for s in hub_of(request).store.stations()
        if s.tier == "field" and s.sign_pub is not None and not s.revoked
    ]


def notice(done: str) -> str:
    """The line shown after a successful step (``?done=``); anything else shows nothing."""
    if done == "inspect":
        return "已安排现场踏勘：任务将随下次同步下发踏勘设备，踏勘期间办件计时暂停。"
    if done == "supplemented":  # hub/dashboard_supplement.py
        return "已登记补交材料，将随下次同步下发受理站点。"
    if done in {s.value for s in Status}:
        return f"办件状态已变更为「{status_label(done)}」，将随下次同步下发相关站点。"
    return ""


def workflow(request: web.Request, app: dict[str, Any]) -> dict[str, Any]:
    """What the workflow card shows for one application (``dashboard_data.application``'s dict)."""
    done = notice(request.query.get("done", "")) if request.method == "GET" else ""
    try:
        current = Status(str(app.get("status") or ""))
    except ValueError:
        return {"moves": [], "inspect": None, "open_task": False, "notice": done}
    immediate = app["fields"].get("kind") == "immediate"
    moves = []
    for move in allowed_moves(current, immediate=immediate):
        if move is Move.INSPECT:  # needs an inspector: the form, not a button
            continue
        moves.append(
            {
                "move": move.value,
                "to": next_status(current, move, immediate=immediate).value,
                "label": MOVE_LABELS[move],
                "confirm": CONFIRM.get(move, ""),
                "look": "primary" if move is Move.APPROVE else "danger" if move in DANGER else "",
            }
        )
    tasks = inspection.tasks_of(hub_of(request), str(app["id"]))
    open_task = any(task.get("status") != TASK_DONE for _, task in tasks)
    item = app.get("item")
    offer = (
        item is not None
        and item.inspection_required
        and (current is Status.UNDER_REVIEW or (current is Status.INSPECTING and not open_task))
    )
    approvable = any(m["move"] == Move.APPROVE.value for m in moves)
    return {
        "moves": moves,
        "open_task": open_task,
        # 需现场踏勘 and no report yet: 准予许可 needs a reason to go ahead (replica/approval.py)
        "override": approvable and approval.needs_inspection(hub_of(request).records, item, str(app["id"])),
        "notice": done,
        "inspect": {
            "devices": field_devices(request),
            "days": DEFAULT_TASK_DAYS,
            "today": data.today(hub_of(request)).isoformat(),
        }
        if offer
        else None,
    }


def _page_of(number: str) -> str:
    return "/applications/" + quote(number, safe="")


def _status_now(request: web.Request, number: str) -> str | None:
    hub = hub_of(request)
    try:
        app_id = operations.find_application(hub, number)
    except Refused:
        return None
    return str(hub.records.values("application", app_id).get("status") or "")


@operator
async def transition(request: web.Request) -> web.StreamResponse:
    """One workflow move by the hub, exactly as ``sanji hub transition NUMBER --to TO --note NOTE``."""
    hub = hub_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    to = str(form.get("to", "")).strip()[:64]
    note = str(form.get("note", "")).strip()[:MAX_NOTE]
    override = str(form.get("override_reason", "")).strip()[:MAX_NOTE] if to == Status.APPROVED.value else ""
    before = _status_now(request, number)
    if before is None:
        return detail(request, number)  # the page's own 404
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
        return detail(request, number, status=400, move_error=f"未能变更办件状态：{exc}", note=note)
    return redirect(f"{_page_of(number)}?done={quote(to)}")


@operator
async def inspect(request: web.Request) -> web.StreamResponse:
    """Assign an on-site inspection, exactly as ``sanji hub inspect NUMBER --inspector DEVICE --due DATE``."""
    hub = hub_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    inspector = str(form.get("inspector", "")).strip()[:64]
    due = str(form.get("due", "")).strip()[:32]
    before = _status_now(request, number)
    if before is None:
        return detail(request, number)
    if not inspector:
        return detail(request, number, status=400, inspect_error="请选择踏勘设备。", due=due)

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
        return detail(request, number, status=400, inspect_error=f"未能安排踏勘：{exc}", inspector=inspector, due=due)
    return redirect(f"{_page_of(number)}?done=inspect")


def setup(app: web.Application) -> None:
    app.router.add_post("/applications/{number}/transition", transition)
    app.router.add_post("/applications/{number}/inspect", inspect)
