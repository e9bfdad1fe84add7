"""The station tree in the hub store: stations, what each last told us, enrolment tokens, operators.

Tables ``stations``, ``tokens`` (one-time enrolment tokens, stored only as SHA-256) and ``operators``
(``hub/schema.py``). A part of :class:`hub.store.HubStore`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    tier: str
    parent: str
    sign_pub: bytes | None
    seal_pub: bytes | None
    revoked: bool
    last_seen_ms: int | None
    backlog: int
    catalogue_version: int
    feed_ack: int
    last_error: str
    last_via: str = ""  # 'network', 'usb' (files carried by hand), or '' before it first reached us


STATION_COLS = (
    "code, name, tier, parent, sign_pub, seal_pub, revoked, last_seen_ms, backlog, catalogue_version,"
    " feed_ack, last_error, last_via"
)


def _station(row: tuple[object, ...]) -> Station:
    code, name, tier, parent, sp, xp, rev, seen, backlog, cv, ack, err, via = row
    return Station(
        str(code),
        str(name),
        str(tier),
        str(parent),
        sp if isinstance(sp, bytes) else None,
        xp if isinstance(xp, bytes) else None,
        bool(rev),
        seen if isinstance(seen, int) else None,
        int(str(backlog)),
        int(str(cv)),
        int(str(ack)),
        str(err),
        str(via),
    )


class Stations:
    """The stations' part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def add_station(self, code: str, name: str, tier: str, parent: str, now_ms: int) -> None:
        """Register a station (idempotent on the code: a re-enrolment keeps the record)."""
        self.conn.execute(
            "INSERT INTO stations (code, name, tier, parent, registered_ms) VALUES (?,?,?,?,?)"
            " ON CONFLICT(code) DO UPDATE SET name=excluded.name, tier=excluded.tier, parent=excluded.parent",
            (code, name, tier, parent, now_ms),
        )

    def station(self, code: str) -> Station | None:
        row = self.conn.execute(f"SELECT {STATION_COLS} FROM stations WHERE code=?", (code,)).fetchone()
        return None if row is None else _station(row)

    def stations(self) -> list[Station]:
        rows = self.conn.execute(f"SELECT {STATION_COLS} FROM stations ORDER BY code").fetchall()
        return [_station(r) for r in rows]

    def set_station_keys(self, code: str, sign_pub: bytes, seal_pub: bytes, key_id: str, now_ms: int) -> None:
        """Pin a station's keys and lift any revocation (a re-enrolment issues new keys)."""
        self.conn.execute(
            "UPDATE stations SET sign_pub=?, seal_pub=?, sign_key_id=?, revoked=0, enrolled_ms=? WHERE code=?",
            (sign_pub, seal_pub, key_id, now_ms, code),
        )

    def revoke(self, code: str) -> bool:
        cur = self.conn.execute("UPDATE stations SET revoked=1 WHERE code=?", (code,))
        return cur.rowcount > 0

    def seen(
        self,
        code: str,
        now_ms: int,
        *,
        backlog: int | None = None,
        catalogue_version: int | None = None,
        feed_ack: int | None = None,
        error: str | None = None,
        skew_ms: int | None = None,
        via: str | None = None,
    ) -> None:
        """Record what a station told us; ``None`` leaves a column as it was. ``via``: 'network' or 'usb'."""
        self.conn.execute(
            "UPDATE stations SET last_seen_ms=?, backlog=COALESCE(?, backlog),"
            " catalogue_version=COALESCE(?, catalogue_version), feed_ack=MAX(feed_ack, COALESCE(?, feed_ack)),"
            " last_error=COALESCE(?, last_error), clock_skew_ms=COALESCE(?, clock_skew_ms),"
            " last_via=COALESCE(?, last_via) WHERE code=?",
            (now_ms, backlog, catalogue_version, feed_ack, error, skew_ms, via, code),
        )

    def unheard_since(self, since_ms: int) -> list[tuple[str, int | None]]:
        """(code, last seen or None) of each station not revoked that has not reached the hub after
        ``since_ms``, by code. One never seen counts unless registered after ``since_ms``: its token or
        enrolment file, made then, named the hub's keys of then (``hub/seal_prune.py``)."""
        rows = self.conn.execute(
            "SELECT code, last_seen_ms FROM stations WHERE revoked=0"
            " AND (last_seen_ms <= ? OR (last_seen_ms IS NULL AND registered_ms <= ?)) ORDER BY code",
            (since_ms, since_ms),
        ).fetchall()
        return [(str(code), seen if isinstance(seen, int) else None) for code, seen in rows]

    def carried_status(self, code: str, now_ms: int, at_ms: int) -> bool:
        """Whether a stick's status written at the station's ``at_ms`` is newer than any carried before."""
        sql = "UPDATE stations SET status_at_ms=? WHERE code=? AND status_at_ms<?"
        return self.conn.execute(sql, (at_ms, code, at_ms)).rowcount == 1

    def tiers(self) -> dict[str, str]:
        return {str(c): str(t) for c, t in self.conn.execute("SELECT code, tier FROM stations")}

    def children(self, code: str) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT code FROM stations WHERE parent=?", (code,))]

    def field_devices(self) -> list[str]:
        """The codes of the field devices not revoked, in code order (a deciding centre's feed names
        them so it can assign inspections offline)."""
        rows = self.conn.execute("SELECT code FROM stations WHERE tier='field' AND revoked=0 ORDER BY code")
        return [str(r[0]) for r in rows]

    def revoked_codes(self) -> list[str]:
        """The codes of every revoked station, in code order."""
        return [str(r[0]) for r in self.conn.execute("SELECT code FROM stations WHERE revoked=1 ORDER BY code")]

    # -- tokens -----------------------------------------------------------------------------------

    def add_token(self, token_hash: bytes, station: str, tier: str, expires_ms: int) -> None:
        self.conn.execute(
            "INSERT INTO tokens (hash, station, tier, expires_ms) VALUES (?,?,?,?)",
            (token_hash, station, tier, expires_ms),
        )

    def token(self, token_hash: bytes) -> tuple[str, str, int, int | None] | None:
        """(station, tier, expires_ms, used_ms) for a token hash, or None."""
        row = self.conn.execute(
            "SELECT station, tier, expires_ms, used_ms FROM tokens WHERE hash=?", (token_hash,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), int(row[2]), row[3])

    def tokens_for(self, station: str) -> list[tuple[bytes, int, int | None]]:
        rows = self.conn.execute("SELECT hash, expires_ms, used_ms FROM tokens WHERE station=?", (station,)).fetchall()
        return [(bytes(r[0]), int(r[1]), r[2]) for r in rows]

    def token_hashes(self) -> list[bytes]:
        """Every token's stored hash (the online enrolment finds a token by an id derived from it)."""
        return [bytes(r[0]) for r in self.conn.execute("SELECT hash FROM tokens")]

    def use_token(self, token_hash: bytes, now_ms: int) -> bool:
        """Mark a token used. False if it was already used: tokens work once."""
        cur = self.conn.execute("UPDATE tokens SET used_ms=? WHERE hash=? AND used_ms IS NULL", (now_ms, token_hash))
        return cur.rowcount == 1

    # -- operators --------------------------------------------------------------------------------

    def add_operator(self, user: str, password_hash: str, now_ms: int) -> None:
        self.conn.execute(
            # "user" quoted: a reserved word in PostgreSQL, an ordinary name in SQLite.
            'INSERT INTO operators ("user", hash, created_ms) VALUES (?,?,?)'
            ' ON CONFLICT("user") DO UPDATE SET hash=excluded.hash',
            (user, password_hash, now_ms),
        )

    def operator_hash(self, user: str) -> str | None:
        row = self.conn.execute('SELECT hash FROM operators WHERE "user"=?', (user,)).fetchone()
        return None if row is None else str(row[0])
