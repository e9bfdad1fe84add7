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
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager

import msgpack

from protocol.codec import pack_map
from replica.db import transaction
from replica.records import PROJECTED, RecordStore, _projection_row
from sync.change import Change
from sync.fold import Record, apply_change

Key = tuple[str, str]
_CHUNK = 500  # ids per IN (...) query
_PROJECTED = ", ".join(PROJECTED)
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
    # Our own log, written canonical by RecordStore: msgpack's own decoder gives the very values
    # protocol.codec.unpack would, without re-checking the canonical form of every cell.
    f = msgpack.unpackb(fields, raw=False, strict_map_key=True)  # type: ignore[arg-type]
    b = msgpack.unpackb(base, raw=False, strict_map_key=True)  # type: ignore[arg-type]
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


def _stored(conn: sqlite3.Connection, keys: Sequence[Key]) -> tuple[dict[Key, bytes], dict[str, list[object]]]:
    """The stored state of each of ``keys`` and the projection row of each application among them."""
    states: dict[Key, bytes] = {}
    projected: dict[str, list[object]] = {}
    by_entity: dict[str, list[str]] = {}
    for entity, rid in keys:
        by_entity.setdefault(entity, []).append(rid)
    for entity, ids in by_entity.items():
        for i in range(0, len(ids), _CHUNK):
            part = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            for rid, state in conn.execute(
                f"SELECT id, state FROM records WHERE entity=? AND id IN ({marks})", (entity, *part)
            ):
                states[(entity, str(rid))] = bytes(state)
            if entity == "application":
                for row in conn.execute(
                    f"SELECT id, {', '.join(PROJECTED)} FROM applications WHERE id IN ({marks})", part
                ):
                    projected[str(row[0])] = list(row[1:])
    return states, projected


def _mismatched(store: RecordStore, folded: dict[Key, list[Change]]) -> list[tuple[Key, Record]]:
    states, projected = _stored(store.conn, list(folded))
    wrong = []
    for key, changes in folded.items():
        record = _fold(store, changes)
        same = states.get(key) == pack_map(record, cells=True)  # type: ignore[arg-type]
        if same and key[0] == "application":
            same = projected.get(key[1]) == _projection_row(key[1], record)[1:-1]
        if not same:
            wrong.append((key, record))
    return wrong


def find(store: RecordStore, keys: Sequence[Key], *, contiguous: bool = False) -> list[Key]:
    """The keys whose stored record or projection differs from the fold of their logged changes; reads
    only. ``contiguous``: the keys are one slice of :func:`next_slice`, read in one range."""
    return [key for key, _ in _mismatched(store, _changes_of(store.conn, keys, contiguous))]


def fix(
    store: RecordStore,
    suspects: Sequence[Key],
    *,
    write: Callable[[], AbstractContextManager[object]] | None = None,
) -> list[Key]:
    """Rewrite those of ``suspects`` that still differ, in one short write transaction; returns them.
    ``write`` opens that transaction when the database is not SQLite's (the hub's store on PostgreSQL
    begins and locks its own way: ``hub.store.HubStore.transaction``)."""
    if not suspects:
        return []
    fixed: list[Key] = []
    with write() if write is not None else transaction(store.db):
        # Again, under the write lock: a change may have arrived since the first read.
        for key, record in _mismatched(store, _changes_of(store.conn, suspects, False)):
            store._save(key, record)
            fixed.append(key)
    return fixed


def check(store: RecordStore, keys: Sequence[Key], *, contiguous: bool = False) -> list[Key]:
    """:func:`find` then :func:`fix`."""
    return fix(store, find(store, keys, contiguous=contiguous))


__all__ = ["Key", "check", "find", "fix", "next_slice", "touched_since"]
