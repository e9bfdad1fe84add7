"""An administrator resets a colleague's password at the station: ``sanji node passwd DIR --staff ADMIN
--user COLLEAGUE`` and the window's 重置同事密码 form (issue 16).

The administrator signs in first (``staff_accounts.sign_in``: a wrong password counts towards *their*
lock-out, a paused or disabled administrator is refused with the sign-in's own reasons) and must be
an administrator of this station (``not_admin`` otherwise). Then, as the person's own change does
(``node/staff_password.py``), in one transaction: the colleague's new scrypt hash, the station's data
key from the administrator's live session wrapped under the new password (so the colleague signs in
with it and reads what was sealed; the old password opens nothing), the colleague's lock-out cleared,
and, for an account the hub made, the same signed ``staff`` change the person's own would write, only
authored by the administrator. The hub asks it the one admission question (``sync/staff_change.py``:
"the person or an enabled administrator of that station") and applies it by ``password_version``
exactly as the person's own, so its next feed entry does not bring the old hash back. The station's
write path asks the same question first: an administrator the hub does not know (one made here) may
not reset a hub-made account, and the refusal (``staff_not_self``) changes nothing.

A local account (made here) stays here and is enabled again by the reset, as ``staff_accounts.enable``
always did. A hub-made account the hub disabled is refused (``disabled``): the hub's word on whether
it may sign in wins, so it is re-enabled there (``sanji hub enable-staff``). Resetting one's own
account is the person's own change and goes through ``staff_password``.

Split like ``staff_password``: :func:`prepare` (the scrypts, on any connection, so the window runs it
off its loop) and :func:`store` (one short transaction on the station's own connection, which refuses
if either account changed meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlite_utils

from node import staff_accounts, staff_schema
from node.staff_password import CHANGED_MEANWHILE, check_length, secrets_for, write_change
from node.staff_schema import ADMIN, HUB
from replica.errors import Refused
from sync.change import Change
from sync.staff_password import DEFAULT_PARAMS, ScryptParams

if TYPE_CHECKING:
    from node.station import Station

NOT_ADMIN = (
    "只有本站管理员可以重设同事的密码，密码未修改；忘记密码请找本站管理员或区局重设 "
    "(only this station's administrator may reset a colleague's password)"
)
DISABLED_BY_HUB = (
    "账户 {user} 已由区局停用，本站不能重设其密码；请区局用 sanji hub enable-staff 恢复并设置新密码 "
    "(the hub disabled this account: it is re-enabled at the hub)"
)


@dataclass(frozen=True)
class Reset:
    """What :func:`prepare` made for :func:`store`: never the password itself."""

    by: str  # the administrator, the change's author
    user: str  # the colleague
    old_hash: str  # the colleague's hash when prepared: store refuses if it is no longer theirs
    password_hash: str
    wrapped: bytes  # the station's data key under the new password, for the colleague
    grant_key: str | None  # for a hub-made account: the grant key of the new password


def _unknown(user: str) -> Refused:
    return Refused(staff_accounts.UNKNOWN.format(user), code="unknown_user")


def prepare(
    db: sqlite_utils.Database,
    *,
    station: str,
    admin: str,
    admin_password: str,
    user: str,
    new: str,
    now_ms: int,
    params: ScryptParams = DEFAULT_PARAMS,
) -> Reset:
    """Sign ``admin`` in (refusals and lock-out as at sign-in), check they administer this station and
    that ``user`` may be reset, and make the new hash, the data key wrapped for ``user`` and, for a
    hub-made account, the new grant key. Writes nothing else."""
    session = staff_accounts.sign_in(db, station=station, user=admin, password=admin_password, now_ms=now_ms)
    try:
        if not session.is_admin or session.station != station:
            raise Refused(NOT_ADMIN, code="not_admin")
        check_length(new)
        found = staff_schema.account(db.conn, user)
        if found is None:
            raise _unknown(user)
        if found.source == HUB and not found.enabled:
            raise Refused(DISABLED_BY_HUB.format(user=user), code="disabled")
        password_hash, wrapped, grant = secrets_for(session, found, new, station=station, now_ms=now_ms, params=params)
        return Reset(
            by=session.user,
            user=user,
            old_hash=found.password_hash,
            password_hash=password_hash,
            wrapped=wrapped,
            grant_key=grant,
        )
    finally:
        session.end()


def store(st: Station, reset: Reset) -> Change | None:
    """Write :func:`prepare`'s result in one transaction of the station: the colleague's hash, wrapped
    key and cleared lock-out and, for a hub-made account, the signed change by the administrator that
    carries the hash up (refused by the station's admission as the hub would refuse it). The change,
    or None for a local account."""
    with st.transaction() as conn:
        by = staff_schema.account(conn, reset.by)
        if by is None or not by.enabled or by.role != ADMIN:  # disabled or demoted in between
            raise Refused(NOT_ADMIN, code="not_admin")
        held = staff_schema.account(conn, reset.user)
        if held is None or held.password_hash != reset.old_hash:
            raise Refused(CHANGED_MEANWHILE, code="staff_changed")
        travels = held.source == HUB
        if travels and (not held.enabled or reset.grant_key is None):
            raise Refused(CHANGED_MEANWHILE, code="staff_changed")
        seen = held.hub_version if travels else None
        conn.execute(
            "UPDATE staff SET enabled=?, password_hash=?, wrapped_key=?, grant_key=?, grant=NULL, failures=0,"
            " failed_at=NULL, locked_until_ms=0, changed_ms=?, password_seen=? WHERE user=?",
            (
                int(held.enabled or not travels),  # a local account is enabled again, as enable() does
                reset.password_hash,
                reset.wrapped,
                reset.grant_key or held.grant_key,
                st.clock(),
                seen,
                reset.user,
            ),
        )
        if seen is None or reset.grant_key is None:
            return None
        # Inside the same transaction: refused by the station's admission, nothing above is kept.
        return write_change(st, reset.user, reset.password_hash, reset.grant_key, seen, author=reset.by)


def reset(
    st: Station,
    *,
    admin: str,
    admin_password: str,
    user: str,
    new: str,
    params: ScryptParams = DEFAULT_PARAMS,
) -> dict[str, object]:
    """``sanji node passwd DIR --staff ADMIN --user COLLEAGUE``: both halves on the station's connection."""
    prepared = prepare(
        st.db,
        station=st.code,
        admin=admin,
        admin_password=admin_password,
        user=user,
        new=new,
        now_ms=st.clock(),
        params=params,
    )
    written = store(st, prepared)
    return {"station": st.code, "user": user, "by": prepared.by, "travels": written is not None}
