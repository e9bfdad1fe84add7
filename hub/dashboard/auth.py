"""Operator sign-in for the dashboard: sessions, CSRF, login throttling, the audit trail, and the
page renderer every dashboard handler uses.

Sessions live in the hub database (only the SHA-256 of the cookie value is stored, so a copy of the
database does not log anyone in) and survive a hub restart. The cookie is HttpOnly and
SameSite=Strict; every form also carries the session's CSRF token, checked on every POST. Failed
logins are counted per user name and per client address. A hall shares one address behind its NAT,
so one person's typos pause only that person at that address (``MAX_FAILURES`` in ``WINDOW_MS``);
the address as a whole (someone trying many user names) and the user name as a whole (someone trying
it from many addresses) are paused at ``MAX_ADDRESS_FAILURES`` and ``MAX_USER_FAILURES``. A paused
login is refused until the window has passed, whatever the password.

Everything an operator changes, and every full ID number or phone they reveal, goes into
``dash_audit`` with who, what, why and from where. An operator changes their own password on
``/account/password`` (``account``), which ends all their sessions.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hub.appkeys import HUB
from hub.dashboard.keys import DUMMY_HASH, ENV
from hub.passwords import check_password, hash_password
from hub.service import Hub
from present.webui import new_token, read_form, render

SESSION_COOKIE = "sanji_session"
LOGIN_COOKIE = "sanji_login"
SESSION_IDLE_MS = 2 * 3600 * 1000  # an unattended hall PC logs itself out
SESSION_MAX_MS = 12 * 3600 * 1000
MAX_FAILURES = 5  # wrong guesses by one user name from one address
MAX_ADDRESS_FAILURES = 20  # from one address, whichever user names they were for
MAX_USER_FAILURES = 20  # for one user name, from whichever addresses
WINDOW_MS = 15 * 60 * 1000


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str


SESSION = web.RequestKey("dashboard_session", Session)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def hub_of(request: web.Request) -> Hub:
    return request.app[HUB]


def remote_of(request: web.Request) -> str:
    return (request.remote or "?")[:64]


def current_session(request: web.Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or len(token) > 128:
        return None
    hub = hub_of(request)
    now = hub.clock()
    row = hub.store.conn.execute(
        "SELECT user, csrf, created_ms, seen_ms FROM dash_sessions WHERE token_hash=?", (_hash(token),)
    ).fetchone()
    if row is None:
        return None
    user, csrf, created, seen = str(row[0]), str(row[1]), int(row[2]), int(row[3])
    if now - seen > SESSION_IDLE_MS or now - created > SESSION_MAX_MS or hub.store.operator_hash(user) is None:
        with hub.store.transaction():
            hub.store.conn.execute("DELETE FROM dash_sessions WHERE token_hash=?", (_hash(token),))
        return None
    if now - seen > 60_000:  # touch at most once a minute: every touch is a synchronous commit
        with hub.store.transaction():
            hub.store.conn.execute("UPDATE dash_sessions SET seen_ms=? WHERE token_hash=?", (now, _hash(token)))
    return Session(user, csrf)


def start_session(hub: Hub, user: str, remote: str) -> str:
    """Open a session for ``user`` (inside the caller's transaction) and return its cookie value."""
    token, now = new_token(), hub.clock()
    hub.store.conn.execute(
        "INSERT INTO dash_sessions (token_hash, user, csrf, created_ms, seen_ms, remote) VALUES (?,?,?,?,?,?)",
        (_hash(token), user, new_token(), now, now, remote),
    )
    return token


def end_sessions(hub: Hub, user: str) -> int:
    """End every session of ``user`` (inside the caller's transaction); how many there were."""
    return int(hub.store.conn.execute("DELETE FROM dash_sessions WHERE user=?", (user,)).rowcount)


def record_failure(hub: Hub, user: str, remote: str) -> None:
    """Count one wrong password for ``user`` from ``remote`` (inside the caller's transaction)."""
    now = hub.clock()
    # Failures older than the window lock nothing: drop them, so junk logins cannot pile up rows (and a
    # paused address records no more, so each address adds at most MAX_ADDRESS_FAILURES a window).
    hub.store.conn.execute("DELETE FROM dash_login_failures WHERE at_ms<=?", (now - WINDOW_MS,))
    hub.store.conn.execute("INSERT INTO dash_login_failures (at_ms, user, remote) VALUES (?,?,?)", (now, user, remote))


def set_session_cookie(resp: web.Response, request: web.Request, token: str) -> None:
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/", secure=request.secure)


def session_of(request: web.Request) -> Session:
    sess = request.get(SESSION)
    assert isinstance(sess, Session), "handler is not wrapped in @operator"
    return sess


def audit(request: web.Request, action: str, target: str, *, detail: str = "", reason: str = "") -> None:
    """Record one operator action. Call inside the transaction that makes the change, so the change
    and its audit row commit together."""
    hub = hub_of(request)
    hub.store.conn.execute(
        "INSERT INTO dash_audit (at_ms, user, action, target, detail, reason, remote) VALUES (?,?,?,?,?,?,?)",
        (hub.clock(), session_of(request).user, action, target, detail[:1000], reason[:500], remote_of(request)),
    )


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render a dashboard page with what every page shows: the hub, the operator, the counters."""
    hub = hub_of(request)
    sess = request.get(SESSION)
    base: dict[str, Any] = {
        "hub_name": hub.name,
        "hub_id": hub.hub_id,
        "now_ms": hub.clock(),
        "path": request.path,
        "user": sess.user if isinstance(sess, Session) else None,
        "csrf": sess.csrf if isinstance(sess, Session) else "",
        "nav_conflicts": hub.store.count("conflicts", "resolved=0") if sess else 0,
        "nav_quarantine": hub.store.count("quarantine", "state='open'") if sess else 0,
    }
    base.update(context)
    return render(request.app[ENV], template, base, status=status)


def refuse(request: web.Request, status: int, message: str) -> web.Response:
    return page(request, "error.html", status=status, message=message)


def operator(handler: Handler) -> Handler:
    """Only for a signed-in operator; a POST must also carry the session's CSRF token."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        sess = current_session(request)
        if sess is None:
            if request.method == "GET" and not request.path.startswith("/live"):
                raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))
            return page(request, "error.html", status=401, message="登录已过期，请重新登录后再操作。")
        request[SESSION] = sess
        if request.method == "POST":
            form = await read_form(request)
            sent = str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(sent.encode(), sess.csrf.encode()):
                return refuse(request, 403, "表单已失效（安全校验未通过），请刷新页面后重试。")
        return await handler(request)

    return wrapped


