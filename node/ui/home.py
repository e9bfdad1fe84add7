"""The station's home page: the window's recent applications and the ones due soon or overdue."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from aiohttp import web

from node.station import Station
from node.ui.page import due_of, page, station_of, today
from present.webui import soon_until
from replica import listing
from replica.errors import Refused


async def home(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    if st.tier == "field":  # an inspector's device accepts nothing: its work is the task list
        raise web.HTTPSeeOther("/tasks" + (f"?{request.query_string}" if request.query_string else ""))
    # Each figure is one indexed query (replica/listing.py): the page never reads every application.
    day = today(st)
    try:
        until = soon_until(day, st.catalogue().catalogue.calendar)
    except Refused:
        until = day
    f = listing.Filters(today=day.isoformat(), soon_until=until.isoformat())
    overdue = listing.page(st.conn, replace(f, due="overdue"), size=20)
    soon = listing.page(st.conn, replace(f, due="soon"), size=20)
    recent = listing.page(st.conn, f, size=8).rows
    warnings = (overdue.rows + soon.rows)[:20]
    for a in recent + warnings:
        a["due"] = due_of(st, a["due_date"], a["status"])
    tomorrow = (day + timedelta(days=1)).isoformat()
    return await page(
        request,
        "home.html",
        recent=recent,
        warnings=warnings,
        names=_item_names(st),
        accepted_today=int(
            st.conn.execute(
                "SELECT COUNT(*) FROM applications WHERE accepted_at >= ? AND accepted_at < ?",
                (day.isoformat(), tomorrow),
            ).fetchone()[0]
        ),
        overdue=overdue.total,
        soon=soon.total,
        total=listing.held(st.conn),
    )


def _item_names(st: Station) -> dict[str, str]:
    try:
        return {code: item.name for code, item in st.catalogue().catalogue.items.items()}
    except Refused:
        return {}


def setup(app: web.Application) -> None:
    app.router.add_get("/", home)
