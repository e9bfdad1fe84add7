"""This machine's own ceiling for the work a sync does, measured on the workload's own changes.

- raw SQLite: the workload's change rows upserted in one transaction (WAL, synchronous=FULL), the
  fastest any store on this disk could take them;
- the hub's storage: the three rows the hub keeps per application (log, merged record, projection),
  precomputed and written into the hub's real schema 2,000 to a transaction: the most a hub on this
  disk could ingest if decoding, checking and merging cost nothing;
- Ed25519: signature verifications per second (the hub verifies one per batch, one per pull), and
  the whole signing and sealing work of one station's push and pull at the hub;
- HTTP: 1,000 clients posting a batch-sized body and fetching a page at once, against a server that
  does nothing (``bench/null_server.py``): the latency floor under ``bench stations``;
- msgpack: decoding the workload's changes with the C decoder alone (no validation);
- bytes: zlib of the canonical msgpack of the workload's changes, compressed as one stream (what a
  perfect batcher would send per record before any framing, signature or encryption).

The changes are the ones a station writes: the workload accepted through ``node.commands.accept_lines``
into a station on disk (the USB-enrolled kind, no hub process needed).
"""

from __future__ import annotations

import os
import sqlite3
import time
import zlib

from bench import common


def _station_changes(work, lines: list[str]) -> list[list[object]]:  # type: ignore[no-untyped-def]
    """The wire changes a station makes for the workload (accepted offline through the real path)."""
    from hub import enrolment as hub_enrolment
    from node import commands, enrolment
    from node.station import Station
    from protocol.codec import unpack

    hub = common.create_hub(work / "hub")
    tokens = common.register_stations(
        hub,
        [
            {"code": "360802-T01", "name": "兴桥镇", "tier": "township"},
            {"code": "360802-T01-05", "name": "兴桥镇塅口村", "tier": "village", "parent": "360802-T01"},
        ],
    )
    (work / "enrol.sje").write_bytes(hub_enrolment.enrolment_file(hub, "360802-T01-05", tokens["360802-T01-05"]))
    hub.close()
    enrolment.init_from_file(work / "node", work / "enrol.sje", token=tokens["360802-T01-05"])
    st = Station(work / "node")
    commands.accept_lines(st, lines)
    rows = st.conn.execute("SELECT origin, epoch, seq, hlc, entity, rid, fields, base FROM changes ORDER BY seq")
    wires = [[o, e, s, h, ent, rid, unpack(f), unpack(b)] for o, e, s, h, ent, rid, f, b in rows]
    st.close()
    return wires


def _sqlite_upserts(path, wires: list[list[object]]) -> float:  # type: ignore[no-untyped-def]
    from protocol.codec import pack

    rows = [(w[0], w[1], w[2], w[3], w[4], w[5], pack(w[6]), pack(w[7])) for w in wires]
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE changes (rowid INTEGER PRIMARY KEY, origin TEXT NOT NULL, epoch INTEGER NOT NULL,"
        " seq INTEGER NOT NULL, hlc INTEGER NOT NULL, entity TEXT NOT NULL, rid TEXT NOT NULL, fields BLOB NOT NULL,"
        " base BLOB NOT NULL, UNIQUE (origin, epoch, seq))"
    )
    t0 = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO changes (origin, epoch, seq, hlc, entity, rid, fields, base) VALUES (?,?,?,?,?,?,?,?)"
        " ON CONFLICT (origin, epoch, seq) DO UPDATE SET hlc=excluded.hlc, fields=excluded.fields",
        rows,
    )
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    return len(rows) / seconds


