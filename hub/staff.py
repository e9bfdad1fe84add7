"""Station staff accounts made at the hub: ``sanji hub add-staff``, ``disable-staff``, ``enable-staff``
and ``staff`` (issue 16).

The hub holds a person's password only for the moment of the command: it keeps the scrypt hash the
station checks at sign-in (``sync/staff_password.py``) and the public half of a grant key derived from
the password (``sync/staff_grant.py``), through which a colleague's session at the station passes on
the station's data key; never the password, never the grant's private half. Each station's feed
carries its own accounts down (``hub/feed.py``), and only its own.

The rules an account must meet are the station's own (``sync/staff_rules.py``), so an account made
here is never one the station would refuse. Refusals are ``Refused`` with a stable code:
``unknown_station``, ``staff_exists``, ``unknown_user``, ``bad_user``, ``password_too_short``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from replica.errors import Refused
from replica.ids import iso_from_ms
from sync import staff_rules
from sync.change import Change
from sync.staff_change import STAFF_ENTITY, split_id
from sync.staff_grant import grant_key
from sync.staff_password import DEFAULT_PARAMS, SALT_BYTES, ScryptParams, hash_password

if TYPE_CHECKING:
    from hub.service import Hub
    from hub.state import HubState
    from hub.store import StaffAccount

ROLE_NAMES = {staff_rules.ADMIN: "管理员", staff_rules.STAFF: "工作人员"}


def _station(hub: Hub, code: str) -> None:
    if hub.store.station(code) is None:
        raise Refused(
            f"区局没有登记站点 {code}：请核对站点编码（sanji hub status 列出所有站点） (no such station)",
            code="unknown_station",
        )


def _checked(check: Callable[..., None], *args: str) -> None:
    try:
        check(*args)
    except staff_rules.StaffRuleError as exc:
        raise Refused(str(exc), code=exc.code) from None


def _secrets(password: str, params: ScryptParams) -> tuple[str, str]:
    """The hash and the grant's public key: the only two things the hub keeps of a password. Each has
    its own random salt, so the grant key says nothing about the hash and the other way round."""
    return (
        hash_password(password, os.urandom(SALT_BYTES), params),
        grant_key(password, os.urandom(SALT_BYTES), params),
    )


def _unknown_user(station: str, user: str) -> Refused:
    return Refused(
        f"站点 {station} 没有用户名为 {user} 的工作人员账户：请核对用户名（sanji hub staff 列出账户）"
        " (no such account)",
        code="unknown_user",
    )


def add_staff(
    hub: Hub,
    *,
    station: str,
    user: str,
    name: str,
    role: str,
    password: str,
    params: ScryptParams = DEFAULT_PARAMS,
) -> dict[str, object]:
    """A new enabled account at ``station``; it reaches the station with its next sync."""
    _station(hub, station)
    _checked(staff_rules.check_new, user, name, password)
    if role not in staff_rules.ROLES:
        raise Refused(
            f"角色只能是 admin（管理员）或 staff（工作人员），不能是 {role!r} (unknown role)", code="bad_role"
        )
    if hub.store.staff_account(station, user) is not None:  # before the cost of scrypt; checked again below
        raise _exists(station, user)
    stored, grant = _secrets(password, params)
    with hub.store.transaction():
        version = hub.store.add_staff_account(
            station, user, name=name.strip(), role=role, password_hash=stored, grant_key=grant, now_ms=hub.clock()
        )
        if version is None:
            raise _exists(station, user)
    return {"station": station, "user": user, "name": name.strip(), "role": role, "version": version}


def _exists(station: str, user: str) -> Refused:
    return Refused(
        f"站点 {station} 已有用户名为 {user} 的工作人员账户：请换一个用户名；"
        "要重设其密码请用 sanji hub enable-staff (this user name is taken at that station)",
        code="staff_exists",
    )


def disable_staff(hub: Hub, *, station: str, user: str) -> dict[str, object]:
    """Stop ``user`` signing in at ``station`` from its next sync on; the station drops the person's copy
    of the data key then. Disabling a disabled account changes nothing."""
    _station(hub, station)
    held = hub.store.staff_account(station, user)
    if held is None:
        raise _unknown_user(station, user)
    version = held.version
    if held.enabled:
        with hub.store.transaction():
            version = hub.store.set_staff_account(station, user, enabled=False, now_ms=hub.clock()) or version
    return {"station": station, "user": user, "enabled": False, "version": version}


def enable_staff(
    hub: Hub, *, station: str, user: str, password: str, params: ScryptParams = DEFAULT_PARAMS
) -> dict[str, object]:
    """Let ``user`` sign in again with a new password (also the reset of a forgotten one): a new hash
    and grant key; the station drops the copy wrapped under the old password and passes the data key
    on again at the next colleague's sign-in."""
    _station(hub, station)
    _checked(staff_rules.check_password, password)
    if hub.store.staff_account(station, user) is None:
        raise _unknown_user(station, user)
    stored, grant = _secrets(password, params)
    with hub.store.transaction():
        version = hub.store.set_staff_account(
            station, user, enabled=True, password_hash=stored, grant_key=grant, now_ms=hub.clock()
        )
        if version is None:
            raise _unknown_user(station, user)
    return {"station": station, "user": user, "enabled": True, "version": version}


def take_station_change(hub: HubState, change: Change) -> int | None:
    """Apply an admitted password change from a station (``sync/staff_change.py``) to the hub's account,
    inside the caller's transaction (the batch's, or the repair's): its new version, which the
    station's next feed page carries back, or None when the hub's own later set wins or nothing
    changes. The change itself stays in the log like any other."""
    named = split_id(change.id) if change.entity == STAFF_ENTITY else None
    if named is None:
        return None
    station, user = named
    f = change.fields
    return hub.store.take_station_password(
        station,
        user,
        password_hash=str(f["password_hash"]),
        grant_key=str(f["grant_key"]),
        seen=int(str(f["seen"])),
        now_ms=hub.clock(),
    )


def row(account: StaffAccount) -> dict[str, object]:
    """An account as listed: never its hash or grant key."""
    return {
        "station": account.station,
        "user": account.user,
        "name": account.name,
        "role": account.role,
        "enabled": account.enabled,
        "version": account.version,
        "changed_at": iso_from_ms(account.changed_ms),
    }


def staff_list(hub: Hub, station: str | None = None) -> list[dict[str, object]]:
    if station is not None:
        _station(hub, station)
    return [row(a) for a in hub.store.staff_accounts(station)]


def staff_text(doc: dict[str, object]) -> str:
    rows = doc["staff"]
    assert isinstance(rows, list)
    if not rows:
        return "还没有工作人员账户（用 sanji hub add-staff 建立）"
    return "\n".join(
        f"{r['station']}  {r['user']}  {r['name']}  {ROLE_NAMES.get(str(r['role']), r['role'])}"
        f"  {'启用' if r['enabled'] else '已停用'}  最近变更 {r['changed_at']}"
        for r in rows
    )
