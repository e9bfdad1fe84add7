"""The station's staff UI, mounted on the node's loopback app by :func:`add_ui_routes`.

Server-rendered pages for the window: accept an application (``ui_accept``), the station's
applications and their workflow moves (``ui_apps``), and the sync status bar, "sync now" and USB
export (``ui_sync``). Everything works with the hub unreachable: every write goes to the station's own
database through ``node.commands``; only "sync now" talks to the hub.

There is no login (a shared PC at a village window, listening on 127.0.0.1 only), but a web page the
staff happen to open must not be able to drive this UI: every form carries a per-process CSRF token,
and requests whose Host is not the loopback name are refused, so a DNS-rebinding page cannot read it.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import sqlite_utils
from aiohttp import web
from sqlite_utils import Migrations

from node import commands
from node.server import STATION
from node.station import Station
from node.ui_status import PROBE, HubProbe, status_context
from replica.errors import Refused
from replica.ids import CHINA
from replica.webui import Due, add_common_static, due_state, make_env, new_token, read_form, render

HERE = Path(__file__).resolve().parent
ENV = web.AppKey("ui_env", jinja2.Environment)
CSRF = web.AppKey("ui_csrf", str)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

migrations = Migrations("sanji.node.ui")


@migrations()
def m001_ui_audit(db: sqlite_utils.Database) -> None:
    # Who looked at a citizen's full ID number or phone at this window, and why.
    db.execute(
        "CREATE TABLE ui_audit (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, staff TEXT NOT NULL,"
        " action TEXT NOT NULL, target TEXT NOT NULL, reason TEXT NOT NULL)"
    )


def station_of(request: web.Request) -> Station:
    return request.app[STATION]


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


def reveal_values(form: Any) -> dict[str, str]:
    return {"staff": str(form.get("staff", "")).strip()[:50], "reason": str(form.get("reason", "")).strip()[:500]}


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
        return web.Response(status=421, text="this station UI answers only on 127.0.0.1 / localhost")
    return await handler(request)


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


async def _ui_ctx(app: web.Application) -> AsyncIterator[None]:
    # Runs after the station is opened by the server's own context.
    migrations.apply(app[STATION].db)
    yield


def add_ui_routes(app: web.Application) -> None:
    from node import ui_accept, ui_apps, ui_assign, ui_supplement, ui_sync, ui_tasks

    app[ENV] = make_env(HERE / "templates")
    app[CSRF] = new_token()
    app[PROBE] = HubProbe()
    app.middlewares.append(loopback_only)
    app.cleanup_ctx.append(_ui_ctx)
    add_common_static(app)
    app.router.add_static("/static/", HERE / "static", name="node_static")
    app.router.add_get("/", home)
    ui_accept.setup(app)
    ui_apps.setup(app)
    ui_assign.setup(app)
    ui_sync.setup(app)
    ui_tasks.setup(app)
    ui_supplement.setup(app)  # 补交材料 on the application page


__all__ = ["add_ui_routes", "form_post", "page", "station_of"]
