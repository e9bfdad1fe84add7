"""Staff accounts at a station, usable offline: the first administrator, sign-in, lock-out, password
changes, disabling and enabling (issue 16).

Every operation takes the time (``now_ms``) from its caller and opens its own write transaction, so a
refusal that must be remembered (a wrong password counts towards the lock-out) is committed before
the ``Refused`` is raised, and a refusal that must change nothing changes nothing.

Refusals are ``Refused`` with a stable code and a reason in Chinese, English in brackets:
``unknown_user``, ``wrong_password``, ``disabled``, ``locked_out``, ``no_data_key`` (the account may
sign in but holds no copy of the data key), ``foreign_key`` and ``key_tampered``
(``node/data_key.py``), ``password_too_short``, ``bad_user``, ``staff_exists``, ``not_admin``,
``last_admin``.

Unknown user and wrong password are told apart on purpose: the station's window is one desk PC whose
few accounts every colleague knows, so the distinction helps staff and reveals little, while the
lock-out still limits guessing. An unknown name still costs one scrypt, so timing says no more than
the message. Disabling an account removes its copy of the data key, so the right password alone can
no longer unlock anything; enabling it again needs an administrator's live session to wrap the key
afresh under a password the administrator sets (the person changes it at their next sign-in).
Accounts the hub made receive the key through a grant instead (``node/staff_grants.py``): every good
sign-in here passes the key on to the colleagues still waiting for it.
"""

from __future__ import annotations

import functools
import os
import sqlite3

import sqlite_utils

from node import data_key, staff_grants, staff_lockout, staff_schema
from node.staff_schema import ADMIN, LOCAL, ROLES, Account
from node.staff_session import DEFAULT_IDLE_MS, StaffSession
from protocol.codec import pack
from replica.db import transaction
from replica.errors import Refused
from sync import staff_rules
from sync.staff_password import (
    DEFAULT_PARAMS,
    SALT_BYTES,
    ScryptParams,
    check_password,
    hash_password,
    parse_hash,
)

UNKNOWN = "本站没有用户名为 {} 的工作人员，请核对用户名 (no such staff account here)"


@functools.cache
def _dummy_hash() -> str:
    # An unknown user name is checked against this, so a refusal takes as long as a wrong password.
    return hash_password(os.urandom(16).hex(), os.urandom(SALT_BYTES))


def _hash(password: str, params: ScryptParams) -> str:
    return hash_password(password, os.urandom(SALT_BYTES), params)


def check_new(user: str, name: str, password: str) -> None:
    try:
        staff_rules.check_new(user, name, password)  # the hub's add-staff checks the same rules
    except staff_rules.StaffRuleError as exc:
        raise Refused(str(exc), code=exc.code) from None


def check_password_length(password: str) -> None:
    try:
        staff_rules.check_password(password)
    except staff_rules.StaffRuleError as exc:
        raise Refused(str(exc), code=exc.code) from None


def _insert(
    conn: sqlite3.Connection,
    user: str,
    name: str,
    role: str,
    password_hash: str,
    wrapped: bytes,
    now_ms: int,
) -> None:
    conn.execute(
        "INSERT INTO staff (user, name, role, source, password_hash, enabled, wrapped_key, created_ms, changed_ms)"
        " VALUES (?,?,?,?,?,1,?,?,?)",
        (
            user,
            name.strip(),
            role,
            LOCAL,
            password_hash,
            wrapped,
            now_ms,
            now_ms,
        ),
    )


def create_first_admin(
    db: sqlite_utils.Database,
    *,
    station: str,
    user: str,
    name: str,
    password: str,
    now_ms: int,
    params: ScryptParams = DEFAULT_PARAMS,
    idle_ms: int = DEFAULT_IDLE_MS,
) -> StaffSession:
    """The station's first local administrator (``node init``), and the station's data key, drawn
    here. Refused once the station has any account or already has a data key: a second key would
    leave everything sealed under the first unreadable."""
    check_new(user, name, password)
    # scrypt runs before the write transaction, so other processes never wait on it for the lock.
    stored = _hash(password, params)
    key = data_key.new_data_key()
    wrapped = data_key.wrap(key, password, station=station, user=user, params=params).to_bytes()
    with transaction(db) as conn:
        if conn.execute("SELECT 1 FROM staff LIMIT 1").fetchone() is not None:
            raise Refused(
                "本站已有工作人员账户，不能再创建首个管理员：其他账户请区局用 sanji hub add-staff 建立，本站同步后即可"
                "登录 (this station already has staff accounts)",
                code="staff_exists",
            )
        if staff_schema.key_check(conn) is not None:
            raise Refused(
                "本站已有数据密钥，不能再创建首个管理员：账户请区局用 sanji hub add-staff 建立，本站同步后即可登录 "
                "(this station already has a data key)",
                code="staff_exists",
            )
        staff_schema.record_key_check(conn, data_key.key_check(key, station), now_ms)
        _insert(conn, user, name, ADMIN, stored, wrapped, now_ms)
    return StaffSession(
        station=station, user=user, name=name.strip(), role=ADMIN, data_key=key, now_ms=now_ms, idle_ms=idle_ms
    )


