"""The dashboard's own small write interface: operator sessions, failed logins, the audit trail and
catalogue drafts (tables ``dash_*``, ``hub/schema.py``).

Unlike the rest of this package it runs on the serving connection, on the event loop, inside the
caller's transaction (``hub.store.transaction()``): a session or an audit row must commit together
with the change it belongs to, and every write of the hub goes through that one connection. Each
statement is one indexed lookup or a write of a few rows. Plain, parameterised SQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.store import HubStore


@dataclass(frozen=True)
class SessionRow:
    user: str
    csrf: str
    created_ms: int
    seen_ms: int


@dataclass(frozen=True)
class Draft:
    base_version: int  # the release the upload was compared with
    doc: str  # the catalogue, JSON
    filename: str


# Whose failed logins count for a lock-out scope: (the WHERE terms, which of user and remote they take).
FAILURE_SCOPES = {
    "user_here": ("user=? AND remote=?", ("user", "remote")),
    "address": ("remote=?", ("remote",)),
    "user": ("user=?", ("user",)),
}


class OperatorStore:
    """Operator sessions and the rest over ``conn``; writes only inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def of(cls, store: HubStore) -> OperatorStore:
        """Over the store's own connection (the serving one), for writes inside its transaction."""
        return cls(store.conn)

    # -- sessions ------------------------------------------------------------------------------

    def session(self, token_hash: bytes) -> SessionRow | None:
        row = self.conn.execute(
            "SELECT user, csrf, created_ms, seen_ms FROM dash_sessions WHERE token_hash=?", (token_hash,)
        ).fetchone()
        return None if row is None else SessionRow(str(row[0]), str(row[1]), int(row[2]), int(row[3]))

    def add_session(self, token_hash: bytes, user: str, csrf: str, now_ms: int, remote: str) -> None:
        self.conn.execute(
            "INSERT INTO dash_sessions (token_hash, user, csrf, created_ms, seen_ms, remote) VALUES (?,?,?,?,?,?)",
            (token_hash, user, csrf, now_ms, now_ms, remote),
        )

    def touch_session(self, token_hash: bytes, now_ms: int) -> None:
        self.conn.execute("UPDATE dash_sessions SET seen_ms=? WHERE token_hash=?", (now_ms, token_hash))

    def end_session(self, token_hash: bytes) -> None:
        self.conn.execute("DELETE FROM dash_sessions WHERE token_hash=?", (token_hash,))

    def end_sessions_of(self, user: str) -> int:
        """End every session of ``user``; how many there were."""
        return int(self.conn.execute("DELETE FROM dash_sessions WHERE user=?", (user,)).rowcount)

    def end_sessions_idle_since(self, before_ms: int) -> None:
        self.conn.execute("DELETE FROM dash_sessions WHERE seen_ms<?", (before_ms,))

    # -- failed logins ------------------------------------------------------------------------------

    def add_failure(self, user: str, remote: str, now_ms: int, *, forget_before_ms: int) -> None:
        """Count one wrong password, dropping the failures at or before ``forget_before_ms`` first."""
        self.conn.execute("DELETE FROM dash_login_failures WHERE at_ms<=?", (forget_before_ms,))
        self.conn.execute(
            "INSERT INTO dash_login_failures (at_ms, user, remote) VALUES (?,?,?)", (now_ms, user, remote)
        )

    def recent_failures(self, scope: str, user: str, remote: str, *, after_ms: int, limit: int) -> list[int]:
        """When the last ``limit`` failures of a scope (``FAILURE_SCOPES``) after ``after_ms`` were,
        newest first."""
        where, names = FAILURE_SCOPES[scope]
        args = tuple({"user": user, "remote": remote}[n] for n in names)
        rows = self.conn.execute(
            f"SELECT at_ms FROM dash_login_failures WHERE {where} AND at_ms>? ORDER BY at_ms DESC LIMIT ?",
            (*args, after_ms, limit),
        )
        return [int(r[0]) for r in rows]

    def forget_failures(self, user: str, remote: str | None = None) -> None:
        """Forget ``user``'s failed logins: from ``remote`` only, or from everywhere."""
        if remote is None:
            self.conn.execute("DELETE FROM dash_login_failures WHERE user=?", (user,))
        else:
            self.conn.execute("DELETE FROM dash_login_failures WHERE user=? AND remote=?", (user, remote))

    # -- the audit trail and drafts ------------------------------------------------------------------

    def add_audit(
        self, at_ms: int, user: str, action: str, target: str, *, detail: str = "", reason: str = "", remote: str = ""
    ) -> None:
        self.conn.execute(
            "INSERT INTO dash_audit (at_ms, user, action, target, detail, reason, remote) VALUES (?,?,?,?,?,?,?)",
            (at_ms, user, action, target, detail, reason, remote),
        )

    def add_draft(self, user: str, base_version: int, doc: str, filename: str, now_ms: int) -> int:
        """Keep an uploaded catalogue until it is published; its id."""
        cur = self.conn.execute(
            "INSERT INTO dash_drafts (user, base_version, doc, filename, created_ms) VALUES (?,?,?,?,?)",
            (user, base_version, doc, filename, now_ms),
        )
        return int(cur.lastrowid or 0)

    def draft(self, draft_id: int) -> Draft | None:
        row = self.conn.execute(
            "SELECT base_version, doc, filename FROM dash_drafts WHERE id=?", (draft_id,)
        ).fetchone()
        return None if row is None else Draft(int(row[0]), str(row[1]), str(row[2]))

    def drop_draft(self, draft_id: int) -> None:
        self.conn.execute("DELETE FROM dash_drafts WHERE id=?", (draft_id,))
