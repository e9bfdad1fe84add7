"""Nightly anti-entropy: how many bytes and round trips two replicas need to find what differs.

Main figure (in memory): a scope of ``--records`` records (default 1,000,000) held by two replicas
that differ in ``--differences`` records (default 10: some changed on one side, some missing on
either side). Leaves are made by ``sync.scope.leaves`` from (entity, id, change digest) rows, trees by
the real ``sync.merkle.MerkleTree``; the station's side runs ``ReconcileSession`` and the hub's side
answers with ``sync.merkle.answer``. The two sides are two processes joined by a pipe, as a station
and the hub are two machines: each builds its own tree (at the same time), then they talk. Every
message crosses the pipe as canonical msgpack (``protocol.codec.pack``); ``bytes_exchanged`` counts
those payloads both ways. ``bytes_signed`` counts the same messages the way ``node/reconcile.py`` and
``hub/reconcile.py`` send them: requests signed by the station, answers signed by the hub and sealed
to the station.

Second figure (``--sqlite-rows``, default 100,000, 0 to skip): the SQLite path both replicas really
take, ``replica.scope.build_tree`` over a ``changes`` table on disk, with the same session, plus the
``records`` step that ships the differing records' changes (``replica.scope.select_records``).

``seconds`` is the comparison itself (first request to result, once both trees exist). What it costs
each side to get there is reported beside it: ``leaves_seconds_*`` (``sync.scope.leaves``) and
``tree_seconds_*`` (``MerkleTree.build``); for the SQLite path ``merkle_seconds`` (the digest walk) and
``records_seconds`` (fetching the differing records' changes on both sides).

Third figure (``--kept-rows``, default 1,000,000, 0 to skip): end to end with the leaves kept between
nights (``replica/merkle_store.py``): both replicas kept their leaves on an earlier night, the station
has written the differences since, and tonight each side brings its leaves up to its log, makes its
tree from the kept bucket digests, and the two compare and exchange the differing records. Target:
under 2 s for 1,000,000 records and 10 differences.

Progress goes to stderr; with ``--json`` stdout is exactly one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import sqlite3
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from protocol.codec import pack, unpack
from protocol.document import sign_document
from protocol.keys import key_id, public_bytes, sealing_key_from_seed, signing_key_from_seed
from sync.merkle import MerkleTree, ReconcileResult, ReconcileSession, answer, depth_for, request_depth
from sync.scope import leaves

ENTITY = "application"
SIGN_SEED = b"bench/reconcile/sign".ljust(32, b".")
SEAL_SEED = b"bench/reconcile/seal".ljust(32, b".")


def log(msg: str) -> None:
    print(f"[bench reconcile] {msg}", file=sys.stderr, flush=True)


# -- the scope --------------------------------------------------------------------------------------


def _rid(i: int) -> str:
    # UUID-shaped ids, as the applications' UUIDv7 are; deterministic so runs compare.
    h = hashlib.blake2b(i.to_bytes(8, "big"), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-7{h[13:16]}-{h[16:20]}-{h[20:32]}"


def _digest(i: int, version: int = 0) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big") + version.to_bytes(4, "big")).digest()


def plan_differences(records: int, differences: int, seed: int) -> dict[str, list[int]]:
    """Which records differ: changed on the station, missing at the hub, missing at the station."""
    rng = random.Random(seed)
    picked = rng.sample(range(records), differences)
    third = max(differences // 3, 0)
    return {
        "missing_at_hub": picked[:third],
        "missing_at_station": picked[third : 2 * third],
        "changed": picked[2 * third :],
    }


Row = tuple[str, str, bytes]


def base_rows(records: int) -> list[Row]:
    """(entity, id, change digest) rows both replicas share: one change per record, and a later status
    change on a third of them. Made once, before the hub's process is forked off."""
    rows: list[Row] = []
    for i in range(records):
        rid = _rid(i)
        rows.append((ENTITY, rid, _digest(i)))
        if i % 3 == 0:
            rows.append((ENTITY, rid, _digest(i, 1)))
    return rows