def _known(db: sqlite_utils.Database, user: str, password: str) -> Account:
    found = staff_schema.account(db.conn, user)
    if found is None:
        check_password(password, _dummy_hash())
        raise Refused(UNKNOWN.format(user), code="unknown_user")
    return found


def _password_ok(db: sqlite_utils.Database, found: Account, password: str, now_ms: int) -> None:
    """Refuse a disabled or paused account, then check the password, counting a wrong one."""
    if not found.enabled:
        raise Refused(
            f"账户 {found.user} 已停用，不能登录；如需恢复请联系管理员 (this account is disabled)", code="disabled"
        )
    wait = staff_lockout.wait_ms(found.failed_at, now_ms)
    if wait:
        raise Refused(
            f"账户 {found.user} 密码错误次数过多，已暂停登录，请 {staff_lockout.minutes(wait)} 分钟后再试；"
            f"如忘记密码，请本站管理员重设 (too many wrong passwords: sign-in paused)",
            code="locked_out",
        )
    if check_password(password, found.password_hash):
        return
    failures = staff_lockout.after_failure(found.failed_at, now_ms)
    with transaction(db) as conn:
        conn.execute(
            "UPDATE staff SET failures=?, failed_at=?, locked_until_ms=? WHERE user=?",
            (failures.count, pack(list(failures.times)), failures.locked_until_ms, found.user),
        )
    if failures.locked_until_ms:
        after = f"错误次数过多，已暂停登录 {staff_lockout.minutes(failures.locked_until_ms - now_ms)} 分钟"
    else:
        after = f"再错 {staff_lockout.left_before_pause(failures.times, now_ms)} 次将暂停登录"
    raise Refused(f"密码不正确，{after} (wrong password)", code="wrong_password")


def _unlock(db: sqlite_utils.Database, station: str, found: Account, password: str, now_ms: int) -> bytes:
    if found.wrapped_key is None and found.grant is not None:
        return staff_grants.redeem(db, station=station, account=found, password=password)
    if found.wrapped_key is None:
        first = _first_key(db, station, found, password, now_ms)
        if first is not None:
            return first
        raise Refused(
            f"账户 {found.user} 密码正确，但尚未取得本站数据密钥：区局新建的账户请等本站任一同事登录一次后再登录；"
            "本站账户请管理员重设密码 (this account holds no copy of the station's data key yet)",
            code="no_data_key",
        )
    check = staff_schema.key_check(db.conn)
    return data_key.unwrap(found.wrapped_key, password, station=station, user=found.user, check=check)


def _first_key(db: sqlite_utils.Database, station: str, found: Account, password: str, now_ms: int) -> bytes | None:
    """A station that never had a data key (made before issue 16, its first account from the hub)
    draws one at the first good sign-in, wrapped for that person at the cost their hash names. None
    when the station already has a key: then only a grant or an administrator can hand it over."""

    def keyless(conn: sqlite3.Connection) -> bool:
        # A copy of a key with its check value gone (an edited database) is still a key: never
        # start a second one beside it, or everything sealed under the first is out of reach.
        copies = conn.execute("SELECT 1 FROM staff WHERE wrapped_key IS NOT NULL OR grant IS NOT NULL").fetchone()
        return staff_schema.key_check(conn) is None and copies is None

    if not keyless(db.conn):
        return None
    parsed = parse_hash(found.password_hash)
    params = parsed[0] if parsed is not None else DEFAULT_PARAMS
    key = data_key.new_data_key()
    wrapped = data_key.wrap(key, password, station=station, user=found.user, params=params).to_bytes()
    with transaction(db) as conn:
        if not keyless(conn):  # someone else's first sign-in won the race: theirs is the key
            return None
        staff_schema.record_key_check(conn, data_key.key_check(key, station), now_ms)
        conn.execute("UPDATE staff SET wrapped_key=?, grant=NULL WHERE user=?", (wrapped, found.user))
    return key


