"""The station's home page: the window's recent applications and the ones due soon or overdue."""

from __future__ import annotations

from aiohttp import web

from node import commands
from node.station import Station
from node.ui.page import due_of, page, station_of, today
from replica.errors import Refused


async def home(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    if st.tier == "field":  # an inspector's device accepts nothing: its work is the task list
        raise web.HTTPSeeOther("/tasks" + (f"?{request.query_string}" if request.query_string else ""))
    apps = commands.applications(st)
    day = today(st).isoformat()
    open_apps = []
    for a in apps:
        a["due"] = due_of(st, a["due_date"], a["status"])
        if a["due"].state in ("overdue", "soon"):
            open_apps.append(a)
    names = _item_names(st)
    return await page(
        request,
        "home.html",
        recent=list(reversed(apps))[:8],
        warnings=open_apps[:20],
        names=names,
        accepted_today=sum(1 for a in apps if str(a["accepted_at"] or "").startswith(day)),
        overdue=sum(1 for a in open_apps if a["due"].state == "overdue"),
        soon=sum(1 for a in open_apps if a["due"].state == "soon"),
        total=len(apps),
    )


def _item_names(st: Station) -> dict[str, str]:
    try:
        return {code: item.name for code, item in st.catalogue().catalogue.items.items()}
    except Refused:
        return {}


def setup(app: web.Application) -> None:
    app.router.add_get("/", home)
