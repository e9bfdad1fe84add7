"""The station's applications: the list with status, due-date and upload badges; one application with
its history and the workflow moves this station may make (``node.commands.transition``).

Moves offered are exactly the ones the workflow table allows from the current status and this
station's role allows (``sync.workflow``), so a button never leads to a refusal; the command still
checks again. The move to ``inspecting`` is never a button: it comes with an assignment (``assign``),
whose form, and the application's inspection tasks and reports, this page also shows. Full ID numbers
and phones are shown only after staff say who they are and why, and that is written to ``ui_audit``.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from aiohttp import web

from node import at_rest, commands
from node.assignment import assign
from node.station import Station
from node.supplement import offer as supplement_offer
from node.track_notice import staff_name
from node.ui import assign as assigning
from node.ui.page import (
    due_of,
    form_post,
    page,
    record_reveal,
    refuse,
    reveal_refusal,
    reveal_values,
    station_of,
    today,
)
from node.ui.receipt import _settled, upload_state
from node.ui.signin import author_of
from present.paging import page_links
from present.webui import describe, read_form, soon_until, status_label
from replica import listing
from replica.approval import needs_inspection
from replica.errors import Refused
from replica.ids import iso_from_ms
from sync.inspection import PAUSED_LABEL
from sync.workflow import Move, Status, allowed_moves, may_move, next_status

PAGE_SIZE = 100  # rows a page shows; pages go on by keyset, so the last page costs what the first does


async def applications(request: web.Request) -> web.StreamResponse:
    """One page of the list, newest first, paged by keyset (``replica/listing.py``): filters run in
    SQL on indexed columns, and the due badge and upload state are worked out for the rows shown only."""
    st = station_of(request)
    status = request.query.get("status", "")
    q = request.query.get("q", "").strip()[:50]
    due_filter = request.query.get("due", "")
    error = ""
    if status and status not in {s.value for s in Status}:
        error, status = "未知的办件状态，已显示全部办件。", ""
    if due_filter not in ("", *listing.DUE_FILTERS):
        error, due_filter = "未知的时限筛选条件，已忽略。", ""
    day = today(st)
    try:
        until = soon_until(day, st.catalogue().catalogue.calendar)
    except Refused:
        until = day  # no catalogue yet: nothing can be nearly due
    filters = listing.Filters(status=status, q=q, due=due_filter, today=day.isoformat(), soon_until=until.isoformat())
    older = listing.key_of(request.query.get("after", ""))
    newer = None if older else listing.key_of(request.query.get("before", ""))
    found = _by_token(st, q, filters) or listing.page(
        st.conn, filters, older_than=older, newer_than=newer, size=PAGE_SIZE
    )
    outbox = _settled(st)
    names = _names(st)
    for r in found.rows:
        r["due"] = due_of(st, r["due_date"], r["status"])
        r["upload"] = upload_state(st, str(r["id"]), outbox, verify=False)
        r["item_name"] = names.get(str(r["item"]), r["item"])
    statuses = [(s.value, status_label(s.value)) for s in Status]
    keep = {"status": status, "q": q, "due": due_filter}
    return await page(
        request,
        "applications.html",
        rows=found.rows,
        total=found.total,
        error=error,
        filters=keep,
        statuses=statuses,
        pages=page_links("/applications", keep, found),
    )


def _names(st: Station) -> dict[str, str]:
    try:
        return {c: i.name for c, i in st.catalogue().catalogue.items.items()}
    except Refused:
        return {}


def moves_for(st: Station, vals: dict[str, Any]) -> list[dict[str, str]]:
    try:
        current = Status(str(vals.get("status")))
    except ValueError:
        return []
    immediate = vals.get("kind") == "immediate"
    roles = commands.roles_here(st, str(vals.get("station")), str(vals.get("item")))
    out = []
    for move in allowed_moves(current, immediate=immediate):
        # 踏勘 needs an inspector: the centre assigns it with its own form (assign), never as a bare move.
        if move is Move.INSPECT or not any(may_move(r, move, immediate=immediate) for r in roles):
            continue
        target = next_status(current, move, immediate=immediate)
        out.append({"move": move.value, "to": target.value})
    return out


def _history(st: Station, app_id: str) -> list[dict[str, Any]]:
    who = {st.code: f"本站（{st.meta.text('name')}）", st.hub_id: "区行政审批局"}
    parent = st.meta.text("parent")
    if parent:
        who.setdefault(parent, f"{parent}（镇街中心）")
    return [
        {
            "at": iso_from_ms(int(h["hlc"]) >> 16),
            "who": who.get(str(h["origin"]), h["origin"]),  # type: ignore[call-overload]
            "author": staff_name(st.conn, str(h["author"])),
            "lines": describe(str(h["entity"]), h["fields"]),
        }
        for h in st.records.history(app_id)
    ]


async def _detail(
    request: web.Request,
    number: str,
    *,
    reveal: bool = False,
    status: int = 200,
    error: str = "",
    reveal_error: str = "",
    form: dict[str, str] | None = None,
    assign_form: dict[str, str] | None = None,
    assign_error: str = "",
) -> web.Response:
    st = station_of(request)
    try:
        app_id = commands.find(st, number)
    except Refused as exc:
        return await refuse(request, 404, str(exc))
    vals = st.shown_values("application", app_id)  # opened through the signed-in session
    cat = None
    with contextlib.suppress(Refused):  # a station without a catalogue still shows its applications
        cat = st.catalogue().catalogue
    item = cat.items.get(str(vals.get("item"))) if cat else None
    materials = sorted((k[2:], v) for k, v in vals.items() if k.startswith("m.") and isinstance(v, list))
    shown = dict(vals)
    if not reveal:
        from sync.identity import mask_id, mask_phone

        shown["applicant_id"] = mask_id(str(vals.get("applicant_id", "")))
        shown["applicant_phone"] = mask_phone(str(vals.get("applicant_phone", "")))
    notice = {
        "moved": "办件状态已更新，将在下次同步时上传区局。",
        "inspect": assigning.DONE_NOTICE,
        "supplemented": "已登记补交材料，将在下次同步时上传区局。",
    }.get(request.query.get("done", ""), "")
    tasks = assigning.inspections(st, app_id)
    moves = moves_for(st, vals)
    offer = assigning.offer(st, vals, tasks, form=assign_form, error=assign_error)
    if assign_error and offer is None:  # the form is no longer offered (say a task is open now): say why on top
        error = assign_error
    return await page(
        request,
        "application.html",
        status=status,
        number=number,
        v=shown,
        item=item,
        materials=materials,
        due=due_of(st, vals.get("due_date"), vals.get("status")),
        moves=moves,
        override=any(m["to"] == Status.APPROVED.value for m in moves) and needs_inspection(st.records, item, app_id),
        history=_history(st, app_id),
        error=error,
        notice=notice,
        upload=upload_state(st, app_id),
        reveal=reveal,
        reveal_error=reveal_error,
        form=form or {"staff": author_of(request), "reason": ""},
        own=vals.get("station") == st.code,
        inspections=tasks,
        assign=offer,
        supplement=supplement_offer(st, vals),  # 补交材料 (node/ui/supplement.py)
        paused=PAUSED_LABEL if vals.get("paused") and vals.get("status") == "inspecting" else "",
    )


async def application(request: web.Request) -> web.StreamResponse:
    return await _detail(request, request.match_info["number"])


@form_post
async def transition(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    try:
        commands.transition(
            st,
            number,
            str(form.get("to", "")),
            str(form.get("note", "")).strip(),
            override_reason=str(form.get("override_reason", "")).strip()[:500],  # replica/approval.py
            author=author_of(request),
        )
    except Refused as exc:
        return await _detail(request, number, status=409, error=f"未能变更状态：{exc}")
    return web.Response(status=303, headers={"Location": f"/applications/{number}?done=moved"})


@form_post
async def reveal(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    number = request.match_info["number"]
    values = reveal_values(await read_form(request), author_of(request))
    if problem := reveal_refusal(values, "本站"):
        return await _detail(request, number, status=400, form=values, reveal_error=problem)
    try:
        commands.find(st, number)
    except Refused as exc:
        return await refuse(request, 404, str(exc))
    record_reveal(st, "reveal", number, values)
    return await _detail(request, number, reveal=True)


@form_post
async def inspect(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    chosen = {"inspector": str(form.get("inspector", "")).strip()[:64], "due": str(form.get("due", "")).strip()[:32]}
    try:
        commands.find(st, number)
    except Refused as exc:
        return await refuse(request, 404, str(exc))
    if not chosen["inspector"]:
        return await _detail(request, number, status=400, assign_form=chosen, assign_error="请选择踏勘设备。")
    try:
        assign(st, number, chosen["inspector"], chosen["due"] or None, author=author_of(request))
    except Refused as exc:
        return await _detail(request, number, status=400, assign_form=chosen, assign_error=f"未能安排踏勘：{exc}")
    return web.Response(status=303, headers={"Location": f"/applications/{number}?done=inspect"})


def setup(app: web.Application) -> None:
    app.router.add_get("/applications", applications)
    app.router.add_get("/applications/{number}", application)
    app.router.add_post("/applications/{number}/transition", transition)
    app.router.add_post("/applications/{number}/reveal", reveal)
    app.router.add_post("/applications/{number}/inspect", inspect)


def _by_token(st: Station, q: str, filters: listing.Filters) -> listing.Page | None:
    """At a station that seals at rest, an ID number or a full name is found by its keyed search token
    (``node/at_rest.py``), never by the sealed values; None: search the number prefix as before."""
    if not q or st.session is None or not at_rest.has_data_key(st.conn):
        return None
    asked = at_rest.token_query(st.search_sealer(), q)
    if asked is None:
        return None
    rows: list[dict[str, object]] = []
    for app_id in at_rest.token_matches(st.conn, *asked):
        number = st.conn.execute("SELECT number FROM applications WHERE id=?", (app_id,)).fetchone()
        if number and number[0]:
            one = replace(filters, q=str(number[0]), items=())
            rows += listing.page(st.conn, one, size=1).rows
    # Nothing found by token: the words may name an item (低保) or start a number; search as before.
    return listing.Page(rows, len(rows)) if rows else None
