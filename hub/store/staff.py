"""Station staff accounts the hub makes (issue 16): what each station's feed carries down to it.

Tables ``station_staff`` (one row per station and user: display name, role, enabled, the scrypt hash
and the grant's public key, never a password) and ``staff_clock`` (``hub/schema.py``). A part of
:class:`hub.store.HubStore`.

Every change to an account takes a new ``version`` from ``staff_clock``: at least one more than the
last one handed out, and at least the hub's clock in ms, so versions keep growing even after the hub
is restored from an older backup. A station keeps the highest version it has applied; its pull asks
for the accounts changed after it, and it never lets an older version replace a newer one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

_COLS = (
    'station, "user", name, role, enabled, password_hash, grant_key, version, created_ms, changed_ms, password_version'
)


@dataclass(frozen=True)
class StaffAccount:
    station: str
    user: str
    name: str
    role: str
    enabled: bool
    password_hash: str
    grant_key: str
    version: int
    created_ms: int
    changed_ms: int
    password_version: int = 0  # the version of the hub's own last password set (sync/staff_change.py)


def _account(row: tuple[object, ...]) -> StaffAccount:
    station, user, name, role, enabled, pw, grant, version, created, changed, pw_version = row
    return StaffAccount(
        str(station),
        str(user),
        str(name),
        str(role),
        bool(enabled),
        str(pw),
        str(grant),
        int(str(version)),
        int(str(created)),
        int(str(changed)),
        int(str(pw_version)),
    )


class Staff:
    """The station staff accounts' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def _next_staff_version(self, now_ms: int) -> int:
        # CASE rather than MAX(a, b) or GREATEST: the same words in SQLite and PostgreSQL.
        row = self.conn.execute(
            "UPDATE staff_clock SET version = CASE WHEN version + 1 > ? THEN version + 1 ELSE ? END"
            " WHERE id = 1 RETURNING version",
            (now_ms, now_ms),
        ).fetchone()
        return int(row[0])

    def add_staff_account(
        self, station: str, user: str, *, name: str, role: str, password_hash: str, grant_key: str, now_ms: int
    ) -> int | None:
        """A new enabled account; its version, or None when ``station`` already has ``user`` (nothing
        changes then). Call in a transaction."""
        if self.staff_account(station, user) is not None:
            return None
        version = self._next_staff_version(now_ms)
        self.conn.execute(
            # password_version 0: any password the station changes was changed on this account as made.
            f"INSERT INTO station_staff ({_COLS}) VALUES (?,?,?,?,1,?,?,?,?,?,0)",
            (station, user, name, role, password_hash, grant_key, version, now_ms, now_ms),
        )
        return version

    def set_staff_account(
        self,
        station: str,
        user: str,
        *,
        enabled: bool,
        now_ms: int,
        password_hash: str | None = None,
        grant_key: str | None = None,
    ) -> int | None:
        """Enable or disable an account, with a new hash and grant key when given (a reset); its new
        version, or None when there is no such account. Call in a transaction."""
        if self.staff_account(station, user) is None:
            return None
        version = self._next_staff_version(now_ms)
        self.conn.execute(
            "UPDATE station_staff SET enabled=?, password_hash=COALESCE(?, password_hash),"
            ' grant_key=COALESCE(?, grant_key), version=?, changed_ms=? WHERE station=? AND "user"=?',
            (int(enabled), password_hash, grant_key, version, now_ms, station, user),
        )
        if password_hash is not None:
            # The hub's own password set: what a password changed at the station must have seen to win.
            self.conn.execute(
                'UPDATE station_staff SET password_version=? WHERE station=? AND "user"=?', (version, station, user)
            )
        return version

    def take_station_password(
        self, station: str, user: str, *, password_hash: str, grant_key: str, seen: int, now_ms: int
    ) -> int | None:
        """A password the person changed at their station (``sync/staff_change.py``): stored with a new
        version, so the station's feed carries it back, when the station had seen the hub's own last
        password set (``seen >= password_version``); None when the hub's set wins, the account is gone,
        or the hash is already this one. Call in a transaction."""
        held = self.staff_account(station, user)
        if held is None or seen < held.password_version or held.password_hash == password_hash:
            return None
        version = self._next_staff_version(now_ms)
        self.conn.execute(
            "UPDATE station_staff SET password_hash=?, grant_key=?, version=?, changed_ms=?"
            ' WHERE station=? AND "user"=?',
            (password_hash, grant_key, version, now_ms, station, user),
        )
        return version

    def staff_account(self, station: str, user: str) -> StaffAccount | None:
        row = self.conn.execute(
            f'SELECT {_COLS} FROM station_staff WHERE station=? AND "user"=?', (station, user)
        ).fetchone()
        return None if row is None else _account(row)

    def staff_accounts(self, station: str | None = None) -> list[StaffAccount]:
        """Every account, or one station's, by station and user."""
        if station is None:
            rows = self.conn.execute(f'SELECT {_COLS} FROM station_staff ORDER BY station, "user"').fetchall()
        else:
            sql = f'SELECT {_COLS} FROM station_staff WHERE station=? ORDER BY "user"'
            rows = self.conn.execute(sql, (station,)).fetchall()
        return [_account(r) for r in rows]

    def staff_changed_after(self, station: str, version: int) -> list[StaffAccount]:
        """``station``'s own accounts whose version is above ``version``, oldest change first: what its
        feed carries. Never another station's."""
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM station_staff WHERE station=? AND version>? ORDER BY version", (station, version)
        ).fetchall()
        return [_account(r) for r in rows]