def _hub_rows(folder, wires: list[list[object]], per_batch: int = 2000) -> float:  # type: ignore[no-untyped-def]
    """Applications per second when the hub only writes the rows it must keep for each one (the change
    in the log, the merged record, the application's projection) into its real schema and indexes,
    2,000 to a durable transaction as in a push, with every row computed beforehand: SQLite's ceiling
    for the hub's storage, with no decoding, checking or merging at all."""
    from replica.records import _PROJECT_SQL, _SAVE_SQL, _projection_row, _record_row
    from sync.change import change_from_wire
    from sync.fold import apply_change

    hub = common.create_hub(folder)
    changes = [change_from_wire(w) for w in wires]
    logged, saved, projected = [], [], []
    for c in changes:
        record, _ = apply_change({}, c, lambda _o: 1)
        logged.append(
            (c.origin, c.epoch, c.seq, c.hlc, c.entity, c.id, pack_fields(c.fields), pack_fields(c.base), c.id)
        )
        saved.append(_record_row((c.entity, c.id), record))
        projected.append(_projection_row(c.id, record))
    conn = hub.store.conn
    t0 = time.perf_counter()
    for i in range(0, len(changes), per_batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO changes (origin, epoch, seq, hlc, entity, rid, fields, base, application)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            logged[i : i + per_batch],
        )
        conn.executemany(_SAVE_SQL, saved[i : i + per_batch])
        conn.executemany(_PROJECT_SQL, projected[i : i + per_batch])
        conn.execute("COMMIT")
    seconds = time.perf_counter() - t0
    hub.close()
    return len(changes) / seconds


def pack_fields(fields: object) -> bytes:
    from protocol.codec import pack

    return pack(dict(fields))  # type: ignore[call-overload]


def _http_floor(work, n: int = 1000, body_bytes: int = 6000) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
    """``n`` clients at once, each POSTing a push-sized body then GETting a page, against a server that
    does nothing (``bench/null_server.py``, its own process, as the hub is): what HTTP alone costs
    ``bench stations`` on this machine."""
    import asyncio
    import sys

    import aiohttp

    port = common.free_port()
    served = common.serve_command(
        [sys.executable, "-m", "bench.null_server", str(port)],
        port=port,
        log_path=work / "null-server.log",
        probe="/healthz",
    )
    body = os.urandom(body_bytes)
    url = served.url

    async def one(session: aiohttp.ClientSession, go: asyncio.Event) -> float:
        await go.wait()
        t0 = time.perf_counter()
        async with session.post(f"{url}/v1/sync/push", data=body) as resp:
            await resp.read()
        async with session.get(f"{url}/v1/sync/pull") as resp:
            await resp.read()
        return time.perf_counter() - t0

    async def everyone() -> list[float]:
        go = asyncio.Event()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            tasks = [asyncio.create_task(one(session, go)) for _ in range(n)]
            await asyncio.sleep(0.1)
            go.set()
            return list(await asyncio.gather(*tasks))

    try:
        cpu0 = served.cpu_seconds()
        times = asyncio.run(everyone())
        server_cpu = served.cpu_seconds() - cpu0
    finally:
        served.stop()
    return {
        "http_floor_p50_ms": common.ms(common.percentile(times, 50)),
        "http_floor_p99_ms": common.ms(common.percentile(times, 99)),
        "http_floor_server_cpu_ms_per_station": round(server_cpu * 1000 / n, 2),
    }


