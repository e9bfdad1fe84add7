"""Changes (or whole batches) the hub holds back for an operator, in the hub store.

Table ``quarantine``: authentic changes held with a reason and a ``code``, the raw wire change (or the
whole frame, ``whole_batch``), who sent it (``sender``: differs from ``origin`` only for a change
re-sent on another's behalf; empty in rows from before senders were recorded) and what the operator
decided (``state``: open, released, rejected; ``note``). A part of :class:`hub.store.HubStore`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple


class HeldEntry(NamedTuple):
    origin: str
    epoch: int
    seq: int
    raw: bytes
    whole_batch: bool
    state: str


class WaitingChange(NamedTuple):
    id: int
    origin: str
    epoch: int
    seq: int
    raw: bytes


class QuarantineRow(NamedTuple):
    """One row as the operator's listing shows it (``hub/quarantine_review.quarantine_row``)."""

    id: int
    origin: str
    epoch: int
    seq: int
    reason: str
    created_ms: int
    whole_batch: int
    state: str
    note: str
    raw: bytes
    code: str
    sender: str


# The origin's own copy: a row it sent itself (or one from before senders were recorded).
_AS_SENT = "whole_batch=0 AND sender IN (origin, '')"


class Quarantine:
    """The quarantine's part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def quarantine(
        self,
        origin: str,
        epoch: int,
        seq: int,
        batch_hash: bytes,
        raw: bytes,
        reason: str,
        now_ms: int,
        *,
        whole_batch: bool = False,
        code: str = "",
        sender: str = "",
    ) -> None:
        """Hold an authentic change (or batch) for an operator. ``sender`` is the station that sent it,
        which differs from ``origin`` only for a change re-sent on another's behalf."""
        self.conn.execute(
            "INSERT INTO quarantine (origin, epoch, seq, batch, raw, whole_batch, reason, created_ms, code, sender)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (origin, epoch, seq, batch_hash, raw, int(whole_batch), reason, now_ms, code, sender or origin),
        )

    def quarantined(self, state: str = "open") -> list[dict[str, object]]:
        rows = self.conn.execute(
            "SELECT id, origin, epoch, seq, reason, created_ms, whole_batch, code, sender FROM quarantine"
            " WHERE state=? ORDER BY id",
            (state,),
        ).fetchall()
        keys = ("id", "origin", "epoch", "seq", "reason", "created_ms", "whole_batch", "code", "sender")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def holds_whole_batch(self, batch_hash: bytes) -> bool:
        """Whether this batch is already held whole (a fork is held once, however often re-sent)."""
        row = self.conn.execute("SELECT 1 FROM quarantine WHERE batch=? AND whole_batch=1", (batch_hash,))
        return row.fetchone() is not None

    def held_as_sent(self, origin: str, epoch: int, seq: int) -> bytes | None:
        """The raw change held at this place of the origin's chain as the origin itself sent it, or
        None: a copy another station re-sent proves nothing about the origin."""
        row = self.conn.execute(
            f"SELECT raw FROM quarantine WHERE origin=? AND epoch=? AND seq=? AND {_AS_SENT}", (origin, epoch, seq)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def held_changes_of(self, origin: str) -> list[tuple[bytes, str]]:
        """(raw change, state) of every single change held from ``origin``, whoever sent it."""
        rows = self.conn.execute("SELECT raw, state FROM quarantine WHERE origin=? AND whole_batch=0", (origin,))
        return [(bytes(raw), str(state)) for raw, state in rows]

    def open_held_page(self, after_id: int, limit: int) -> list[tuple[int, bool, bytes]]:
        """(id, whole batch, raw) of the rows still open (not released or rejected) with ids above
        ``after_id``, oldest first: ``hub/seal_prune.py`` reads which sealing key each is sealed to."""
        rows = self.conn.execute(
            "SELECT id, whole_batch, raw FROM quarantine WHERE state='open' AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [(int(i), bool(w), bytes(r)) for i, w, r in rows]

    def own_held_raws(self, station: str, after_id: int = 0, upto_id: int | None = None) -> list[bytes]:
        """The raw changes held as ``station`` sent them, with ids in (after_id, upto_id], oldest first."""
        sql = f"SELECT raw FROM quarantine WHERE origin=? AND {_AS_SENT} AND id > ?"
        args: list[object] = [station, after_id]
        if upto_id is not None:
            sql += " AND id <= ?"
            args.append(upto_id)
        return [bytes(r[0]) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def holds_relayed(self, sender: str, raw: bytes) -> bool:
        """Whether ``sender`` already had exactly this change held (a re-sent change is held once)."""
        row = self.conn.execute(
            "SELECT 1 FROM quarantine WHERE sender=? AND raw=? AND whole_batch=0", (sender, raw)
        ).fetchone()
        return row is not None

    def held_entry(self, qid: int) -> HeldEntry | None:
        row = self.conn.execute(
            "SELECT origin, epoch, seq, raw, whole_batch, state FROM quarantine WHERE id=?", (qid,)
        ).fetchone()
        if row is None:
            return None
        return HeldEntry(str(row[0]), int(row[1]), int(row[2]), bytes(row[3]), bool(row[4]), str(row[5]))

    def settle_held(self, qid: int, state: str, note: str) -> None:
        """Record the operator's (or the re-judging's) decision on a held row: released or rejected."""
        if state not in ("released", "rejected"):
            raise ValueError(state)
        self.conn.execute("UPDATE quarantine SET state=?, note=? WHERE id=?", (state, note, qid))

    def waiting_changes(self, codes: Sequence[str]) -> list[WaitingChange]:
        """Open single changes held as their origin sent them, refused with one of ``codes``, in chain
        order (origin, epoch, seq)."""
        if not codes:
            return []
        marks = ",".join("?" * len(codes))
        rows = self.conn.execute(
            f"SELECT id, origin, epoch, seq, raw FROM quarantine WHERE state='open' AND {_AS_SENT}"
            f" AND code IN ({marks}) ORDER BY origin, epoch, seq",
            tuple(codes),
        ).fetchall()
        return [WaitingChange(int(i), str(o), int(e), int(s), bytes(r)) for i, o, e, s, r in rows]

    def quarantine_listing(
        self, *, sender: str | None = None, include_closed: bool = False, limit: int = 500
    ) -> list[QuarantineRow]:
        """Held rows, open ones first, newest first. ``sender``: only what that station sent, including
        changes it re-sent claiming another origin (rows from before senders were recorded count as
        sent by their origin)."""
        where: list[str] = []
        args: list[object] = []
        if sender:
            where.append("(sender=? OR (sender='' AND origin=?))")
            args += [sender, sender]
        if not include_closed:
            where.append("state='open'")
        sql = (
            "SELECT id, origin, epoch, seq, reason, created_ms, whole_batch, state, note, raw, code, sender"
            " FROM quarantine"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY state='open' DESC, id DESC LIMIT ?"
        )
        return [QuarantineRow(*r) for r in self.conn.execute(sql, [*args, limit])]

    def quarantine_size(self) -> int:
        """How many rows the quarantine has ever had (rows are settled, never deleted)."""
        return int(self.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])

    def last_quarantine_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM quarantine").fetchone()[0])
