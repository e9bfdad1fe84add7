"""The hub's refusal log and alerts: what it refused (requests and files, as inauthentic or malformed)
and the security events it raised, in the tables ``rejected`` and ``alerts`` (``hub/schema.py``).

A part of :class:`hub.store.HubStore`; it owns its own rules of how rows are counted, so that a flood
from one sender adds a row an hour rather than a row a request.
"""

from __future__ import annotations

import sqlite3

HOUR_MS = 3_600_000
# Past this many rows in one hour, refusals from further sources share one row: a sender with many
# addresses (an IPv6 prefix) cannot add rows without bound either.
MAX_REFUSAL_ROWS_PER_HOUR = 2000
OTHER_SOURCES = "other-sources"
# Alerts raised before anything is authenticated (the claimed signer is a revoked station): anyone can
# repeat them, so they are counted per station and hour like refusals. Forks stay one row each.
# A township relay's misdeeds the hub sees itself (hub/relay_alerts.py) are counted the same way: the
# relay proves its name (hub/relay_proof.py), but a proven request seen on the wire can be sent again
# for as long as its proof is fresh (15 minutes).
COUNTED_ALERTS = frozenset({"revoked_station_sent", "relay_seen"})
_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_")


def refusal_code(reason: str) -> str:
    """The stable code a refusal's reason starts with (``"bad_signature: ..."``), else ``"other"``."""
    head, sep, _ = reason.partition(":")
    return head if sep and 0 < len(head) <= 32 and set(head) <= _CODE_CHARS else "other"


class RefusalLog:
    """The refusal log's methods of :class:`hub.store.HubStore` (they write inside its transaction)."""

    conn: sqlite3.Connection

    def reject(self, source: str, origin: str, reason: str, now_ms: int) -> None:
        """Note a refused request or file. Refusals are counted in one row per (source, hour, code of
        the reason), which keeps the latest origin and reason: a flood from one address adds a row
        an hour, not a row a request. ``origin`` is only what the sender claimed."""
        source, origin, reason = source[:200], origin[:64], reason[:1000]
        hour, code = now_ms // HOUR_MS, refusal_code(reason)
        row = self._refusal(source, hour, code)
        if row is None and self._refusal_rows(hour) >= MAX_REFUSAL_ROWS_PER_HOUR:
            source = OTHER_SOURCES
            row = self._refusal(source, hour, code)
        count, first_ms, last_ms = (0, now_ms, now_ms) if row is None else row
        # The row is written anew (what SQLite's INSERT OR REPLACE did, in words both backends share),
        # so it takes a new id and the newest refusal is still the highest id.
        if row is not None:
            self.conn.execute("DELETE FROM rejected WHERE source=? AND hour=? AND code=?", (source, hour, code))
        self.conn.execute(
            "INSERT INTO rejected (at_ms, source, origin, reason, hour, code, count, first_ms)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (max(now_ms, last_ms), source, origin, reason, hour, code, count + 1, first_ms),
        )

    def _refusal(self, source: str, hour: int, code: str) -> tuple[int, int, int] | None:
        row = self.conn.execute(
            "SELECT count, first_ms, at_ms FROM rejected WHERE source=? AND hour=? AND code=?", (source, hour, code)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def _refusal_rows(self, hour: int) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM rejected WHERE hour=?", (hour,)).fetchone()[0])

    def rejections(self, limit: int = 20) -> tuple[int, list[dict[str, object]]]:
        """(how many refusals in all, the ``limit`` rows refused most recently, each with its ``count``)."""
        total = int(self.conn.execute("SELECT COALESCE(SUM(count), 0) FROM rejected").fetchone()[0])
        rows = self.conn.execute(
            "SELECT at_ms, source, origin, reason, count FROM rejected ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return total, [dict(zip(("at_ms", "source", "origin", "reason", "count"), r, strict=True)) for r in rows]

    def alert(self, kind: str, station: str, detail: str, now_ms: int) -> None:
        hour = now_ms // HOUR_MS
        if kind in COUNTED_ALERTS:
            cur = self.conn.execute(
                "UPDATE alerts SET count=count+1, at_ms=MAX(at_ms, ?), detail=? WHERE id=(SELECT MAX(id) FROM"
                " alerts WHERE kind=? AND station=? AND hour=?)",
                (now_ms, detail, kind, station, hour),
            )
            if cur.rowcount:
                return
        self.conn.execute(
            "INSERT INTO alerts (at_ms, kind, station, detail, hour) VALUES (?,?,?,?,?)",
            (now_ms, kind, station, detail, hour),
        )

    def alert_once(self, kind: str, station: str, detail: str, now_ms: int) -> bool:
        """Raise the alert unless the same one (kind, station, detail) was raised already: a report a
        station repeats until it knows the hub has it. True when raised now."""
        row = self.conn.execute(
            "SELECT 1 FROM alerts WHERE kind=? AND station=? AND detail=?", (kind, station, detail)
        ).fetchone()
        if row is not None:
            return False
        self.alert(kind, station, detail, now_ms)
        return True

    def alerts(self) -> list[dict[str, object]]:
        """Every alert in the order first raised; ``count`` is how often it was raised that hour."""
        rows = self.conn.execute("SELECT at_ms, kind, station, detail, count FROM alerts ORDER BY id").fetchall()
        return [dict(zip(("at_ms", "kind", "station", "detail", "count"), r, strict=True)) for r in rows]
