"""``python -m bench reconcile``'s third figure: end to end with the leaves kept between nights.

Both replicas kept their leaves (``replica/merkle_store.py``) on an earlier night; the station has
written the differences since; tonight each side brings its leaves up to its log, makes its tree from
the kept bucket digests, and the two compare and exchange the differing records. Target: under 2 s for
1,000,000 records and 10 differences (issue 20).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.reconcile import (
    ENTITY,
    HLC0,
    SCHEMA,
    STATION,
    Wire,
    _accept_fields,
    _rid,
    log,
    merkle_walk,
    plan_differences,
)
from protocol.codec import pack
from sync.merkle import MerkleTree, depth_for


def _rows_of(records: range, skip: set[int]) -> Any:
    """The first change of each record in ``records`` not in ``skip``, as make_db writes it."""
    empty = pack({})
    for i in records:
        if i not in skip:
            rid = _rid(i)
            yield STATION, 1, 2 * i + 1, HLC0 + i * 2, ENTITY, rid, pack(_accept_fields(i)), empty, rid


def _kept_db(path: Path, rows: int, skip: set[int]) -> sqlite3.Connection:
    """A change log of ``rows`` records (less ``skip``) with the merkle tables node/store.py has."""
    import sqlite_utils

    from replica import merkle_store

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SCHEMA)
    conn.execute("CREATE INDEX changes_record ON changes(entity, rid)")  # as replica/records.py has
    conn.execute("CREATE TABLE purged (entity TEXT, id TEXT, purged_ms INTEGER, leaf BLOB)")  # none purged
    merkle_store.migrations.apply(sqlite_utils.Database(conn))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO changes (origin, epoch, seq, hlc, entity, rid, fields, base, application)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        _rows_of(range(rows), skip),
    )
    conn.execute("COMMIT")
    return conn


def _tree_now(conn: sqlite3.Connection, depth: int | None) -> tuple[MerkleTree, float]:
    """One side's tree as a reconciliation makes it: the kept leaves brought up to the log, then the
    tree from the kept bucket digests (node/scope_leaves.py; the hub's side reads its scope the same way)."""
    from node import scope_leaves

    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    store = scope_leaves.refresh(conn)
    tree = store.tree(depth if depth is not None else depth_for(store.count()))
    conn.execute("COMMIT")
    return tree, time.perf_counter() - t0


def kept_leaves(rows: int, differences: int, seed: int) -> dict[str, object]:
    """Both replicas have kept their leaves since an earlier night; since then the station wrote the
    planned differences. Measured: end to end, both sides' refresh and tree, the digest walk, and the
    records step (each side in turn, so the figure is the sum of both machines' work)."""
    from replica.scope import CHANGE_COLS, row_to_wire, select_records

    plan = plan_differences(rows, differences, seed)
    expected = {f"{ENTITY}:{_rid(i)}" for ids in plan.values() for i in ids}
    lacks_hub, lacks_station = set(plan["missing_at_hub"]), set(plan["missing_at_station"])
    with tempfile.TemporaryDirectory(
        prefix="sanji-bench-reconcile-", dir=os.environ.get("SANJI_BENCH_DIR", "/var/tmp")
    ) as work:
        log(f"writing two change logs of {rows:,} records, as of an earlier night")
        hub = _kept_db(Path(work) / "hub.db", rows, lacks_hub | lacks_station)
        station = _kept_db(Path(work) / "node.db", rows, lacks_hub | lacks_station)
        log("the earlier night: each side reads its whole log once and keeps its leaves")
        first_station = _tree_now(station, None)
        first_hub = _tree_now(hub, first_station[0].depth)
        log("since then: the station wrote the differences (and the hub holds what the station lacks)")
        insert = (
            "INSERT INTO changes (origin, epoch, seq, hlc, entity, rid, fields, base, application)"
            " VALUES (?,?,?,?,?,?,?,?,?)"
        )
        everyone = set(range(rows))
        station.executemany(insert, _rows_of(range(rows), everyone - lacks_hub))
        changed = [
            (STATION, 1, 2 * i + 2, HLC0 + i * 2 + 1, ENTITY, _rid(i), pack({"status": "withdrawn"}),
             pack({"status": HLC0 + i * 2}), _rid(i))
            for i in plan["changed"]
        ]  # fmt: skip
        station.executemany(insert, changed)
        hub.executemany(insert, _rows_of(range(rows), everyone - lacks_station))
        log("tonight: refresh, trees, digest walk, records")
        t0 = time.perf_counter()
        station_tree, station_s = _tree_now(station, None)
        hub_tree, hub_s = _tree_now(hub, station_tree.depth)
        wire = Wire()
        t1 = time.perf_counter()
        result, keys = merkle_walk(station_tree, hub_tree, wire)
        merkle_s = time.perf_counter() - t1
        sql = f"SELECT {CHANGE_COLS} FROM changes c WHERE 1=1"
        theirs = [row_to_wire(r) for r in select_records(hub, sql, (), keys)]
        mine = [row_to_wire(r) for r in select_records(station, sql, (), keys)]
        wire.request({"op": "records", "keys": keys})
        wire.response(pack({"changes": theirs}), {"changes": theirs})
        wire.request({"op": "repair", "changes": mine, "foreign": []})
        seconds = time.perf_counter() - t0
        hub.close()
        station.close()
    if set(keys) != expected:
        raise AssertionError(f"the session found {len(keys)} differing records, expected {len(expected)}")
    return {
        "records": rows,
        "differences": len(keys),
        "seconds": round(seconds, 3),
        "target_seconds": 2.0,
        "within_target": seconds < 2.0,
        "refresh_and_tree_seconds_station": round(station_s, 3),
        "refresh_and_tree_seconds_hub": round(hub_s, 3),
        "merkle_seconds": round(merkle_s, 4),
        "bytes_exchanged": wire.payload,
        "rounds": result.rounds,
        "depth": station_tree.depth,
        "first_night_seconds_station": round(first_station[1], 2),
        "first_night_seconds_hub": round(first_hub[1], 2),
    }
