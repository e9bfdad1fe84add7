"""A password changed at a station, as a signed change that travels up to the hub (issue 16).

The hub makes a station's accounts and sends them down the feed (``protocol/feed.py StaffEntry``);
a person who changes their own password at the station's window or with ``sanji node passwd`` must
not have the hub's next entry for that account (a disable, an enable, a new name) bring the old hash
back. So the station records the change as one of its own changes, entity ``staff``, record
``STATION/user``, author the person, and it travels in the station's signed batches by every path a
change takes (push, the township's relay, a USB stick, reconciliation repair). It carries the new
scrypt hash and a grant key derived from the new password (``sync/staff_grant.py``), never the
password, and ``seen``: the hub's version of the account the station held when the person changed it.

Who wins when the hub also sets the account's password (``hub enable-staff``, the reset of a
forgotten one) is decided by what each side had seen, not by clocks: the hub applies a station's
change only when ``seen`` is at least the version of the hub's own last password set for the account
(the station had received that reset, so its change comes after it); otherwise the hub's reset wins
and the station takes it from the feed (the entry names ``password_version``, the hub's last own
set, which is above the change's ``seen``). Until the hub's feed echoes the station's new hash, the
station keeps it against any entry whose ``password_version`` is not above ``seen``. Both sides end
with the same hash.

The admission question (asked by the station's write path and by every path into the hub, through
``sync/admission.judge``): the record names the author's own station, the account exists there (the
hub only knows the accounts it made; a station's local accounts never travel), the author is the
account's own user or an enabled administrator of that station, and the fields are exactly a
well-formed hash, grant key and ``seen``. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from sync.change import Change
from sync.model import Actor
from sync.staff_grant import parse_grant_key
from sync.staff_password import well_formed
from sync.staff_rules import ADMIN
from sync.staff_user import is_user_name
from sync.verdict import Admission, StaffFact, refused

STAFF_ENTITY = "staff"
FIELDS = frozenset({"password_hash", "grant_key", "seen"})


def record_id(station: str, user: str) -> str:
    return f"{station}/{user}"


def split_id(rec_id: str) -> tuple[str, str] | None:
    """``(station, user)`` of a staff record id, or None when it is not one."""
    station, sep, user = rec_id.rpartition("/")
    if not sep or not station or not is_user_name(user):
        return None
    return station, user


def fields(password_hash: str, grant_key: str, seen: int) -> dict[str, object]:
    return {"password_hash": password_hash, "grant_key": grant_key, "seen": seen}


def judge_staff(change: Change, actor: Actor, account: Callable[[str, str], StaffFact | None]) -> Admission:
    """Could ``actor``'s software have written this password change for ``change.author``?"""
    named = split_id(change.id)
    if named is None:
        return refused(
            change, "bad_staff_change", f"密码变更的记录编号 {change.id!r} 不是「站点/用户名」 (not STATION/user)"
        )
    station, user = named
    if station != actor.code:
        return refused(
            change,
            "staff_foreign",
            f"站点 {actor.code} 不能修改站点 {station} 的工作人员密码，已暂存待核对 "
            f"(a station may change only its own staff's passwords)",
        )
    f = change.fields
    seen = f.get("seen")
    if (
        set(f) != FIELDS
        or change.base
        or not isinstance(f.get("password_hash"), str)
        or not well_formed(str(f["password_hash"]))
        or not isinstance(f.get("grant_key"), str)
        or parse_grant_key(str(f["grant_key"])) is None
        or not isinstance(seen, int)
        or isinstance(seen, bool)
        or seen < 0
    ):
        return refused(
            change,
            "bad_staff_change",
            "密码变更须恰好写入新的密码散列、授权公钥和所见版本，格式不符 "
            "(a password change writes exactly a well-formed hash, grant key and seen version)",
        )
    held = account(station, user)
    if held is None:
        return refused(
            change,
            "unknown_staff",
            f"站点 {station} 没有区局建立的账户 {user}：只有区局建立的账户的密码修改才上报 "
            f"(no hub-made account {user} at {station})",
        )
    if change.author != user:
        by = account(station, change.author) if change.author else None
        if by is None or by.role != ADMIN or not by.enabled:
            return refused(
                change,
                "staff_not_self",
                f"账户 {user} 的密码只能由本人或本站管理员修改，该变更署名为 {change.author or '（无）'} "
                f"(only the person or the station's administrator may change a password)",
            )
    return Admission(change, "")
