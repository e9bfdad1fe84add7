"""A person changes their own password at the station: ``sanji node passwd`` and the window's 修改密码
page (issue 16).

The current password signs the person in first, through ``staff_accounts.sign_in``, so a wrong one
counts towards the lock-out exactly as a failed sign-in does, and a paused or disabled account is
refused with the sign-in's own reasons. Then, in one transaction: the new scrypt hash, the station's
data key wrapped afresh under the new password (``node/data_key.py``; the same key, so everything
sealed before stays readable, and the old password opens nothing any more), and, for an account the
hub made, a signed ``staff`` change carrying the new hash, a grant key derived from the new password
and the hub's version of the account the station held (``sync/staff_change.py``): it travels up with
the station's next batch, so the hub's next feed entry for the account carries the new hash instead
of bringing the old one back. Never the password. A local account (made here) stays here: the hub
does not know it.

Split in two so the window can run the slow half off its event loop: :func:`prepare` (three or four
scrypts, on any connection) and :func:`store` (one short transaction on the station's own connection,
which refuses if the account changed meanwhile, say a feed page arrived between the two).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlite_utils

from node import data_key, staff_accounts, staff_schema
from node.staff_schema import HUB
from replica.errors import Refused
from sync import staff_change
from sync.change import Change
from sync.staff_grant import grant_key
from sync.staff_password import DEFAULT_PARAMS, SALT_BYTES, ScryptParams, hash_password

if TYPE_CHECKING:
    from node.staff_session import StaffSession
    from node.station import Station

MAX_LENGTH = 256  # the sign-in form's limit, as the dashboard's

SAME = "新密码不能与当前密码相同，密码未修改 (the new password must differ from the current one)"
TOO_LONG = "新密码不能超过 {limit} 个字符，密码未修改 (the new password is too long)"
CHANGED_MEANWHILE = (
    "修改期间该账户已被区局或本站管理员改动，密码未修改；请重新登录后再试 "
    "(the account changed while the new password was being prepared; nothing was changed)"
)


@dataclass(frozen=True)
class NewPassword:
    """What :func:`prepare` made for :func:`store`: never the password itself."""

    user: str
    old_hash: str  # the hash the current password matched: store refuses if it is no longer the account's
    password_hash: str
    wrapped: bytes  # the station's data key under the new password
    grant_key: str | None  # for a hub-made account: the grant key of the new password


def check_length(new: str) -> None:
    """The length rules a new password meets, the station's account rules first (``password_too_short``);
    a colleague's reset (``node/staff_reset.py``) asks the same."""
    staff_accounts.check_password_length(new)
    if len(new) > MAX_LENGTH:
        raise Refused(TOO_LONG.format(limit=MAX_LENGTH), code="password_too_long")


def check_new(old: str, new: str) -> None:
    """The rules a new password meets: its length, and that it is not the current one."""
    check_length(new)
    if new == old:
        raise Refused(SAME, code="password_unchanged")


def prepare(
    db: sqlite_utils.Database,
    *,
    station: str,
    user: str,
    old: str,
    new: str,
    now_ms: int,
    params: ScryptParams = DEFAULT_PARAMS,
) -> NewPassword:
    """Sign ``user`` in with ``old`` (refusals and lock-out as at sign-in; a wrong one is counted and
    committed), check ``new``, and make the new hash, the rewrapped data key and, for a hub-made
    account, the new grant key. Writes nothing else."""
    session = staff_accounts.sign_in(db, station=station, user=user, password=old, now_ms=now_ms)
    try:
        check_new(old, new)
        found = staff_schema.account(db.conn, user)
        if found is None:  # removed between the sign-in and here
            raise Refused(CHANGED_MEANWHILE, code="staff_changed")
        password_hash, wrapped, grant = secrets_for(session, found, new, station=station, now_ms=now_ms, params=params)
        return NewPassword(
            user=user, old_hash=found.password_hash, password_hash=password_hash, wrapped=wrapped, grant_key=grant
        )
    finally:
        session.end()


def secrets_for(
    session: StaffSession, account: staff_schema.Account, new: str, *, station: str, now_ms: int, params: ScryptParams
) -> tuple[str, bytes, str | None]:
    """What ``new`` becomes for ``account``, never the password itself: its scrypt hash, the station's
    data key from ``session`` wrapped under it, and, for a hub-made account, its grant key (else None).
    The person's own change and an administrator's reset make the same three."""
    wrapped = data_key.wrap(session.data_key(now_ms), new, station=station, user=account.user, params=params)
    password_hash = hash_password(new, os.urandom(SALT_BYTES), params)
    grant = grant_key(new, os.urandom(SALT_BYTES), params) if account.source == HUB else None
    return password_hash, wrapped.to_bytes(), grant


def write_change(st: Station, user: str, password_hash: str, grant: str, seen: int, *, author: str) -> Change:
    """The signed ``staff`` change that carries a hub-made account's new hash up, inside the caller's
    transaction: refused by the station's admission as the hub would refuse it, and then nothing the
    caller wrote is kept."""
    return st.write(
        staff_change.STAFF_ENTITY,
        staff_change.record_id(st.code, user),
        staff_change.fields(password_hash, grant, seen),
        {},
        author=author,
    )


def store(st: Station, new: NewPassword) -> Change | None:
    """Write :func:`prepare`'s result in one transaction of the station: hash, wrapped key and, for a
    hub-made account, the signed change that carries the hash up. The change, or None for a local
    account."""
    with st.transaction() as conn:
        held = staff_schema.account(conn, new.user)
        travels = held is not None and held.source == HUB
        if held is None or not held.enabled or held.password_hash != new.old_hash or (travels and not new.grant_key):
            raise Refused(CHANGED_MEANWHILE, code="staff_changed")
        seen = held.hub_version if travels else None
        conn.execute(
            "UPDATE staff SET password_hash=?, wrapped_key=?, grant_key=?, grant=NULL, changed_ms=?, password_seen=?"
            " WHERE user=?",
            (new.password_hash, new.wrapped, new.grant_key or held.grant_key, st.clock(), seen, new.user),
        )
        if not travels or seen is None or new.grant_key is None:
            return None
        return write_change(st, new.user, new.password_hash, new.grant_key, seen, author=new.user)


def change(st: Station, *, user: str, old: str, new: str, params: ScryptParams = DEFAULT_PARAMS) -> dict[str, object]:
    """``sanji node passwd``: both halves on the station's connection."""
    prepared = prepare(st.db, station=st.code, user=user, old=old, new=new, now_ms=st.clock(), params=params)
    written = store(st, prepared)
    return {"station": st.code, "user": user, "travels": written is not None}
