"""The signed-in person's own account at the station window: changing their password at
``/account/password`` (issue 16), as the dashboard's ``hub/dashboard/account.py`` does for operators.

The form asks for the current password and the new one twice. The current one is checked as a
sign-in is (``node/staff_password.py``): a wrong one counts towards the lock-out, five in 15 minutes
pause the account, and a paused or disabled account cannot change it either. The scrypt work (three
or four derivations) runs on a worker thread with a connection of its own, as sign-in does
(``node/ui/signin.py``), so the window's loop and the background sync go on; the short write that
follows (hash, rewrapped data key and, for an account the hub made, the change that carries the new
hash up) runs on the station's connection.

On success every other window session of that person ends (whoever kept one open on this PC signed
in with the old password), the one in use goes on, and the page says so. Nothing about the password
is logged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from node import staff_password
from node.staff_password import MAX_LENGTH, NewPassword
from node.store import DB_NAME
from node.ui.keys import SESSIONS
from node.ui.page import form_post, page, station_of
from node.ui.signin import COOKIE, current
from present.webui import read_form
from replica.db import connect
from replica.errors import Refused
from sync.staff_password import MIN_LENGTH

DONE = "密码已修改；旧密码从此不能再登录。本站其他窗口中该账户的登录已全部退出。"
TRAVELS = "新密码将在下次同步时报区行政审批局。"
MISMATCH = "两次输入的新密码不一致，密码未修改。"
OPEN_WINDOW = "本站尚未启用工作人员账户，没有可修改的密码。"


async def _page(request: web.Request, *, status: int = 200, error: str = "", notice: str = "") -> web.Response:
    return await page(
        request,
        "password.html",
        status=status,
        error=error,
        notice=notice,
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
    )


async def show(request: web.Request) -> web.StreamResponse:
    if current(request) is None:
        return await _page(request, status=404, error=OPEN_WINDOW)
    done = request.query.get("done", "")
    return await _page(request, notice=(DONE + (TRAVELS if done == "up" else "")) if done else "")


def _prepare_apart(folder: Path, station: str, user: str, old: str, new: str, now_ms: int) -> NewPassword:
    """``staff_password.prepare`` on a worker thread, through a connection of its own."""
    db = connect(folder / DB_NAME)
    try:
        return staff_password.prepare(db, station=station, user=user, old=old, new=new, now_ms=now_ms)
    finally:
        db.conn.close()


@form_post
async def submit(request: web.Request) -> web.StreamResponse:
    session = current(request)
    if session is None:
        return await _page(request, status=404, error=OPEN_WINDOW)
    st = station_of(request)
    form = await read_form(request)
    old, new, again = (str(form.get(k, ""))[: MAX_LENGTH + 1] for k in ("current", "new", "again"))
    if not old:
        return await _page(request, status=400, error="请填写当前密码，密码未修改。")
    if new != again:
        return await _page(request, status=400, error=MISMATCH)
    try:
        prepared = await asyncio.to_thread(_prepare_apart, st.folder, st.code, session.user, old, new, st.clock())
        written = staff_password.store(st, prepared)
    except Refused as exc:
        status = 429 if exc.code == "locked_out" else 400
        return await _page(request, status=status, error=str(exc))
    # Other windows of this person signed in with the old password: they end; this one goes on.
    mine = request.cookies.get(COOKIE, "")
    sessions = request.app[SESSIONS]
    for token in [t for t, s in sessions.items() if s.user == session.user and t != mine]:
        sessions.pop(token).end()
    done = "up" if written is not None else "1"
    return web.Response(status=303, headers={"Location": f"/account/password?done={done}"})


def setup(app: web.Application) -> None:
    app.router.add_get("/account/password", show)
    app.router.add_post("/account/password", submit)