def _station_crypto_ms(work, rounds: int = 200) -> float:  # type: ignore[no-untyped-def]
    """Milliseconds of signature and encryption work the hub must do for one station's push and pull
    (verify and open its sealed 20-change batch, sign the receipt and the acknowledgement, verify the
    signed pull request, sign and seal the feed page to the station), measured with the real calls."""
    from protocol.batch import build_batch, open_batch_changes, verify_batch
    from protocol.document import open_document, sign_document
    from protocol.keys import load_seal_public, public_bytes, sealing_key_from_seed, signing_key_from_seed

    hub_sign, hub_seal = signing_key_from_seed(os.urandom(32)), sealing_key_from_seed(os.urandom(32))
    st_sign, st_seal = signing_key_from_seed(os.urandom(32)), sealing_key_from_seed(os.urandom(32))
    st_verify = st_sign.public_key()
    changes = [
        ["S", 1, k + 1, k, "application", f"id-{k}", {"number": f"n{k}", "address": "测试路1号" * 8}, {}]
        for k in range(20)
    ]
    frame = build_batch(
        origin="S",
        epoch=1,
        first_seq=1,
        changes=changes,
        prev=bytes(32),
        recipient="H",
        hlc=20,
        signing_key=st_sign,
        seal_to=load_seal_public(public_bytes(hub_seal)),
    )
    pull = sign_document("pull", {"after": 0}, signer="S", recipient="H", signing_key=st_sign)
    st_seal_pub = load_seal_public(public_bytes(st_seal))
    t0 = time.perf_counter()
    for _ in range(rounds):
        vb = verify_batch(frame, recipient="H", verify_key=lambda _s, _k: st_verify)
        open_batch_changes(vb, unseal_key=lambda _k: hub_seal)
        sign_document("receipt", {"batch": b"x" * 32, "applied": 20}, signer="H", recipient="S", signing_key=hub_sign)
        sign_document("acks", {"acks": [{"batch": b"x" * 32}]}, signer="H", recipient="S", signing_key=hub_sign)
        open_document(pull, kind="pull", recipient="H", verify_key=lambda _s, _k: st_verify)
        sign_document("feed", {"changes": []}, signer="H", recipient="S", signing_key=hub_sign, seal_to=st_seal_pub)
    return (time.perf_counter() - t0) * 1000 / rounds


def _ed25519_verifies(n: int = 5000) -> float:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    message = os.urandom(300)  # about a batch header
    sig = key.sign(message)
    pub = key.public_key()
    t0 = time.perf_counter()
    for _ in range(n):
        pub.verify(sig, message)
    return n / (time.perf_counter() - t0)


def _msgpack_decodes(body: bytes, count: int, repeat: int = 5) -> float:
    import msgpack

    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        msgpack.unpackb(body, raw=False)
        best = min(best, time.perf_counter() - t0)
    return count / best


def _strict_decodes(body: bytes, count: int) -> float:
    from protocol.codec import unpack

    t0 = time.perf_counter()
    unpack(body)
    return count / (time.perf_counter() - t0)


def run(records: int | None) -> dict[str, object]:
    from protocol.codec import pack

    lines = common.workload_lines(records)
    with common.workdir("limits") as work:
        common.log(f"accepting {len(lines)} applications into a station to get its changes")
        wires = _station_changes(work, lines)
        n = len(wires)
        body = pack(wires)
        common.log("measuring")
        upserts = _sqlite_upserts(work / "raw.db", wires)
        hub_rows = _hub_rows(work / "rows-hub", wires)
        common.log("HTTP floor: 1,000 clients against a server that does nothing")
        http = _http_floor(work)
        crypto_ms = _station_crypto_ms(work)
    verifies = _ed25519_verifies()
    decodes = _msgpack_decodes(body, n)
    strict = _strict_decodes(body, n)
    json_bytes = sum(len(line.encode()) for line in lines)
    return {
        "benchmark": "limits",
        "records": n,
        "sqlite_upsert_rows_per_s": round(upserts),
        "hub_storage_records_per_s": round(hub_rows),
        "ed25519_verify_per_s": round(verifies),
        "station_round_crypto_ms": round(crypto_ms, 3),
        **http,
        "msgpack_decode_changes_per_s": round(decodes),
        "strict_decode_changes_per_s": round(strict),
        "canonical_msgpack_bytes_per_record": round(len(body) / n, 1),
        "zlib6_bytes_per_record": round(len(zlib.compress(body, 6)) / n, 1),
        "zlib9_bytes_per_record": round(len(zlib.compress(body, 9)) / n, 1),
        "workload_json_bytes_per_record": round(json_bytes / n, 1),
        "workload_json_zlib9_bytes_per_record": round(len(zlib.compress("\n".join(lines).encode(), 9)) / n, 1),
    }


def main(argv: list[str]) -> int:
    p = common.parser("limits", __doc__ or "")
    p.add_argument("--records", type=int, default=None, help="use the first N lines (default: all 20,000)")
    args = p.parse_args(argv)
    common.emit(run(args.records), args.json)
    return 0
