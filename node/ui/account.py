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

An administrator also finds 重置同事密码 there (``/account/reset``, ``node/staff_reset.py``): their own
password again (the desk PC is shared; a wrong one counts towards their lock-out), the colleague and
the new password twice. The same split: the scrypts off the loop, the short write (and, for an account
the hub made, the change authored by the administrator that carries the hash up) on the station's
connection. The colleague's window sessions end; anyone else posting the form is refused (403).
"""

from __future__ import annotations

from functools import partial

from aiohttp import web

from node import staff_password, staff_reset, staff_schema
from node.staff_password import MAX_LENGTH
from node.staff_reset import NOT_ADMIN
from node.ui.keys import SESSIONS
from node.ui.page import apart, form_post, page, station_of
from node.ui.signin import COOKIE, current
from present.webui import read_form
from replica.errors import Refused
from sync.staff_password import MIN_LENGTH
from sync.staff_user import is_user_name

DONE = "密码已修改；旧密码从此不能再登录。本站其他窗口中该账户的登录已全部退出。"
TRAVELS = "新密码将在下次同步时报区行政审批局。"
MISMATCH = "两次输入的新密码不一致，密码未修改。"
OPEN_WINDOW = "本站尚未启用工作人员账户，没有可修改的密码。"
RESET_DONE = "已重设同事 {user} 的密码并解除登录暂停；其旧密码从此不能再登录，本站窗口中该同事的登录已全部退出。"
CHOOSE = "请选择要重设密码的同事；本人密码请在上方修改，密码未修改。"
RESET_TRAVELS = "新密码将在下次同步时报区行政审批局。"


async def _page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    notice: str = "",
    reset_error: str = "",
    reset_notice: str = "",
    chosen: str = "",
) -> web.Response:
    session = current(request)
    colleagues = []
    if session is not None and session.is_admin:  # the reset form is shown to administrators only
        colleagues = [a for a in staff_schema.accounts(station_of(request).conn) if a.user != session.user]
    return await page(
        request,
        "password.html",
        status=status,
        error=error,
        notice=notice,
        reset_error=reset_error,
        reset_notice=reset_notice,
        colleagues=colleagues,
        chosen=chosen,
        min_length=MIN_LENGTH,
        max_length=MAX_LENGTH,
    )


async def show(request: web.Request) -> web.StreamResponse:
    if current(request) is None:
        return await _page(request, status=404, error=OPEN_WINDOW)
    done = request.query.get("done", "")
    reset, who = request.query.get("reset", ""), request.query.get("who", "")
    reset_notice = ""
    if reset and is_user_name(who):
        reset_notice = RESET_DONE.format(user=who) + (RESET_TRAVELS if reset == "up" else "")
    return await _page(
        request, notice=(DONE + (TRAVELS if done == "up" else "")) if done else "", reset_notice=reset_notice
    )


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
        prepare = partial(
            staff_password.prepare, station=st.code, user=session.user, old=old, new=new, now_ms=st.clock()
        )
        prepared = await apart(st.folder, prepare)
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


@form_post
async def reset(request: web.Request) -> web.StreamResponse:
    session = current(request)
    if session is None:
        return await _page(request, status=404, error=OPEN_WINDOW)
    if not session.is_admin:
        return await _page(request, status=403, reset_error=NOT_ADMIN)
    st = station_of(request)
    form = await read_form(request)
    mine, new, again = (str(form.get(k, ""))[: MAX_LENGTH + 1] for k in ("current", "new", "again"))
    user = str(form.get("user", ""))[:64]
    if not user or user == session.user:
        return await _page(request, status=400, reset_error=CHOOSE)
    if not mine:
        return await _page(request, status=400, reset_error="请填写您本人的密码，密码未修改。", chosen=user)
    if new != again:
        return await _page(request, status=400, reset_error=MISMATCH, chosen=user)
    try:
        prepare = partial(
            staff_reset.prepare,
            station=st.code,
            admin=session.user,
            admin_password=mine,
            user=user,
            new=new,
            now_ms=st.clock(),
        )
        prepared = await apart(st.folder, prepare)
        written = staff_reset.store(st, prepared)
    except Refused as exc:
        status = {"locked_out": 429, "not_admin": 403}.get(exc.code, 400)
        return await _page(request, status=status, reset_error=str(exc), chosen=user)
    # The colleague's windows were signed in with the old password: they end.
    sessions = request.app[SESSIONS]
    for token in [t for t, s in sessions.items() if s.user == user]:
        sessions.pop(token).end()
    done = "up" if written is not None else "1"
    return web.Response(status=303, headers={"Location": f"/account/password?reset={done}&who={user}"})


def setup(app: web.Application) -> None:
    app.router.add_get("/account/password", show)
    app.router.add_post("/account/password", submit)
    app.router.add_post("/account/reset", reset)
