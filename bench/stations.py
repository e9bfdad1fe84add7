"""Many stations at once: each pushes one batch of 20 new applications, then pulls its feed.

The stations are lightweight clients speaking the real protocol with real keys: each is registered
and enrolled through the hub library (``hub.enrolment.register`` + ``redeem``) in the hub folder
before the server starts, builds its signed, sealed batch with ``protocol.batch.build_batch`` and a
signed pull request, and checks the hub's signed answers. All of them connect at the same moment to
``sanji hub serve`` (its own process). Reported: how many succeeded, p50/p99 latency of push + pull,
the hub's CPU seconds and peak RSS (summed over its processes with ``--workers N``). With
``--backend postgres`` the hub's store is a throwaway PostgreSQL cluster (``bench/backends.py``) and the
database server's CPU is reported apart from the hub's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp

from bench import backends, common

CHANGES_PER_STATION = 20


@dataclass
class SimStation:
    code: str
    sign: object  # Ed25519PrivateKey
    seal: object  # X25519PrivateKey
    frame: bytes = b""
    pull_header: str = ""


def _spec(n: int) -> list[dict[str, str]]:
    townships = max(1, n // 50)
    out = [{"code": f"360802-B{t:02d}", "name": f"模拟镇{t}", "tier": "township"} for t in range(1, townships + 1)]
    for i in range(n - townships):
        t = i % townships + 1
        out.append(
            {
                "code": f"360802-B{t:02d}-{i // townships + 1:03d}",
                "name": f"模拟村{i}",
                "tier": "village",
                "parent": f"360802-B{t:02d}",
            }
        )
    return out


def _application(
    code: str,
    raw: dict[str, object],
    counter: int,
    catalogue,
    version: int,  # type: ignore[no-untyped-def]
    now: int,
) -> tuple[str, dict[str, object]]:
    """The fields a station writes when it accepts one line of the workload (as node/commands.py does)."""
    from replica.ids import CHINA, iso_from_ms, uuid7
    from sync.acceptance import due_date
    from sync.numbering import application_number

    item = catalogue.items[str(raw["item"])]
    day = datetime.fromtimestamp(now / 1000, tz=CHINA).date()
    applicant = raw["applicant"]
    assert isinstance(applicant, dict)
    fields: dict[str, object] = {
        "number": application_number(code, day, 1, counter),
        "station": code,
        "item": item.code,
        "catalogue_version": version,
        "kind": item.kind,
        "applicant_name": applicant["name"],
        "applicant_id": applicant["id_number"],
        "applicant_phone": applicant["phone"],
        "address": raw.get("address", ""),
        "accepted_at": iso_from_ms(now),
        "due_date": due_date(item, day, catalogue.calendar).isoformat(),
        "status": "accepted",
    }
    materials = raw.get("materials") or []
    assert isinstance(materials, list)
    for m in materials:
        fields["m." + m["name"]] = ["submitted", ""]
    return uuid7(now), fields


def prepare(folder: Path, n: int, database: str | None = None) -> tuple[list[SimStation], str, object]:
    """Make the hub, enrol ``n`` stations into it, and build every station's batch and pull request."""
    from hub import enrolment
    from protocol.batch import build_batch
    from protocol.document import sign_document
    from protocol.keys import load_seal_public, public_bytes, sealing_key_from_seed, signing_key_from_seed

    hub = common.create_hub(folder, database)
    spec = _spec(n)
    tokens = common.register_stations(hub, spec)
    version, catalogue = hub.catalogue()
    hub_id, hub_seal, hub_verify = hub.hub_id, load_seal_public(hub.keys.seal_pub), hub.keys.sign.public_key()
    lines = common.workload_lines()
    sims: list[SimStation] = []
    now = int(time.time() * 1000)
    for i, s in enumerate(spec):
        sim = SimStation(s["code"], signing_key_from_seed(os.urandom(32)), sealing_key_from_seed(os.urandom(32)))
        enrolment.redeem(
            hub,
            token=tokens[sim.code],
            sign_pub=public_bytes(sim.sign),  # type: ignore[arg-type]
            seal_pub=public_bytes(sim.seal),
        )  # type: ignore[arg-type]
        changes: list[object] = []
        for k in range(CHANGES_PER_STATION):
            raw = json.loads(lines[(i * CHANGES_PER_STATION + k) % len(lines)])
            app_id, fields = _application(sim.code, raw, k + 1, catalogue, version, now)
            changes.append([sim.code, 1, k + 1, (now << 16) + k, "application", app_id, fields, {}])
        sim.frame = build_batch(
            origin=sim.code,
            epoch=1,
            first_seq=1,
            changes=changes,
            prev=bytes(32),
            recipient=hub_id,
            hlc=(now << 16) + CHANGES_PER_STATION,
            signing_key=sim.sign,  # type: ignore[arg-type]
            seal_to=hub_seal,
        )
        sim.pull_header = base64.b64encode(
            sign_document(
                "pull",
                {"after": 0, "catalogue_version": version, "pending": 0, "at_ms": now},
                signer=sim.code,
                recipient=hub_id,
                signing_key=sim.sign,  # type: ignore[arg-type]
            )
        ).decode()
        sims.append(sim)
    hub.close()
    return sims, hub_id, hub_verify


