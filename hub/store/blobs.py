"""The hub store's index of photos and scans (blobs): which the hub holds whole, and which uploads
are under way. The bytes themselves are files (``replica/blobstore.py``); tables ``blobs`` and
``blob_uploads`` (migration set ``sanji.hub.blobs``) say which of them count. A part of
:class:`hub.store.HubStore`; the rules are ``hub/blobindex.py``'s.
"""

from __future__ import annotations

import sqlite3


class Blobs:
    """The blob index's part of :class:`hub.store.HubStore`."""

    conn: sqlite3.Connection

    def blob_filed(self, sha256: str) -> bool:
        """Whether the blob was filed whole (its file may still have gone missing: check the files)."""
        return self.conn.execute("SELECT 1 FROM blobs WHERE sha256=?", (sha256,)).fetchone() is not None

    def filed_blobs(self) -> set[str]:
        return {str(r[0]) for r in self.conn.execute("SELECT sha256 FROM blobs")}

    def file_blob(self, sha256: str, size: int, station: str, source: str, now_ms: int) -> None:
        """Record a blob as held whole (once: the first filing stays) and end its upload."""
        self.conn.execute(
            "INSERT INTO blobs (sha256, size, station, source, received_ms) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
            (sha256, size, station, source, now_ms),
        )
        self.end_upload(sha256)

    def upload_size(self, sha256: str) -> int | None:
        """The size claimed for an upload under way, or None when none is."""
        row = self.conn.execute("SELECT size FROM blob_uploads WHERE sha256=?", (sha256,)).fetchone()
        return None if row is None else int(row[0])

    def start_upload(self, sha256: str, size: int, station: str, now_ms: int) -> None:
        """Note an upload under way; a second claim for the same blob replaces the size claimed."""
        self.conn.execute(
            "INSERT INTO blob_uploads (sha256, size, station, started_ms) VALUES (?,?,?,?)"
            " ON CONFLICT(sha256) DO UPDATE SET size=excluded.size",
            (sha256, size, station, now_ms),
        )

    def end_upload(self, sha256: str) -> None:
        self.conn.execute("DELETE FROM blob_uploads WHERE sha256=?", (sha256,))