def replica_rows(base: list[Row], plan: dict[str, list[int]], side: str) -> list[Row]:
    """What one replica holds: the shared rows minus the records it lacks, plus the station's own
    extra change on the records that differ."""
    lacks = {_rid(i) for i in (plan["missing_at_hub"] if side == "hub" else plan["missing_at_station"])}
    rows = [r for r in base if r[1] not in lacks] if lacks else list(base)
    if side == "station":
        rows += [(ENTITY, _rid(i), _digest(i, 2)) for i in plan["changed"]]
    return rows


def build_side(
    base: list[Row], plan: dict[str, list[int]], side: str, records: int
) -> tuple[MerkleTree, dict[str, float]]:
    """One replica's tree, the way both peers make it: ``sync.scope.leaves`` then ``MerkleTree.build``."""
    rows = replica_rows(base, plan, side)
    t0 = time.perf_counter()
    pairs = leaves(rows)
    t1 = time.perf_counter()
    tree = MerkleTree.build(pairs, depth_for(records))
    t2 = time.perf_counter()
    return tree, {"leaves": t1 - t0, "build": t2 - t1}


# -- two peers over a pipe ----------------------------------------------------------------------------


def _responder(conn: Connection, base: list[Row], plan: dict[str, list[int]], records: int) -> None:
    """The hub's side: build our tree, then answer requests until told to stop."""
    tree, timing = build_side(base, plan, "hub", records)
    conn.send_bytes(pack(timing))
    while True:
        message = unpack(conn.recv_bytes())
        if message == "stop":
            break
        assert isinstance(message, dict)
        request = message["request"]
        assert request_depth(request) == tree.depth
        conn.send_bytes(pack(answer(tree, request)))
    conn.close()


class Wire:
    """Counts what the conversation costs: payloads, and the same messages signed (and sealed) as
    the station and the hub really send them."""

    def __init__(self) -> None:
        self.payload = 0
        self.signed = 0
        self.messages = 0
        self._sign = signing_key_from_seed(SIGN_SEED)
        self._seal = sealing_key_from_seed(SEAL_SEED).public_key()
        self._seal_id = key_id(public_bytes(self._seal))

    def request(self, body: dict[str, object]) -> bytes:
        data = pack(body)
        self.payload += len(data)
        self.messages += 1
        self.signed += len(
            sign_document(
                "reconcile-request",
                {**body, "at_ms": 0},
                signer="360802-T01-05",
                recipient="360802",
                signing_key=self._sign,
            )
        )
        return data

    def response(self, data: bytes, body: object) -> None:
        self.payload += len(data)
        self.messages += 1
        self.signed += len(
            sign_document(
                "reconcile",
                body,
                signer="360802",
                recipient="360802-T01-05",
                signing_key=self._sign,
                seal_to=self._seal,
                recipient_key=self._seal_id,
            )
        )


def in_memory(records: int, differences: int, seed: int) -> dict[str, object]:
    plan = plan_differences(records, differences, seed)
    expected = {f"{ENTITY}:{_rid(i)}" for ids in plan.values() for i in ids}
    log(f"generating {records:,} records' change digests")
    t0 = time.perf_counter()
    base = base_rows(records)
    generate = time.perf_counter() - t0
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    ours, theirs = ctx.Pipe()
    log("building both replicas' trees at once (station here, hub in another process)")
    t0 = time.perf_counter()
    peer = ctx.Process(target=_responder, args=(theirs, base, plan, records), daemon=True)
    peer.start()
    try:
        tree, station_timing = build_side(base, plan, "station", records)
        del base
        hub_timing = unpack(ours.recv_bytes())
        assert isinstance(hub_timing, dict)
        build_wall = time.perf_counter() - t0

        log("comparing")
        wire = Wire()
        t1 = time.perf_counter()
        session = ReconcileSession(tree)
        request: dict[str, object] | None = session.first_request()
        while request is not None:
            ours.send_bytes(wire.request({"op": "merkle", "request": request}))
            raw = ours.recv_bytes()
            response = unpack(raw)
            wire.response(raw, {"response": response})
            request = session.receive(response)
        result = session.result()
        seconds = time.perf_counter() - t1
        ours.send_bytes(pack("stop"))
        peer.join(timeout=30)
    finally:
        if peer.is_alive():
            peer.kill()
            peer.join(timeout=5)

    found = set(result.missing_here) | set(result.missing_there) | set(result.differing)
    if found != expected:
        raise AssertionError(f"the session found {len(found)} differing records, expected {len(expected)}")
    return {
        "records": records,
        "differences": len(found),
        "bytes_exchanged": wire.payload,
        "bytes_signed": wire.signed,
        "seconds": round(seconds, 4),
        "rounds": result.rounds,
        "messages": wire.messages,
        "buckets_compared": result.buckets_compared,
        "depth": tree.depth,
        "missing_at_hub": len(result.missing_there),
        "missing_at_station": len(result.missing_here),
        "changed": len(result.differing),
        "generate_seconds": round(generate, 2),
        "leaves_seconds_station": round(station_timing["leaves"], 2),
        "tree_seconds_station": round(station_timing["build"], 2),
        "leaves_seconds_hub": round(float(hub_timing["leaves"]), 2),
        "tree_seconds_hub": round(float(hub_timing["build"]), 2),
        "build_seconds_wall": round(build_wall, 2),
    }


