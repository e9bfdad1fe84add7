"""Accounts the hub makes for a station, as they land, and how their holders receive the data key.

``sanji hub add-staff`` sends an account down the station's feed with its password hash and a grant
key, the public half of a key pair derived from the password (``sync/staff_grant.py``); never the
password. The feed's apply step (``node/feed.py``) checks each account (:func:`check`) and records it
in the page's transaction (:func:`record`); :func:`from_feed` does both on its own. A version that
grows with every change at the hub keeps an older statement (an old stick) from replacing a newer
one. Such an account can sign in at once, but holds no copy of the data key: the
next time anyone signs in at the station, their session seals the data key to each waiting grant key
(:func:`seal_pending`, called by ``staff_accounts.sign_in``), and at the person's own first sign-in
:func:`redeem` derives the private half from the password just typed, opens the grant, checks the key
is this station's, and wraps it under the password like every other copy.

The hub's word on an account wins over what the station has: a disabled account loses its copy and
any pending grant at once; a new password hash from the hub drops the copy wrapped under the old
password and waits for a new grant. One exception: a password the person changed here
(``node/staff_password.py``) travels up as a change and is kept against entries the hub wrote before
it took it, unless the hub has set the password itself since (:func:`keeps_own_password`). The
station's own rule that its last administrator stays enabled does not bind the hub, which answers
for the district.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import sqlite_utils
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke

from node import data_key, staff_schema
from node.staff_schema import HUB
from node.staff_session import StaffSession
from protocol.codec import pack
from protocol.feed import StaffEntry
from protocol.keys import load_seal_public
from replica.db import transaction
from replica.errors import Refused
from sync import staff_rules
from sync.staff_grant import grant_private, parse_grant_key
from sync.staff_password import well_formed

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)

BAD_ACCOUNT = "区局下发的工作人员账户不完整或格式不对，未予采用 (an account from the hub is malformed; not taken)"
GRANT_TAMPERED = (
    "转交给该账户的本站数据密钥已损坏或被改动，已作废；请本站任一同事登录一次后再登录"
    " (the pending grant of the data key is damaged or was altered; it was discarded)"
)
GRANT_FOREIGN = (
    "这个密钥不属于本站，转交已作废；请本站任一同事登录一次后再登录"
    " (the pending grant holds a key that is not this station's; it was discarded)"
)


# One staff account as the hub's feed states it: the feed's own wire type, not a copy of it.
FeedAccount = StaffEntry


def _info(station: str, user: str) -> bytes:
    # Binds a grant to this station and person: one sealed for another station or user never opens.
    return pack(["sanji/staff-grant/1", station, user])


def from_feed(db: sqlite_utils.Database, *, account: FeedAccount, now_ms: int) -> bool:
    """Record the hub's account as stated, or refuse a malformed one (``bad_account``), changing nothing.
    False when the station already holds a newer version of the account (nothing changes then)."""
    check(account)
    with transaction(db) as conn:
        return record(conn, account, now_ms)


def check(account: FeedAccount) -> None:
    """Refuse (``bad_account``) an account no station may take: the rules of sync/staff_rules.py, and a
    hash and grant key a sign-in can use."""
    a = account
    if not (staff_rules.well_formed(a.user, a.name, a.role) and well_formed(a.password_hash)):
        raise Refused(BAD_ACCOUNT, code="bad_account")
    if parse_grant_key(a.grant_key) is None:
        raise Refused(BAD_ACCOUNT, code="bad_account")


def record(conn: sqlite3.Connection, account: FeedAccount, now_ms: int) -> bool:
    """Write a :func:`check`-ed account inside the caller's transaction (the feed page's, so the
    account lands with the page or not at all). False when a newer version is already here."""
    a = account
    held = staff_schema.account(conn, a.user)
    if held is None:
        conn.execute(
            "INSERT INTO staff (user, name, role, source, password_hash, enabled, grant_key, created_ms,"
            " changed_ms, hub_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                a.user,
                a.name.strip(),
                a.role,
                HUB,
                a.password_hash,
                int(a.enabled),
                a.grant_key,
                now_ms,
                now_ms,
                a.version,
            ),
        )
        return True
    if a.version < held.hub_version:
        return False
    own = keeps_own_password(held, a)
    if own:
        # The person changed the password here after the hub's last own set, and the hub has not
        # carried it back yet: the rest of the entry applies, the password stays (sync/staff_change.py).
        a = replace(a, password_hash=held.password_hash, grant_key=held.grant_key or a.grant_key)
    # A copy or grant made for another password, or for an account the hub now disables, must go.
    stale = held.password_hash != a.password_hash or held.grant_key != a.grant_key or not a.enabled
    conn.execute(
        "UPDATE staff SET name=?, role=?, source=?, password_hash=?, enabled=?, grant_key=?, changed_ms=?,"
        " hub_version=?, password_seen=? WHERE user=?",
        (
            a.name.strip(),
            a.role,
            HUB,
            a.password_hash,
            int(a.enabled),
            a.grant_key,
            now_ms,
            a.version,
            held.password_seen if own else None,  # the hub's word on the password is taken or echoed
            a.user,
        ),
    )
    if stale:
        conn.execute(
            "UPDATE staff SET wrapped_key=NULL, grant=NULL, failures=0, failed_at=NULL, locked_until_ms=0 WHERE user=?",
            (a.user,),
        )
    return True


def keeps_own_password(held: staff_schema.Account, entry: FeedAccount) -> bool:
    """Whether the station keeps the password its person changed here against ``entry``: the change is
    not echoed yet (another hash) and the hub has set none of its own since the station saw the
    version the change was made on. A later hub set (a reset) wins, as it does at the hub."""
    return (
        held.password_seen is not None
        and entry.password_hash != held.password_hash
        and entry.password_version <= held.password_seen
    )


def seal_pending(db: sqlite_utils.Database, *, by: StaffSession, now_ms: int) -> int:
    """Seal the data key from ``by``'s live session to every enabled account that waits for it; how
    many. Any signed-in person may: the hub vouched for the account and its grant key."""
    key = by.data_key(now_ms)
    waiting = [
        a
        for a in staff_schema.accounts(db.conn)
        if a.enabled and a.wrapped_key is None and a.grant is None and a.grant_key is not None
    ]
    sealed = []
    for a in waiting:
        parsed = parse_grant_key(a.grant_key or "")
        if parsed is None:
            continue  # from_feed refused it; an edited row simply waits
        grant = _SUITE.encrypt(key, load_seal_public(parsed[2]), info=_info(by.station, a.user))
        sealed.append((grant, a.user, a.grant_key))
    if sealed:
        with transaction(db) as conn:
            # Only if the row still waits for this very grant key (the feed may have moved on).
            conn.executemany(
                "UPDATE staff SET grant=? WHERE user=? AND grant_key=? AND grant IS NULL AND wrapped_key IS NULL",
                sealed,
            )
    return len(sealed)


def redeem(db: sqlite_utils.Database, *, station: str, account: staff_schema.Account, password: str) -> bytes:
    """The data key from the account's pending grant, opened with ``password`` (already checked
    against the hash) and wrapped under it from now on. ``Refused``: ``key_tampered`` for a grant
    that does not open, ``foreign_key`` for one holding a key that is not this station's; either way
    the useless grant is discarded, and the next colleague's sign-in seals a good one."""
    parsed = parse_grant_key(account.grant_key or "")
    if parsed is None or account.grant is None:
        _discard(db, account)
        raise Refused(GRANT_TAMPERED, code="key_tampered")
    params, salt, _public = parsed
    try:
        key = _SUITE.decrypt(account.grant, grant_private(password, salt, params), info=_info(station, account.user))
    except (InvalidTag, ValueError):
        _discard(db, account)
        raise Refused(GRANT_TAMPERED, code="key_tampered") from None
    check = staff_schema.key_check(db.conn)
    if len(key) != data_key.KEY_BYTES or check is None or data_key.key_check(key, station) != check:
        _discard(db, account)
        raise Refused(GRANT_FOREIGN, code="foreign_key")
    wrapped = data_key.wrap(key, password, station=station, user=account.user, params=params).to_bytes()
    with transaction(db) as conn:
        conn.execute("UPDATE staff SET wrapped_key=?, grant=NULL WHERE user=?", (wrapped, account.user))
    return key


def _discard(db: sqlite_utils.Database, account: staff_schema.Account) -> None:
    # A grant that cannot be used is worth nothing; clearing it lets the next colleague's sign-in seal
    # a good one, so the person is never stuck behind it.
    with transaction(db) as conn:
        conn.execute("UPDATE staff SET grant=NULL WHERE user=? AND grant IS ?", (account.user, account.grant))
