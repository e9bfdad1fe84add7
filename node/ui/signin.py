"""Sign-in at the station window (issue 16): who sits at the shared PC, and the lock when they walk away.

A station that never had a staff account keeps the open window it always had. Once it has one,
every page but the sign-in page, the stylesheets and the status bar's poll asks for a signed-in
browser: a random cookie names one ``StaffSession`` (``node/staff_session.py``) held in this process
only, never on disk. Each request checks the session is still ``live`` at the station's clock and
touches it; after ``idle_ms_for(DIR)`` without a request (15 minutes unless ``DIR/staff.json`` says
otherwise) it has locked itself, and the browser is sent to the sign-in page again, told why. A
restart of ``node serve`` signs everybody out, which is the safe direction. An account disabled
since the person signed in (by the hub, arriving with a sync, or by the station's administrator) ends
their session at their next request, told why: the gate reads the account's row on every request.

Sign-in runs scrypt two or three times (the hash, the wrapped key, a grant), a few tens of ms each:
it runs on a worker thread with a connection of its own (``_sign_in_apart``), so the window's event
loop, the background sync and other browsers' requests go on meanwhile. A connection of its own,
because the station's one connection is the loop's, and two threads' transactions on one connection
would interleave.

The page's forms name their author from here (``author_of``): accept, workflow moves, 补交材料 and
the reveal audit. The cookie is HttpOnly and SameSite=Strict; the window answers on loopback only
and every form carries the CSRF token as before (``node/ui/page.py``).
"""

from __future__ import annotations

import secrets
import sqlite3
from functools import partial
from urllib.parse import quote

from aiohttp import web

from node import staff_accounts, staff_schema
from node.staff_cli import has_accounts
from node.staff_session import StaffSession, idle_ms_for
from node.ui import sealing
from node.ui.keys import SESSIONS, STAFF
from node.ui.page import Handler, apart, form_post, page, safe_back, station_of
from present.webui import read_form
from replica.errors import Refused

COOKIE = "sanji_staff"
# Reachable signed out: the sign-in page itself, what it is drawn with, and the status bar's poll
# (counts of pending changes, no citizen's data).
OPEN_PATHS = frozenset({"/signin", "/status.json"})
OPEN_PREFIXES = ("/static/",)

LOCKED_NOTICE = "因长时间未操作，登录已锁定，请重新登录。"
SIGNED_OUT_NOTICE = "已退出登录。"
DISABLED_NOTICE = "您的账户已被停用，已退出登录；如需恢复请联系本站管理员或区行政审批局。"


def current(request: web.Request) -> StaffSession | None:
    return request.get(STAFF)


def author_of(request: web.Request) -> str:
    """The user name the request's changes carry: the signed-in person, ``""`` at an open window."""
    session = current(request)
    return session.user if session is not None else ""


def _to_signin(request: web.Request, why: str = "") -> web.Response:
    back = request.path_qs if request.method == "GET" else request.headers.get("Referer", "/")
    query = f"?next={quote(safe_back(_local(back)), safe='')}" + (f"&why={why}" if why else "")
    response = web.Response(status=303, headers={"Location": "/signin" + query})
    if why:
        response.del_cookie(COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """A Referer is a whole URL; keep its path and query on this window."""
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return target


def _still_enabled(conn: sqlite3.Connection, user: str) -> bool:
    found = staff_schema.account(conn, user)
    return found is not None and found.enabled


@web.middleware
async def staff_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    st = station_of(request)
    if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES) or not has_accounts(st.conn):
        return await handler(request)
    sessions = request.app[SESSIONS]
    token = request.cookies.get(COOKIE, "")
    session = sessions.get(token)
    now = st.clock()
    if session is None:
        return _to_signin(request)
    if not session.live(now):
        sessions.pop(token, None)
        return _to_signin(request, "locked")
    if not _still_enabled(st.conn, session.user):
        sessions.pop(token, None)
        session.end()
        return _to_signin(request, "disabled")
    session.touch(now)
    request[STAFF] = session
    # The station seals what this request writes with the session's data key (node/at_rest.py). Every
    # live session holds the same key, and one that locks refuses by itself, so it is not unset after.
    st.session = session
    # What arrived unattended is sealed now that someone is here; the first sign-in's migration of a
    # whole station runs off the loop behind a progress page (node/ui/sealing.py).
    waiting = await sealing.gate(request, st, session)
    if waiting is not None:
        return waiting
    return await handler(request)


async def signin_page(
    request: web.Request, *, status: int = 200, error: str = "", user: str = "", next_path: str = ""
) -> web.Response:
    why = request.query.get("why", "")
    notice = {"locked": LOCKED_NOTICE, "out": SIGNED_OUT_NOTICE, "disabled": DISABLED_NOTICE}.get(why, "")
    return await page(
        request,
        "signin.html",
        status=status,
        error=error,
        notice=notice,
        user=user,
        next=safe_back(next_path or request.query.get("next", "/")),  # a refused try keeps where it was going
        open_window=not has_accounts(station_of(request).conn),
    )


async def show(request: web.Request) -> web.StreamResponse:
    return await signin_page(request)


@form_post
async def submit(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    form = await read_form(request)
    user = str(form.get("user", "")).strip()[:64]
    password = str(form.get("password", ""))
    back = safe_back(str(form.get("next", "/")))
    if not user or not password:
        return await signin_page(request, status=400, error="请填写用户名和密码。", user=user, next_path=back)
    try:
        sign_in = partial(
            staff_accounts.sign_in,
            station=st.code,
            user=user,
            password=password,
            now_ms=st.clock(),
            idle_ms=idle_ms_for(st.folder),
        )
        session = await apart(st.folder, sign_in)
    except Refused as exc:
        return await signin_page(request, status=401, error=str(exc), user=user, next_path=back)
    sessions = request.app[SESSIONS]
    now = st.clock()
    for token in [t for t, s in sessions.items() if not s.live(now)]:
        sessions.pop(token)  # locked ones hold no key any more; forget them
    token = secrets.token_urlsafe(32)
    sessions[token] = session
    response = web.Response(status=303, headers={"Location": back})
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


@form_post
async def sign_out(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSIONS].pop(request.cookies.get(COOKIE, ""), None)
    if session is not None:
        session.end()
    response = web.Response(status=303, headers={"Location": "/signin?why=out"})
    response.del_cookie(COOKIE, path="/")
    return response


def setup(app: web.Application) -> None:
    app[SESSIONS] = {}
    app.middlewares.append(staff_gate)
    app.router.add_get("/signin", show)
    app.router.add_post("/signin", submit)
    app.router.add_post("/signout", sign_out)