def sign_in(
    db: sqlite_utils.Database, *, station: str, user: str, password: str, now_ms: int, idle_ms: int = DEFAULT_IDLE_MS
) -> StaffSession:
    """A live session holding the data key, or ``Refused`` saying why not. Nothing but the failure
    count changes on a refusal; a success clears the count."""
    found = _known(db, user, password)
    _password_ok(db, found, password, now_ms)
    key = _unlock(db, station, found, password, now_ms)
    if found.failed_at or found.locked_until_ms:
        with transaction(db) as conn:
            conn.execute("UPDATE staff SET failures=0, failed_at=NULL, locked_until_ms=0 WHERE user=?", (found.user,))
    session = StaffSession(
        station=station, user=found.user, name=found.name, role=found.role, data_key=key, now_ms=now_ms, idle_ms=idle_ms
    )
    # Whoever signs in passes the key on to hub-made colleagues still waiting for it.
    staff_grants.seal_pending(db, by=session, now_ms=now_ms)
    return session


def _require_admin(session: StaffSession, station: str, now_ms: int) -> bytes:
    key = session.data_key(now_ms)  # refuses a locked session first
    if not session.is_admin or session.station != station:
        raise Refused(
            "只有本站管理员可以管理工作人员账户 (only this station's administrator may do this)", code="not_admin"
        )
    return key


def add_staff(
    db: sqlite_utils.Database,
    *,
    station: str,
    user: str,
    name: str,
    password: str,
    role: str,
    by: StaffSession,
    now_ms: int,
    params: ScryptParams = DEFAULT_PARAMS,
) -> None:
    """A local account made by this station's administrator (a station with no hub yet), holding the
    data key from the administrator's live session wrapped under ``password``."""
    key = _require_admin(by, station, now_ms)
    check_new(user, name, password)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    wrapped = data_key.wrap(key, password, station=station, user=user, params=params).to_bytes()
    stored = _hash(password, params)
    with transaction(db) as conn:
        if staff_schema.account(conn, user) is not None:
            raise Refused(f"用户名 {user} 已被使用，请换一个 (this user name is taken)", code="staff_exists")
        _insert(conn, user, name, role, stored, wrapped, now_ms)


def disable(db: sqlite_utils.Database, *, station: str, user: str, by: StaffSession, now_ms: int) -> None:
    """Stop ``user`` signing in, and drop their copy of the data key so even the right password
    unlocks nothing. The last enabled administrator cannot be disabled here (nobody could enable
    anyone again); the hub's feed, once integrated, may still do it."""
    _require_admin(by, station, now_ms)
    with transaction(db) as conn:
        found = staff_schema.account(conn, user)
        if found is None:
            raise Refused(UNKNOWN.format(user), code="unknown_user")
        if found.role == ADMIN and found.enabled and staff_schema.enabled_admins(conn) <= 1:
            raise Refused("不能停用本站最后一个管理员 (the last administrator cannot be disabled)", code="last_admin")
        conn.execute(
            "UPDATE staff SET enabled=0, wrapped_key=NULL, changed_ms=? WHERE user=?",
            (now_ms, user),
        )


def enable(
    db: sqlite_utils.Database,
    *,
    station: str,
    user: str,
    password: str,
    by: StaffSession,
    now_ms: int,
    params: ScryptParams = DEFAULT_PARAMS,
) -> None:
    """Let ``user`` sign in again with a password the administrator sets: a new hash, the data key
    wrapped afresh, the failure count cleared. It stays at the station; ``sanji node passwd --user``
    and the window's 重置同事密码 go through ``node/staff_reset.py``, whose reset of an account the hub
    made travels up as a signed change."""
    key = _require_admin(by, station, now_ms)
    check_password_length(password)
    wrapped = data_key.wrap(key, password, station=station, user=user, params=params).to_bytes()
    stored = _hash(password, params)
    with transaction(db) as conn:
        if staff_schema.account(conn, user) is None:
            raise Refused(UNKNOWN.format(user), code="unknown_user")
        conn.execute(
            "UPDATE staff SET enabled=1, password_hash=?, wrapped_key=?, failures=0, failed_at=NULL,"
            " locked_until_ms=0, changed_ms=? WHERE user=?",
            (stored, wrapped, now_ms, user),
        )