# -- the SQLite path ----------------------------------------------------------------------------------

SCHEMA = """CREATE TABLE changes (
    rowid INTEGER PRIMARY KEY, origin TEXT NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
    hlc INTEGER NOT NULL, entity TEXT NOT NULL, rid TEXT NOT NULL, fields BLOB NOT NULL, base BLOB NOT NULL,
    application TEXT NOT NULL, UNIQUE (origin, epoch, seq))"""
STATION = "360802-T01-05"
HLC0 = 1_772_413_200_000 << 16  # 2026-03-02 09:00 +08:00


def _accept_fields(i: int) -> dict[str, object]:
    return {
        "number": f"{STATION}-20260302-{i + 1:05d}",
        "station": STATION,
        "item": "360802-0004",
        "catalogue_version": 1,
        "kind": "promised",
        "applicant_name": f"测试申请人{i:06d}",
        "applicant_id": "36080219850615001X",
        "applicant_phone": f"139{i:08d}",
        "address": "测试镇测试村1组1号",
        "accepted_at": "2026-03-02T09:00:00+08:00",
        "due_date": "2026-03-30",
        "status": "accepted",
        "m.居民身份证": ["submitted", ""],
        "m.户口簿": ["submitted", ""],
        "m.家庭收入情况声明": ["deferred", "2026-03-09"],
        "m.家庭经济状况核对授权书": ["submitted", ""],
    }


def make_db(path: Path, rows: int, plan: dict[str, list[int]], side: str) -> None:
    skip = set(plan["missing_at_hub"] if side == "hub" else plan["missing_at_station"])
    changed = set(plan["changed"]) if side == "station" else set()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SCHEMA)
    conn.execute("CREATE INDEX changes_application ON changes(application)")  # as replica/records.py has
    empty = pack({})

    def gen() -> Any:
        # Seqs are fixed per record (gaps where a replica lacks one), so that the records both sides
        # hold have the very same changes: a change's digest covers its seq.
        for i in range(rows):
            if i in skip:
                continue
            rid = _rid(i)
            yield STATION, 1, 2 * i + 1, HLC0 + i * 2, ENTITY, rid, pack(_accept_fields(i)), empty, rid
            if i in changed:
                yield (
                    STATION,
                    1,
                    2 * i + 2,
                    HLC0 + i * 2 + 1,
                    ENTITY,
                    rid,
                    pack({"status": "withdrawn"}),
                    pack({"status": HLC0 + i * 2}),
                    rid,
                )

    with conn:
        conn.executemany(
            "INSERT INTO changes (origin, epoch, seq, hlc, entity, rid, fields, base, application)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            gen(),
        )
    conn.close()


def _sqlite_tree(path: Path, depth: int | None = None) -> tuple[MerkleTree, float, sqlite3.Connection]:
    from replica.scope import CHANGE_COLS, build_tree

    conn = sqlite3.connect(path)
    t0 = time.perf_counter()
    tree = build_tree(conn.execute(f"SELECT {CHANGE_COLS} FROM changes c").fetchall(), depth)
    return tree, time.perf_counter() - t0, conn


