"""What every page of the station's staff UI shares: rendering with the status bar, refusals, the CSRF
check of a form post, the loopback-only guard, and the audit of showing a masked ID number or phone.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import sqlite_utils
from aiohttp import web

from node.station import Station
from node.store import DB_NAME
from node.ui.keys import CSRF, ENV, STAFF, STATION
from node.ui.status import status_context
from present.webui import Due, due_state, read_form, render
from replica.db import connect
from replica.errors import Refused
from replica.ids import CHINA

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def station_of(request: web.Request) -> Station:
    return request.app[STATION]


async def apart(folder: Path, work: Callable[[sqlite_utils.Database], T]) -> T:
    """``work`` on a worker thread, through a connection of its own to the station's store (already
    migrated: the window's ``Station`` opened it), so its scrypts do not hold up the event loop."""

    def run() -> T:
        db = connect(folder / DB_NAME)
        try:
            return work(db)
        finally:
            db.conn.close()

    return await asyncio.to_thread(run)


def today(st: Station) -> date:
    return datetime.fromtimestamp(st.clock() / 1000, tz=CHINA).date()


def due_of(st: Station, due: object, status: object) -> Due:
    try:
        cal = st.catalogue().catalogue.calendar
    except Refused:
        return Due("none")
    return due_state(due, status, today(st), cal)


async def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render a station page with the status bar every page shows."""
    st = station_of(request)
    # Where "sync now" returns to: this page, without the previous sync's notice.
    query = [(k, v) for k, v in request.query.items() if k not in ("sync", "new", "done")]
    back = request.path + ("?" + urlencode(query) if query else "")
    base: dict[str, Any] = {
        "csrf": request.app[CSRF],
        "path": request.path,
        "now_ms": st.clock(),
        "back": back,
        "bar": await status_context(request.app, st),
        "sync_notice": request.query.get("sync", ""),
        "staff": request.get(STAFF),  # the signed-in StaffSession (node/ui/signin.py), or None
    }
    base.update(context)
    return render(request.app[ENV], template, base, status=status)


async def refuse(request: web.Request, status: int, message: str) -> web.Response:
    return await page(request, "error.html", status=status, message=message)


def safe_back(target: str) -> str:
    """A path on this UI to return to after a POST (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def form_post(handler: Handler) -> Handler:
    """A POST from one of our own pages: the form's CSRF token must match this process's."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        form = await read_form(request)
        sent = str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode(), request.app[CSRF].encode()):
            return await refuse(request, 403, "页面已失效（安全校验未通过），请刷新页面后重新操作。")
        return await handler(request)

    return wrapped


# -- showing a masked ID number or phone in full: who looks, why, and a line in ui_audit ------------------

MIN_REASON = 4


def reveal_values(form: Any, signed_in: str = "") -> dict[str, str]:
    """The reveal form's who and why; at a station with accounts who is the signed-in user, whatever
    the form says (issue 16: the audit names the person, not a typed name)."""
    staff = signed_in or str(form.get("staff", "")).strip()[:50]
    return {"staff": staff, "reason": str(form.get("reason", "")).strip()[:500]}


def reveal_refusal(values: dict[str, str], where: str) -> str:
    """Why the reveal form cannot be taken (``""`` when it can); ``where`` names the audit's place."""
    if values["staff"] and len(values["reason"]) >= MIN_REASON:
        return ""
    return f"请填写查看人姓名和理由（至少 {MIN_REASON} 个字），该操作将记入{where}审计记录。"


def record_reveal(st: Station, action: str, target: str, values: dict[str, str]) -> None:
    with st.transaction():
        st.conn.execute(
            "INSERT INTO ui_audit (at_ms, staff, action, target, reason) VALUES (?,?,?,?,?)",
            (st.clock(), values["staff"], action, target, values["reason"]),
        )


@web.middleware
async def loopback_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = (
        (request.host or "").rsplit(":", 1)[0]
        if not (request.host or "").startswith("[")
        else (request.host or "").split("]", 1)[0] + "]"
    )
    if host not in LOOPBACK_NAMES:
        return web.Response(
            status=421,
            text="本站界面只能在本机打开：请在本机浏览器访问 http://127.0.0.1 (answers only on 127.0.0.1 / localhost)",
        )
    return await handler(request)
