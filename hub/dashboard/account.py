"""The signed-in operator's own account: changing their password at ``/account/password``.

The form asks for the current password and the new one twice; the new one needs at least
``hub.passwords.MIN_LENGTH`` characters, what ``sanji hub add-operator`` enforces. A wrong current
password counts as a failed login (the same table, the same lock-out: five in 15 minutes for the user or
the address), so the page cannot be used to guess it, and a locked-out user cannot change it either.

On success every session of that operator ends, the one in use included, which is replaced by a fresh
session (new cookie, new CSRF token) in the same transaction: whoever holds an old cookie, on another
PC or copied from this one, is signed out with the old password. The audit row records that the
password changed, or that a wrong current password was given, and how many other sessions ended;
never a password.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.dashboard.auth import (
    audit,
    end_sessions,
    hub_of,
    lockout,
    operator,
    operators,
    page,
    password_matches,
    password_turn,
    record_failure,
    redirect,
    remote_of,
    session_of,
    set_session_cookie,
    shown,
    start_session,
)
from hub.passwords import MIN_LENGTH, hash_password
from present.webui import read_form

MAX_LENGTH = 256  # the login form's limit
DONE = "密码已修改；该账号在其他电脑上的登录已全部退出。"


async def _page(request: web.Request, *, status: int = 200, error: str = "", notice: str = "") -> web.StreamResponse:
    return await shown(
        request,
        lambda hub: page(
            request,
            hub,
            "password.html",
            status=status,
            error=error,
            notice=notice,
            min_length=MIN_LENGTH,
            max_length=MAX_LENGTH,
        ),
    )


@operator
async def password_form(request: web.Request) -> web.StreamResponse:
    return await _page(request, notice=DONE if request.query.get("done") == "1" else "")


def _weak(new: str, again: str, current: str) -> str:
    if len(new) < MIN_LENGTH:
        return f"新密码至少需要 {MIN_LENGTH} 个字符。"
    if len(new) > MAX_LENGTH:
        return f"新密码不能超过 {MAX_LENGTH} 个字符。"
    if new != again:
        return "两次输入的新密码不一致。"
    if new == current:
        return "新密码不能与当前密码相同。"
    return ""


@operator
async def password_submit(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    user = session_of(request).user
    remote = remote_of(request)
    form = await read_form(request)
    current, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
    async with password_turn(request):  # judged one at a time, as a login is (hub/dashboard/auth.py)
        paused = lockout(hub, user, remote)
        right = False
        if paused is None:
            stored = hub.store.operator_hash(user)
            right = bool(current) and stored is not None and await password_matches(current, stored)
            if not right:
                with hub.store.transaction():
                    record_failure(hub, user, remote)
                    audit(request, "password_failed", user, detail="当前密码错误，密码未修改")
    if paused is not None:
        return await _page(request, status=429, error=paused.message("密码验证"))
    if not right:
        return await _page(request, status=400, error="当前密码不正确，密码未修改。")
    problem = _weak(new, again, current)
    if problem:
        return await _page(request, status=400, error=problem + "密码未修改。")
    hashed = await asyncio.to_thread(hash_password, new)  # scrypt, off the loop
    with hub.store.transaction():
        hub.store.add_operator(user, hashed, hub.clock())  # an upsert: replaces the hash
        others = max(0, end_sessions(hub, user) - 1)
        token = start_session(hub, user, remote)
        operators(hub).forget_failures(user)
        audit(request, "password", user, detail=f"已结束该账号的其他 {others} 个会话")
    resp = redirect("/account/password?done=1")
    set_session_cookie(resp, request, token)
    return resp


def setup(app: web.Application) -> None:
    app.router.add_get("/account/password", password_form)
    app.router.add_post("/account/password", password_submit)
