"""The dashboard's list of on-site inspections across applications (``/inspections``, 踏勘 in the header).

One row per task, newest first, from :func:`hub.inspections.list_inspections` (the same rows
``sanji hub inspections`` prints): the application (linking to its page), the item, the field device,
when the task was assigned and is due (red when overdue), its state, the report's result, how many
photos it names and how many of its files the hub still lacks. Filter links narrow it to open tasks
(``?open=1``), overdue ones (``?overdue=1``) or reports still missing files (``?missing=1``, where the
overview's missing-files figure links). Nothing about the citizen appears here.
"""

from __future__ import annotations

from aiohttp import web

from hub.dashboard_auth import hub_of, operator, page
from hub.inspections import LIMIT, RESULT_LABELS, TASK_LABELS, list_inspections

# (query parameter, tab label); "" is the whole list.
FILTERS = (("", "全部"), ("open", "待踏勘"), ("overdue", "逾期"), ("missing", "缺照片"))


@operator
async def inspections(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    shown = next((key for key, _ in FILTERS[1:] if request.query.get(key) == "1"), "")
    rows = list_inspections(
        hub, open_only=shown == "open", overdue_only=shown == "overdue", missing_only=shown == "missing", limit=LIMIT
    )
    return page(
        request,
        "inspections.html",
        rows=rows,
        shown=shown,
        filters=FILTERS,
        limit=LIMIT,
        results=RESULT_LABELS,
        task_labels=TASK_LABELS,
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/inspections", inspections)
