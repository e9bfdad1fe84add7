"""A field device's screens (现场踏勘): the inspector's tasks, one task with its report form, the recorded
report (``photos``).

The device is used on site with no connection. Everything here reads and writes the device's own
database through ``node.inspection`` (the same code as ``sanji node tasks`` / ``node report``); only
"sync now" on the status bar talks to the hub. The report form is posted to ``report``.

The applicant's phone is masked on every page; the inspector sees it in full only after saying who
they are and why, which is written to ``ui_audit`` like a reveal at the window. On a field device the
home page leads here (``node.ui.home``), and the navigation offers tasks instead of accepting.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import blobs, inspection
from node.station import Station
from node.ui.keys import UPLOAD_LIMIT
from node.ui.page import form_post, page, record_reveal, refuse, reveal_refusal, reveal_values, station_of, today
from node.ui.photos import RESULT_LABELS, blob, report_view
from node.ui.signin import author_of
from present.webui import read_form
from protocol.blob import MAX_BLOB_BYTES
from sync.inspection import TASK_DONE
from sync.model import MAX_TEXT

EMPTY_FORM: dict[str, Any] = {
    "result": "",
    "findings": "",
    "lat": "",
    "lon": "",
    "acc": "",
    "checks": {},
    "kept_photos": [],
    "kept_signature": None,
}


def find_task(st: Station, task_id: str, *, reveal: bool = False) -> dict[str, Any] | None:
    """One of this device's tasks as ``node.inspection.tasks`` lists it (phone masked unless revealed)."""
    return next((t for t in inspection.tasks(st, reveal=reveal) if t["task"] == task_id), None)


def due_mark(st: Station, task: dict[str, Any]) -> str:
    """overdue | today | "" for an open task's due date (compared as ISO dates in Beijing time)."""
    due = str(task.get("due") or "")[:10]
    if task.get("status") == TASK_DONE or not due:
        return ""
    day = today(st).isoformat()
    return "overdue" if due < day else "today" if due == day else ""


async def task_list(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    rows = inspection.tasks(st)
    for t in rows:
        t["due_mark"] = due_mark(st, t)
    waiting = len(blobs.pending(st))
    return await page(
        request,
        "tasks.html",
        tasks=rows,
        waiting=waiting,
        field=st.tier == "field",
        open_count=sum(1 for t in rows if t["status"] != TASK_DONE),
        done_count=sum(1 for t in rows if t["status"] == TASK_DONE),
    )


async def task_page(
    request: web.Request,
    task_id: str,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    general: str = "",
    status: int = 200,
    reveal: bool = False,
    reveal_form: dict[str, str] | None = None,
    reveal_error: str = "",
) -> web.Response:
    """A task with its report form (open task, or a refused submission) or its recorded report."""
    st = station_of(request)
    task = find_task(st, task_id, reveal=reveal)
    if task is None:
        return await refuse(request, 404, f"本设备没有编号为 {task_id} 的踏勘任务；请先同步以接收任务。")
    task["due_mark"] = due_mark(st, task)
    view = report_view(st, task)
    return await page(
        request,
        "task.html",
        status=status,
        t=task,
        report=view,
        form=form or EMPTY_FORM,
        show_form=view is None or form is not None,
        errors=errors or {},
        general=general,
        results=RESULT_LABELS,
        reveal=reveal,
        reveal_error=reveal_error,
        reveal_values=reveal_form or {"staff": author_of(request), "reason": ""},
        saved=request.query.get("done") == "report",
        limits=upload_limits(request),
    )


def upload_limits(request: web.Request) -> dict[str, int]:
    return {
        "blob": MAX_BLOB_BYTES,
        "total": request.app[UPLOAD_LIMIT],
        "photos": inspection.MAX_PHOTOS,
        "text": MAX_TEXT,
    }


async def task_detail(request: web.Request) -> web.StreamResponse:
    return await task_page(request, request.match_info["task"])


@form_post
async def reveal(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    task_id = request.match_info["task"]
    values = reveal_values(await read_form(request), author_of(request))
    task = find_task(st, task_id)
    if task is None:
        return await refuse(request, 404, f"本设备没有编号为 {task_id} 的踏勘任务。")
    if problem := reveal_refusal(values, "本机"):
        return await task_page(request, task_id, status=400, reveal_form=values, reveal_error=problem)
    record_reveal(st, "reveal_task", str(task["number"] or task_id), values)
    return await task_page(request, task_id, reveal=True)


def setup(app: web.Application) -> None:
    app.router.add_get("/tasks", task_list)
    app.router.add_get("/tasks/{task}", task_detail)
    app.router.add_post("/tasks/{task}/reveal", reveal)
    app.router.add_get(r"/blobs/{sha:[0-9a-f]{64}}", blob)
