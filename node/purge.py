"""Purging a field device's copies once the hub has everything: photos, scans, and citizens' details.

A laptop carried from village to village should hold a citizen's address and phone, and photos of
their home, no longer than the job needs. Once the hub has receipted every change of a report (the
report itself and the task's move to ``done``: their batches are ``receipted`` in the outbox) and
confirmed it holds every blob the report names, and the retention period has passed since the last
of those confirmations, the device:
- deletes the photo and signature files (a blob another unpurged report still names is kept);
- redacts the task's ``address`` and ``phone`` in its local records and in the hub's changes it holds.

The redaction is local only. No change is written, so nothing flows back to the hub or the village,
whose copies are the record. The task stays listed (number, item, due, status) with its details shown
as cleared, and the report stays (result, findings, the photos' SHA-256), so the inspector can still
say what was done. Each purged record is noted in ``purged``, so that anti-entropy can leave it out of
the comparison (its changes no longer match the hub's byte for byte, by design).
"""

from __future__ import annotations

from node import blobs
from node.station import Station
from protocol.codec import pack, unpack
from replica.errors import Refused
from replica.scope import CHANGE_COLS, digests
from sync.fold import record_to_wire
from sync.outbox import BatchState
from sync.scope import record_leaf

DEFAULT_RETENTION_DAYS = 7
DAY_MS = 86_400_000
REDACTED_FIELDS = ("address", "phone")


def _receipted_ms(st: Station, task_id: str) -> int | None:
    """When the hub had receipted all of this device's changes to the report and its task, else None."""
    rows = st.conn.execute(
        "SELECT epoch, seq FROM changes WHERE origin=? AND rid=? AND entity IN ('report', 'task')",
        (st.code, task_id),
    ).fetchall()
    if not rows:
        return None
    latest = 0
    for epoch, seq in rows:
        row = st.conn.execute(
            "SELECT receipted_ms FROM outbox WHERE state=? AND epoch=? AND first_seq<=? AND last_seq>=?",
            (BatchState.RECEIPTED.value, epoch, seq, seq),
        ).fetchone()
        if row is None or row[0] is None:
            return None
        latest = max(latest, int(row[0]))
    return latest


def _blobs_held_ms(st: Station, task_id: str) -> tuple[list[str], int] | None:
    """(blobs of the report, when the hub confirmed the last of them), or None while one is missing."""
    rows = st.conn.execute(
        "SELECT b.sha256, b.at_hub_ms FROM blob_refs r JOIN blobs b ON b.sha256 = r.sha256 WHERE r.report=?",
        (task_id,),
    ).fetchall()
    if any(r[1] is None for r in rows):
        return None
    return [str(r[0]) for r in rows], max((int(r[1]) for r in rows), default=0)


def _redact(st: Station, task_id: str) -> None:
    """Blank the citizen's details of one task here, without writing a change. Inside a transaction."""
    leaf = record_leaf(
        d
        for _e, _i, d in digests(
            st.conn.execute(
                f"SELECT {CHANGE_COLS} FROM changes c WHERE c.entity='task' AND c.rid=?", (task_id,)
            ).fetchall()
        )
    )
    record = st.records.load("task", task_id)
    for name in REDACTED_FIELDS:
        if name in record:
            hlc, origin, _, base = record[name]
            record[name] = (hlc, origin, "", base)  # same stamp, so no older write can win it back
    # The digest column keeps naming the merged state all replicas agreed on; only the local copy is cut.
    st.conn.execute("UPDATE records SET state=? WHERE entity='task' AND id=?", (pack(record_to_wire(record)), task_id))
    for rowid, fields in st.conn.execute(
        "SELECT rowid, fields FROM changes WHERE entity='task' AND rid=?", (task_id,)
    ).fetchall():
        raw = unpack(fields)
        if isinstance(raw, dict) and any(name in raw for name in REDACTED_FIELDS):
            cut = {k: ("" if k in REDACTED_FIELDS else v) for k, v in raw.items()}
            st.conn.execute("UPDATE changes SET fields=? WHERE rowid=?", (pack(cut), rowid))
    st.conn.execute(
        "INSERT OR IGNORE INTO purged (entity, id, purged_ms, leaf) VALUES ('task', ?, ?, ?)",
        (task_id, st.clock(), leaf),
    )


def purge(st: Station, retention_days: int = DEFAULT_RETENTION_DAYS) -> dict[str, object]:
    """Purge every report that is safely at the hub and older than the retention period."""
    if retention_days < 0:
        raise Refused("保留天数（--retention-days）不能为负数：请给 0 或更大的天数 (must not be negative)")
    store = blobs.store_of(st)
    now = st.clock()
    done = {str(r[0]) for r in st.conn.execute("SELECT id FROM purged WHERE entity='task'")}
    purged: list[str] = []
    for (task_id,) in st.conn.execute("SELECT id FROM records WHERE entity='report' ORDER BY id").fetchall():
        if task_id in done:
            continue
        receipted = _receipted_ms(st, task_id)
        held = _blobs_held_ms(st, task_id)
        if receipted is None or held is None:
            continue
        if now - max(receipted, held[1]) < retention_days * DAY_MS:
            continue
        with st.transaction():
            _redact(st, task_id)
            for sha in held[0]:
                others = st.conn.execute(
                    "SELECT 1 FROM blob_refs r WHERE r.sha256=? AND r.report<>? AND r.report NOT IN"
                    " (SELECT id FROM purged WHERE entity='task')",
                    (sha, task_id),
                ).fetchone()
                if others is None:
                    st.conn.execute("UPDATE blobs SET purged_ms=? WHERE sha256=?", (now, sha))
        purged.append(str(task_id))
    # Files go after the commit; a stop in between is finished by the next run.
    deleted = freed = 0
    for (sha,) in st.conn.execute("SELECT sha256 FROM blobs WHERE purged_ms IS NOT NULL").fetchall():
        size = store.delete(str(sha))
        if size:
            deleted += 1
            freed += size
    return {"purged": purged, "blobs_deleted": deleted, "bytes_freed": freed}


def purged_keys(st: Station) -> set[tuple[str, str]]:
    """(entity, id) of the records redacted here: what anti-entropy should leave out of the comparison."""
    blobs.store_of(st)
    return {(str(e), str(i)) for e, i in st.conn.execute("SELECT entity, id FROM purged")}
