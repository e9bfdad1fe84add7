"""What the dashboard's station pages, overview, catalogue and audit pages read, as typed rows.

Plain, parameterised SQL that PostgreSQL runs as it is, unless a comment says otherwise.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class StationRow:
    """A station as the dashboard lists it: what it is, and what it last told the hub."""

    code: str
    name: str
    tier: str
    parent: str
    revoked: bool
    enrolled: bool  # it holds keys
    last_seen_ms: int | None
    backlog: int
    last_error: str
    catalogue_version: int  # 0 until its first pull says
    clock_skew_ms: int
    enrolled_ms: int | None
    registered_ms: int | None
    last_via: str


@dataclass(frozen=True)
class DayOfBatch:
    """One batch taken from a station: when, and how many changes it carried."""

    received_ms: int
    changes: int


@dataclass(frozen=True)
class Receipt:
    hash: bytes
    epoch: int
    first_seq: int
    last_seq: int
    received_ms: int
    result: str
    applied: int
    quarantined: int
    source: str


@dataclass(frozen=True)
class Refusal:
    at_ms: int
    source: str
    reason: str
    count: int


@dataclass(frozen=True)
class ReleaseRow:
    version: int
    issued_at: str
    expires_at: str
    published_ms: int


@dataclass(frozen=True)
class AuditRow:
    at_ms: int
    user: str
    action: str
    target: str
    detail: str
    reason: str
    remote: str


class StationReads:
    conn: sqlite3.Connection

    def station_rows(self) -> list[StationRow]:
        """Every station, by code."""
        rows = self.conn.execute(
            "SELECT code, name, tier, parent, revoked, sign_pub IS NOT NULL, last_seen_ms, backlog, last_error,"
            " catalogue_version, clock_skew_ms, enrolled_ms, registered_ms, last_via FROM stations ORDER BY code"
        ).fetchall()
        return [
            StationRow(
                code=str(code),
                name=str(name),
                tier=str(tier),
                parent=str(parent),
                revoked=bool(revoked),
                enrolled=bool(enrolled),
                last_seen_ms=seen,
                backlog=int(backlog or 0),
                last_error=str(err or ""),
                catalogue_version=int(cv or 0),
                clock_skew_ms=int(skew or 0),
                enrolled_ms=enrolled_ms,
                registered_ms=reg,
                last_via=str(via or ""),
            )
            for code, name, tier, parent, revoked, enrolled, seen, backlog, err, cv, skew, enrolled_ms, reg, via in rows
        ]

    def applications_accepted(self, since: str, before: str) -> int:
        """How many applications were accepted in [since, before) (ISO text, Beijing time at every
        station). A range walks the accepted_at index; substr(accepted_at, 1, 10)=? read every
        application ever accepted."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM applications WHERE accepted_at >= ? AND accepted_at < ?", (since, before)
        ).fetchone()
        return int(row[0])

    def batches_since(self, origin: str, since_ms: int) -> list[DayOfBatch]:
        """The batches taken from ``origin`` since ``since_ms``, unordered."""
        rows = self.conn.execute(
            "SELECT received_ms, last_seq - first_seq + 1 FROM batches WHERE origin=? AND received_ms>=?",
            (origin, since_ms),
        )
        return [DayOfBatch(int(t), int(n)) for t, n in rows]

    def receipts_of(self, origin: str, limit: int = 50) -> list[Receipt]:
        """The batches last taken from ``origin``, newest first."""
        rows = self.conn.execute(
            "SELECT hash, epoch, first_seq, last_seq, received_ms, result, applied, quarantined, source FROM batches"
            " WHERE origin=? ORDER BY received_ms DESC, first_seq DESC LIMIT ?",
            (origin, limit),
        )
        return [Receipt(bytes(h), e, a, b, t, res, ap, q, src) for h, e, a, b, t, res, ap, q, src in rows]

    def refusals_of(self, origin: str, limit: int = 50) -> list[Refusal]:
        """What was last refused from ``origin``, newest first."""
        rows = self.conn.execute(
            "SELECT at_ms, source, reason, count FROM rejected WHERE origin=? ORDER BY id DESC LIMIT ?", (origin, limit)
        )
        return [Refusal(t, src, reason, n) for t, src, reason, n in rows]

    def releases(self, limit: int = 20) -> list[ReleaseRow]:
        """The catalogue releases last published, newest first."""
        rows = self.conn.execute(
            "SELECT version, issued_at, expires_at, published_ms FROM releases ORDER BY version DESC LIMIT ?", (limit,)
        )
        return [ReleaseRow(int(v), str(i), str(e), int(p)) for v, i, e, p in rows]

    def audit_trail(self, limit: int = 300) -> list[AuditRow]:
        """What operators did, newest first."""
        rows = self.conn.execute(
            "SELECT at_ms, user, action, target, detail, reason, remote FROM dash_audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [AuditRow(*r) for r in rows]