# -- login throttling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lockout:
    wait_ms: int
    scope: str  # "user_here": this user at this address; "address": everyone here; "user": this user anywhere

    def message(self, what: str = "登录") -> str:
        minutes = max(1, -(-self.wait_ms // 60_000))
        whose = {
            "user_here": f"该用户在本机{what}失败次数过多，已暂停该用户在本机{what}",
            "address": f"本机所在地址{what}失败次数过多（多个用户名），已暂停本地址的{what}",
            "user": f"该用户{what}失败次数过多（来自多个地址），已暂停该用户的{what}",
        }[self.scope]
        after = "；如忘记密码，请其他管理员用 sanji hub add-operator 重设" if self.scope != "address" else ""
        return f"{whose}，请 {minutes} 分钟后再试{after}。"


_RULES = (
    ("user_here", "user=? AND remote=?", MAX_FAILURES),
    ("address", "remote=?", MAX_ADDRESS_FAILURES),
    ("user", "user=?", MAX_USER_FAILURES),
)


def lockout(hub: Hub, user: str, remote: str) -> Lockout | None:
    """Whether logins of ``user`` from ``remote`` are paused, for how long, and why (None: not paused)."""
    now = hub.clock()
    worst: Lockout | None = None
    for scope, where, limit in _RULES:
        args = {"user_here": (user, remote), "address": (remote,), "user": (user,)}[scope]
        rows = hub.store.conn.execute(
            f"SELECT at_ms FROM dash_login_failures WHERE {where} AND at_ms>? ORDER BY at_ms DESC LIMIT ?",
            (*args, now - WINDOW_MS, limit),
        ).fetchall()
        if len(rows) >= limit:
            # Paused until the oldest of the last `limit` failures leaves the window.
            wait = int(rows[-1][0]) + WINDOW_MS - now
            if worst is None or wait > worst.wait_ms:
                worst = Lockout(wait, scope)
    return worst


def redirect(location: str) -> web.Response:
    """A 303 to ``location`` that can still carry cookies (a raised HTTPSeeOther cannot)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _safe_next(target: str) -> str:
    # Only a path on this site: an open redirect would let a phishing link borrow the hub's name.
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


async def login_form(request: web.Request) -> web.StreamResponse:
    if current_session(request) is not None:
        raise web.HTTPSeeOther("/")
    return _login_page(request, next_path=request.query.get("next", "/"))


def _login_page(
    request: web.Request, *, next_path: str, error: str = "", user: str = "", status: int = 200
) -> web.Response:
    # Before sign-in there is no session to hang a CSRF token on: a double-submit cookie guards the
    # login form instead (a forged cross-site form cannot read or set it).
    token = new_token()
    resp = page(
        request,
        "login.html",
        status=status,
        login_csrf=token,
        next_path=_safe_next(next_path),
        error=error,
        login_user=user,
    )
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login", secure=request.secure)
    return resp


async def login_submit(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    form = await read_form(request)
    user = str(form.get("user", "")).strip()[:64]
    password = str(form.get("password", ""))
    next_path = str(form.get("next", "/"))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(form.get("csrf", ""))
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return _login_page(
            request, next_path=next_path, user=user, status=403, error="登录表单已失效（安全校验未通过），请重新输入。"
        )
    if not user or not password:
        return _login_page(request, next_path=next_path, user=user, status=400, error="请输入用户名和密码。")
    remote = remote_of(request)
    paused = lockout(hub, user, remote)
    if paused is not None:
        return _login_page(request, next_path=next_path, user=user, status=429, error=paused.message())
    stored = hub.store.operator_hash(user)
    ok = check_password(password, stored if stored is not None else request.app[DUMMY_HASH])
    if not ok or stored is None:
        with hub.store.transaction():
            record_failure(hub, user, remote)
        return _login_page(request, next_path=next_path, user=user, status=401, error="用户名或密码错误。")
    now = hub.clock()
    with hub.store.transaction():
        token = start_session(hub, user, remote)
        # Only this person's own typos here: a colleague's success must not reset someone else's count.
        hub.store.conn.execute("DELETE FROM dash_login_failures WHERE user=? AND remote=?", (user, remote))
        hub.store.conn.execute("DELETE FROM dash_sessions WHERE seen_ms<?", (now - SESSION_MAX_MS,))
        hub.store.conn.execute(
            "INSERT INTO dash_audit (at_ms, user, action, target, remote) VALUES (?,?,?,?,?)",
            (now, user, "login", user, remote),
        )
    resp = redirect(_safe_next(next_path))
    set_session_cookie(resp, request, token)
    resp.del_cookie(LOGIN_COOKIE, path="/login")
    return resp


@operator
async def logout(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    with hub.store.transaction():
        hub.store.conn.execute("DELETE FROM dash_sessions WHERE token_hash=?", (_hash(token),))
        audit(request, "logout", session_of(request).user)
    resp = redirect("/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


def setup(app: web.Application) -> None:
    app[DUMMY_HASH] = hash_password(new_token())
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
