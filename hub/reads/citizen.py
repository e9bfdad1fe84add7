"""What the citizen's tracking page reads beyond the application's record: when the hub took it."""

from __future__ import annotations

import sqlite3


class CitizenReads:
    conn: sqlite3.Connection

    def received_ms(self, app_id: str) -> int | None:
        """When the hub took the batch that brought the application's creation change (the earliest
        such batch), None while no batch of the hub holds it."""
        row = self.conn.execute(
            "SELECT origin, epoch, seq FROM changes WHERE entity='application' AND rid=? ORDER BY hlc LIMIT 1",
            (app_id,),
        ).fetchone()
        if row is None:
            return None
        got = self.conn.execute(
            "SELECT MIN(received_ms) FROM batches WHERE origin=? AND epoch=? AND first_seq<=? AND last_seq>=?",
            (row[0], row[1], row[2], row[2]),
        ).fetchone()
        return int(got[0]) if got is not None and got[0] is not None else None
