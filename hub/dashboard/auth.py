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

Pages are built and rendered off the event loop (:func:`shown`, over the read model in ``hub/reads``);
the few writes here (sessions, failures, audit rows: ``hub/reads/operator_store.py``) stay on the
loop's serving connection, inside the transaction of the change they belong to. A password's scrypt
check runs in a thread too, one at a time (``PASSWORD_CHECKS``), so that throttling still counts every
failure before the next guess is judged.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hub.appkeys import HUB
from hub.dashboard.keys import DUMMY_HASH, ENV, PASSWORD_CHECKS
from hub.passwords import check_password, hash_password
from hub.reads import READS, ReadHub
from hub.reads.operator_store import FAILURE_SCOPES, OperatorStore
from hub.service import Hub
from hub.state import HubState
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


def operators(hub: HubState) -> OperatorStore:
    """The dashboard's writes, on the serving connection (call them inside its transaction)."""
    return OperatorStore.of(hub.store)


def remote_of(request: web.Request) -> str:
    return (request.remote or "?")[:64]


def current_session(request: web.Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or len(token) > 128:
        return None
    # On the loop, over the serving connection: two lookups by primary key, and the writes that may
    # follow must see them.
    hub = hub_of(request)
    now = hub.clock()
    found = operators(hub).session(_hash(token))
    if found is None:
        return None
    if (
        now - found.seen_ms > SESSION_IDLE_MS
        or now - found.created_ms > SESSION_MAX_MS
        or hub.store.operator_hash(found.user) is None
    ):
        with hub.store.transaction():
            operators(hub).end_session(_hash(token))
        return None
    if now - found.seen_ms > 60_000:  # touch at most once a minute: every touch is a synchronous commit
        with hub.store.transaction():
            operators(hub).touch_session(_hash(token), now)
    return Session(found.user, found.csrf)


def start_session(hub: HubState, user: str, remote: str) -> str:
    """Open a session for ``user`` (inside the caller's transaction) and return its cookie value."""
    token = new_token()
    operators(hub).add_session(_hash(token), user, new_token(), hub.clock(), remote)
    return token


def end_sessions(hub: HubState, user: str) -> int:
    """End every session of ``user`` (inside the caller's transaction); how many there were."""
    return operators(hub).end_sessions_of(user)


def record_failure(hub: HubState, user: str, remote: str) -> None:
    """Count one wrong password for ``user`` from ``remote`` (inside the caller's transaction)."""
    now = hub.clock()
    # Failures older than the window lock nothing: drop them, so junk logins cannot pile up rows (and a
    # paused address records no more, so each address adds at most MAX_ADDRESS_FAILURES a window).
    operators(hub).add_failure(user, remote, now, forget_before_ms=now - WINDOW_MS)


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
    operators(hub).add_audit(
        hub.clock(),
        session_of(request).user,
        action,
        target,
        detail=detail[:1000],
        reason=reason[:500],
        remote=remote_of(request),
    )


async def shown(request: web.Request, build: Callable[[ReadHub], web.StreamResponse]) -> web.StreamResponse:
    """What ``build`` makes of the hub as it is now (read it, render it), made in the read model's
    thread: neither the page's SQL nor its Jinja runs on the event loop."""
    return await request.app[READS].run(build)


def page(request: web.Request, hub: ReadHub, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render a dashboard page with what every page shows: the hub, the operator, the counters. Runs
    in the read model's thread (:func:`shown`), reading through ``hub``."""
    sess = request.get(SESSION)
    base: dict[str, Any] = {
        "hub_name": hub.name,
        "hub_id": hub.hub_id,
        "now_ms": hub.clock(),
        "path": request.path,
        "user": sess.user if isinstance(sess, Session) else None,
        "csrf": sess.csrf if isinstance(sess, Session) else "",
        "nav_conflicts": hub.store.open_conflicts() if sess else 0,
        "nav_quarantine": hub.store.open_quarantine() if sess else 0,
    }
    base.update(context)
    return render(request.app[ENV], template, base, status=status)


def refuse(request: web.Request, hub: ReadHub, status: int, message: str) -> web.Response:
    return page(request, hub, "error.html", status=status, message=message)


async def refused(request: web.Request, status: int, message: str) -> web.StreamResponse:
    """The error page, from a handler on the loop."""
    return await shown(request, lambda hub: refuse(request, hub, status, message))


def operator(handler: Handler) -> Handler:
    """Only for a signed-in operator; a POST must also carry the session's CSRF token."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        sess = current_session(request)
        if sess is None:
            if request.method == "GET" and not request.path.startswith("/live"):
                raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))
            return await refused(request, 401, "登录已过期，请重新登录后再操作。")
        request[SESSION] = sess
        if request.method == "POST":
            form = await read_form(request)
            sent = str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(sent.encode(), sess.csrf.encode()):
                return await refused(request, 403, "表单已失效（安全校验未通过），请刷新页面后重试。")
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


_RULES = (("user_here", MAX_FAILURES), ("address", MAX_ADDRESS_FAILURES), ("user", MAX_USER_FAILURES))
assert {scope for scope, _ in _RULES} == set(FAILURE_SCOPES)


def lockout(hub: HubState, user: str, remote: str) -> Lockout | None:
    """Whether logins of ``user`` from ``remote`` are paused, for how long, and why (None: not paused)."""
    now = hub.clock()
    worst: Lockout | None = None
    for scope, limit in _RULES:
        times = operators(hub).recent_failures(scope, user, remote, after_ms=now - WINDOW_MS, limit=limit)
        if len(times) >= limit:
            # Paused until the oldest of the last `limit` failures leaves the window.
            wait = times[-1] + WINDOW_MS - now
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
    return await _login_page(request, next_path=request.query.get("next", "/"))


async def _login_page(
    request: web.Request, *, next_path: str, error: str = "", user: str = "", status: int = 200
) -> web.StreamResponse:
    # Before sign-in there is no session to hang a CSRF token on: a double-submit cookie guards the
    # login form instead (a forged cross-site form cannot read or set it).
    token = new_token()
    resp = await shown(
        request,
        lambda hub: page(
            request,
            hub,
            "login.html",
            status=status,
            login_csrf=token,
            next_path=_safe_next(next_path),
            error=error,
            login_user=user,
        ),
    )
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login", secure=request.secure)
    return resp


@asynccontextmanager
async def password_turn(request: web.Request) -> AsyncIterator[None]:
    """One password check at a time: a guess is judged (lock-out, scrypt, failure recorded) before the
    next one starts, as when the check ran on the loop, while the loop itself goes on."""
    async with request.app[PASSWORD_CHECKS]:
        yield


async def password_matches(password: str, stored: str) -> bool:
    """scrypt in a thread: about a tenth of a second of CPU that the loop does not wait for."""
    return await asyncio.to_thread(check_password, password, stored)


async def login_submit(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    form = await read_form(request)
    user = str(form.get("user", "")).strip()[:64]
    password = str(form.get("password", ""))
    next_path = str(form.get("next", "/"))
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(form.get("csrf", ""))
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return await _login_page(
            request, next_path=next_path, user=user, status=403, error="登录表单已失效（安全校验未通过），请重新输入。"
        )
    if not user or not password:
        return await _login_page(request, next_path=next_path, user=user, status=400, error="请输入用户名和密码。")
    remote = remote_of(request)
    async with password_turn(request):
        paused = lockout(hub, user, remote)
        if paused is None:
            stored = hub.store.operator_hash(user)
            ok = await password_matches(password, stored if stored is not None else request.app[DUMMY_HASH])
            if not ok or stored is None:
                with hub.store.transaction():
                    record_failure(hub, user, remote)
    if paused is not None:
        return await _login_page(request, next_path=next_path, user=user, status=429, error=paused.message())
    if not ok or stored is None:
        return await _login_page(request, next_path=next_path, user=user, status=401, error="用户名或密码错误。")
    now = hub.clock()
    with hub.store.transaction():
        token = start_session(hub, user, remote)
        # Only this person's own typos here: a colleague's success must not reset someone else's count.
        operators(hub).forget_failures(user, remote)
        operators(hub).end_sessions_idle_since(now - SESSION_MAX_MS)
        operators(hub).add_audit(now, user, "login", user, remote=remote)
    resp = redirect(_safe_next(next_path))
    set_session_cookie(resp, request, token)
    resp.del_cookie(LOGIN_COOKIE, path="/login")
    return resp


@operator
async def logout(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    with hub.store.transaction():
        operators(hub).end_session(_hash(token))
        audit(request, "logout", session_of(request).user)
    resp = redirect("/login")
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


def setup(app: web.Application) -> None:
    app[DUMMY_HASH] = hash_password(new_token())
    app[PASSWORD_CHECKS] = asyncio.Lock()
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