def sqlite_path(rows: int, differences: int, seed: int) -> dict[str, object]:
    from replica.scope import CHANGE_COLS, row_to_wire, select_records

    plan = plan_differences(rows, differences, seed)
    with tempfile.TemporaryDirectory(
        prefix="sanji-bench-reconcile-", dir=os.environ.get("SANJI_BENCH_DIR", "/var/tmp")
    ) as work:
        hub_db, station_db = Path(work) / "hub.db", Path(work) / "node.db"
        log(f"writing two SQLite change logs of about {rows:,} records")
        make_db(hub_db, rows, plan, "hub")
        make_db(station_db, rows, plan, "station")
        size = station_db.stat().st_size
        station_tree, station_build, station_conn = _sqlite_tree(station_db)
        hub_tree, hub_build, hub_conn = _sqlite_tree(hub_db, station_tree.depth)
        wire = Wire()
        t0 = time.perf_counter()
        result, keys = merkle_walk(station_tree, hub_tree, wire)
        merkle_seconds = time.perf_counter() - t0
        # The records step: the hub sends its changes for those records; the station sends back its own.
        sql = f"SELECT {CHANGE_COLS} FROM changes c WHERE 1=1"
        wire.request({"op": "records", "keys": keys})
        theirs = [row_to_wire(r) for r in select_records(hub_conn, sql, (), keys)]
        wire.response(pack({"changes": theirs}), {"changes": theirs})
        mine = [row_to_wire(r) for r in select_records(station_conn, sql, (), keys)]
        wire.request({"op": "repair", "changes": mine, "foreign": []})
        wire.response(pack({"applied": len(mine)}), {"applied": len(mine)})
        seconds = time.perf_counter() - t0
        station_conn.close()
        hub_conn.close()
    return {
        "rows": rows,
        "db_bytes": size,
        "differences": len(keys),
        "bytes_exchanged": wire.payload,
        "bytes_signed": wire.signed,
        "seconds": round(seconds, 4),
        "rounds": result.rounds,
        "merkle_seconds": round(merkle_seconds, 4),
        "records_seconds": round(seconds - merkle_seconds, 4),
        "build_seconds_station": round(station_build, 2),
        "build_seconds_hub": round(hub_build, 2),
    }


# -- entry point ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench reconcile",
        description="nightly anti-entropy (Merkle digests) between a station and the hub",
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--records", type=int, default=1_000_000, help="records in the scope (default 1,000,000)")
    p.add_argument("--differences", type=int, default=10, help="records that differ (default 10)")
    p.add_argument(
        "--sqlite-rows",
        type=int,
        default=100_000,
        help="also measure the SQLite path on a generated change log of this many records (0: skip)",
    )
    p.add_argument(
        "--kept-rows",
        type=int,
        default=1_000_000,
        help="records for the end-to-end figure with leaves kept between nights (0: skip)",
    )
    p.add_argument("--seed", type=int, default=20260302)
    args = p.parse_args(argv)
    if args.records < 1 or not 0 <= args.differences <= args.records:
        p.error("--records must be positive and --differences between 0 and --records")
    result = in_memory(args.records, args.differences, args.seed)
    if args.sqlite_rows > 0:
        result["sqlite"] = sqlite_path(args.sqlite_rows, min(args.differences, args.sqlite_rows), args.seed)
    if args.kept_rows > 0:
        from bench.reconcile_kept import kept_leaves

        result["kept_leaves"] = kept_leaves(args.kept_rows, min(args.differences, args.kept_rows), args.seed)
    result["target_bytes"] = 64 * 1024
    result["within_target"] = int(str(result["bytes_exchanged"])) < 64 * 1024
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def merkle_walk(station_tree: MerkleTree, hub_tree: MerkleTree, wire: Wire) -> tuple[ReconcileResult, list[str]]:
    """The digest walk of one reconciliation, every message through the codec as on the wire: its
    result, and the keys that differ."""
    session = ReconcileSession(station_tree)
    request: dict[str, object] | None = session.first_request()
    while request is not None:
        wire.request({"op": "merkle", "request": request})
        response = answer(hub_tree, unpack(pack(request)))
        wire.response(pack(response), {"response": response})
        request = session.receive(unpack(pack(response)))
    result = session.result()
    return result, sorted(set(result.missing_here) | set(result.missing_there) | set(result.differing))
