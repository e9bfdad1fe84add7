"""Re-folding records against the change log in pieces, so a large replica is checked a slice at a time.

``RecordStore.refold`` checks every record at once; at a million applications that is minutes of work
and one long transaction. Here the same check runs over a bounded piece: the records some new changes
touched (:func:`touched_since`), or the next slice of records in key order (:func:`next_slice`). The
log is read outside any transaction; only a record that does not match is read again and rewritten
inside a short write transaction (:func:`check`), so a change that arrives meanwhile is never
overwritten by a fold made before it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from protocol.codec import pack, unpack
from replica.db import transaction
from replica.records import RecordStore
from sync.change import Change
from sync.fold import Record, apply_change, record_to_wire

Key = tuple[str, str]
_CHANGE_COLS = "entity, rid, origin, epoch, seq, hlc, fields, base"


def touched_since(conn: sqlite3.Connection, after_rowid: int, upto_rowid: int) -> list[Key]:
    """Records with a change logged in ``(after_rowid, upto_rowid]``: a range of the log's primary key."""
    rows = conn.execute(
        "SELECT DISTINCT entity, rid FROM changes WHERE rowid > ? AND rowid <= ?", (after_rowid, upto_rowid)
    ).fetchall()
    return sorted((str(e), str(r)) for e, r in rows)


def next_slice(conn: sqlite3.Connection, after: Key | None, size: int) -> list[Key]:
    """The next ``size`` record keys after ``after`` in the log's (entity, rid) index; [] at the end."""
    if after is None:
        rows = conn.execute("SELECT DISTINCT entity, rid FROM changes ORDER BY entity, rid LIMIT ?", (size,))
    else:
        rows = conn.execute(
            "SELECT DISTINCT entity, rid FROM changes WHERE (entity, rid) > (?, ?) ORDER BY entity, rid LIMIT ?",
            (*after, size),
        )
    return [(str(e), str(r)) for e, r in rows.fetchall()]


def _change(row: Sequence[object]) -> Change:
    entity, rid, origin, epoch, seq, hlc, fields, base = row
    f, b = unpack(bytes(fields)), unpack(bytes(base))  # type: ignore[arg-type]
    assert isinstance(f, dict) and isinstance(b, dict)
    return Change(str(origin), int(epoch), int(seq), int(hlc), str(entity), str(rid), f, b)  # type: ignore[call-overload]


def _changes_of(conn: sqlite3.Connection, keys: Sequence[Key], contiguous: bool) -> dict[Key, list[Change]]:
    """The logged changes of ``keys``: one range read for a slice of :func:`next_slice` (``contiguous``:
    no other record lies between its first and last key), else one read each."""
    out: dict[Key, list[Change]] = {k: [] for k in keys}
    if not keys:
        return out
    if contiguous:
        rows = conn.execute(
            f"SELECT {_CHANGE_COLS} FROM changes WHERE (entity, rid) >= (?, ?) AND (entity, rid) <= (?, ?)"
            " ORDER BY entity, rid",
            (*keys[0], *keys[-1]),
        )
    else:
        one = f"SELECT {_CHANGE_COLS} FROM changes WHERE entity=? AND rid=?"
        rows = (r for k in keys for r in conn.execute(one, k))
    for row in rows:
        got = out.get((str(row[0]), str(row[1])))
        if got is not None:  # a record first logged since the slice was listed waits for the next pass
            got.append(_change(row))
    return out


def _fold(store: RecordStore, changes: Iterable[Change]) -> Record:
    record: Record = {}
    for change in changes:
        record, _ = apply_change(record, change, store.authority)
    return record


def _matches(store: RecordStore, key: Key, record: Record) -> bool:
    row = store.conn.execute("SELECT state FROM records WHERE entity=? AND id=?", key).fetchone()
    if row is None or bytes(row[0]) != pack(record_to_wire(record)):
        return False
    return key[0] != "application" or store._projection_matches(key[1], record)


def check(store: RecordStore, keys: Sequence[Key], *, contiguous: bool = False) -> list[Key]:
    """Check ``keys`` against the fold of their logged changes; rewrite and return those that differ.
    ``contiguous``: the keys are one slice of :func:`next_slice`, read in one range."""
    folded = _changes_of(store.conn, keys, contiguous)
    suspects = [k for k, changes in folded.items() if not _matches(store, k, _fold(store, changes))]
    if not suspects:
        return []
    fixed: list[Key] = []
    with transaction(store.db):
        # Again, under the write lock: a change may have arrived since the first read.
        for key, changes in _changes_of(store.conn, suspects, False).items():
            record = _fold(store, changes)
            if not _matches(store, key, record):
                store._save(key, record)
                fixed.append(key)
    return fixed


__all__ = ["Key", "check", "next_slice", "touched_since"]