async def _station(
    sim: SimStation, session: aiohttp.ClientSession, url: str, hub_id: str, hub_verify, go: asyncio.Event
) -> tuple[bool, float, str]:  # type: ignore[no-untyped-def]
    from protocol.codec import pack
    from protocol.document import open_document

    def key(signer: str, _kid: str):  # type: ignore[no-untyped-def]
        return hub_verify if signer == hub_id else None

    await go.wait()
    t0 = time.perf_counter()
    try:
        async with session.post(
            f"{url}/v1/sync/push",
            data=pack([sim.frame]),
            headers={"Content-Type": "application/vnd.sanji.frames+msgpack"},
        ) as resp:
            data = await resp.read()
            if resp.status != 200:
                return False, time.perf_counter() - t0, f"push HTTP {resp.status}: {data[:200]!r}"
        acks = open_document(data, kind="acks", recipient=sim.code, verify_key=key).body
        assert isinstance(acks, dict) and isinstance(acks["acks"], list)
        result = acks["acks"][0]["result"]
        if result != "applied":
            return False, time.perf_counter() - t0, f"push {result}: {acks['acks'][0].get('reason')}"
        async with session.get(
            f"{url}/v1/sync/pull", params={"after": "0"}, headers={"X-Sanji-Request": sim.pull_header}
        ) as resp:
            data = await resp.read()
            if resp.status != 200:
                return False, time.perf_counter() - t0, f"pull HTTP {resp.status}: {data[:200]!r}"
        open_document(data, kind="feed", recipient=sim.code, verify_key=key, unseal_key=lambda _k: sim.seal)  # type: ignore[arg-type,return-value]
    except Exception as exc:  # reported, never raised: a benchmark prints what happened
        return False, time.perf_counter() - t0, f"{exc.__class__.__name__}: {exc}"
    return True, time.perf_counter() - t0, ""


async def _all(sims: list[SimStation], url: str, hub_id: str, hub_verify) -> list[tuple[bool, float, str]]:  # type: ignore[no-untyped-def]
    go = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:
        tasks = [asyncio.create_task(_station(s, session, url, hub_id, hub_verify, go)) for s in sims]
        await asyncio.sleep(0.1)  # every task is waiting at the line
        go.set()
        return await asyncio.gather(*tasks)


def run(n: int, workers: int = 1, backend: str = "sqlite") -> dict[str, object]:
    with common.workdir("stations") as work, backends.backend(backend) as store:
        common.log(f"enrolling {n} stations and building their batches ({backend})")
        t0 = time.perf_counter()
        with store.quick_setup():
            sims, hub_id, hub_verify = prepare(work / "hub", n, store.dsn)
        prepare_s = time.perf_counter() - t0
        with common.hub_server(work / "hub", workers=workers) as server:
            common.log(f"{n} stations push and pull at once ({workers} hub process{'es' if workers > 1 else ''})")
            cpu0, db0, client0 = server.cpu_seconds(), store.db_cpu_seconds(), time.process_time()
            t0 = time.perf_counter()
            results = asyncio.run(_all(sims, server.url, hub_id, hub_verify))
            wall = time.perf_counter() - t0
            hub_cpu, client_cpu = server.cpu_seconds() - cpu0, time.process_time() - client0
            db_cpu = store.db_cpu_seconds() - db0
            hub_rss = server.peak_rss_mb()
            on_hub = common.hub_count(work / "hub")
        described = store.describe()
    ok = [t for good, t, _ in results if good]
    errors = [e for good, _, e in results if not good]
    changes = n * CHANGES_PER_STATION
    return {
        "benchmark": "stations",
        **described,
        "stations": n,
        "workers": workers,
        "changes_per_station": CHANGES_PER_STATION,
        "succeeded": len(ok),
        "failed": len(errors),
        "errors": errors[:5],
        "p50_ms": common.ms(common.percentile(ok, 50)),
        "p99_ms": common.ms(common.percentile(ok, 99)),
        "max_ms": common.ms(max(ok) if ok else None),
        "wall_seconds": round(wall, 3),
        "hub_applications": on_hub,
        "hub_cpu_seconds": round(hub_cpu, 2),
        "hub_cpu_ms_per_station": round(hub_cpu * 1000 / n, 2),
        "hub_cpu_ms_per_change": round(hub_cpu * 1000 / changes, 3),
        "db_cpu_seconds": round(db_cpu, 2),
        "db_cpu_ms_per_change": round(db_cpu * 1000 / changes, 3),
        "clients_cpu_seconds": round(client_cpu, 2),
        "hub_peak_rss_mb": hub_rss,
        "prepare_seconds": round(prepare_s, 2),
        **backends.load(),
    }


def main(argv: list[str]) -> int:
    p = common.parser("stations", __doc__ or "")
    p.add_argument("--stations", type=int, default=1000)
    backends.add_arguments(p)
    args = p.parse_args(argv)
    common.emit(run(args.stations, args.workers, args.backend), args.json)
    return 0
