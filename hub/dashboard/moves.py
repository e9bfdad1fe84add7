"""What an application's page offers the hub's operator: the workflow moves from its current status, and
the inspection form when the item requires one and the application may go to 踏勘.

The hub holds every role (``sync.workflow.MOVE_ACTORS``), so the moves are exactly ``allowed_moves``, one
button per move. The forms post to ``hub/dashboard/workflow.py``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import inspection
from hub.dashboard import data
from hub.reads import ReadHub
from present.webui import status_label
from replica import approval
from sync.inspection import DEFAULT_TASK_DAYS, TASK_DONE
from sync.workflow import MOVE_LABELS, Move, Status, allowed_moves, next_status

# Moves that fix the outcome or close the file ask once more in the browser.
CONFIRM = {
    Move.APPROVE: "确认准予许可？决定将下发受理站点，作出后不能撤回或改判。",
    Move.DENY: "确认作出不予许可决定？决定将下发受理站点，作出后不能撤回或改判。",
    Move.REJECT: "确认不予受理？办件将就此办结。",
    Move.WITHDRAW: "确认撤回该办件？办件将就此办结。",
}
DANGER = {Move.DENY, Move.REJECT, Move.WITHDRAW}


def field_devices(hub: ReadHub) -> list[dict[str, str]]:
    """Field devices an inspection may go to: enrolled (they hold keys) and not revoked."""
    return [
        {"code": s.code, "name": s.name}
        for s in hub.store.stations()
        if s.tier == "field" and s.sign_pub is not None and not s.revoked
    ]


def notice(done: str) -> str:
    """The line shown after a successful step (``?done=``); anything else shows nothing."""
    if done == "inspect":
        return "已安排现场踏勘：任务将随下次同步下发踏勘设备，踏勘期间办件计时暂停。"
    if done == "supplemented":  # hub/dashboard/supplement.py
        return "已登记补交材料，将随下次同步下发受理站点。"
    if done in {s.value for s in Status}:
        return f"办件状态已变更为「{status_label(done)}」，将随下次同步下发相关站点。"
    return ""


def workflow(request: web.Request, hub: ReadHub, app: dict[str, Any]) -> dict[str, Any]:
    """What the workflow card shows for one application (``data.application``'s dict), read through
    ``hub`` in the read model's thread."""
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
    tasks = inspection.tasks_of(hub, str(app["id"]))
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
        "override": approvable and approval.needs_inspection(hub.records, item, str(app["id"])),
        "notice": done,
        "inspect": {
            "devices": field_devices(hub),
            "days": DEFAULT_TASK_DAYS,
            "today": data.today(hub).isoformat(),
        }
        if offer
        else None,
    }
