"""The district's villages and communities through their townships (``python -m bench district --relay``).

The same stations and workload as ``bench district``, but every station under a township or street
centre has a dead hub address and its centre's relay as ``--relay``: each centre is a real
``sanji node serve C --relay-port P`` process whose own loop carries its villages' traffic to the hub.
Reported beside the direct figures: how long the villages' rounds take to leave everything at the
relays, until the hub holds every record, and until every village holds the hub's receipts; the
bytes of batch frames that crossed the village-township link (the same frames then cross to the hub).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench import common

DEAD_HUB = "http://127.0.0.1:9"  # discard: nothing answers there


def _rounds(stations) -> list[tuple[str, float, object]]:  # type: ignore[no-untyped-def]
    """One sync round per station, all at once, each in its own thread and event loop."""
    from node import client

    results: list[tuple[str, float, object]] = []
    lock = threading.Lock()

    def one(st) -> None:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            result: object = asyncio.run(client.sync_round(st))
        except Exception as exc:  # reported, never raised
            result = exc
        with lock:
            results.append((st.code, time.perf_counter() - t0, result))

    threads = [threading.Thread(target=one, args=(st,), daemon=True) for st in stations]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _until(what: str, check, timeout: float = 600.0) -> float | None:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if check():
            return time.perf_counter() - t0
        time.sleep(0.1)
    common.log(f"gave up waiting: {what}")
    return None


def serve_args(folder: Path, port: int, relay_port: int) -> list[str]:
    return ["node", "serve", str(folder), "--port", str(port), "--relay-port", str(relay_port), "--interval", "0.5"]


def run(records: int | None) -> dict[str, object]:
    from node import commands, enrolment, relay_client
    from node.station import Station

    spec = common.stations()
    centres = {s["code"] for s in spec if s["tier"] in ("township", "street")}
    lines = common.workload_lines(records)
    share: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        share[json.loads(line)["station"]].append(line)
    with common.workdir("district-relay") as work:
        hub = common.create_hub(work / "hub")
        tokens = common.register_stations(hub, spec)
        hub.close()
        with common.hub_server(work / "hub") as server:
            common.log(f"enrolling {len(spec)} stations and accepting their {len(lines)} applications offline")
            accepted = 0
            for s in spec:
                enrolment.init_online(work / s["code"], server.url, tokens[s["code"]])
                st = Station(work / s["code"])
                accepted += int(str(commands.accept_lines(st, share.get(s["code"], []))["accepted"]))
                st.close()
            relays: dict[str, common.Served] = {}
            try:
                for code in sorted(centres):
                    port, relay_port = common.free_port(), common.free_port()
                    relays[code] = common.serve(
                        serve_args(work / code, port, relay_port),
                        port=relay_port,
                        log_path=work / f"{code}-serve.log",
                        probe="/healthz",
                    )
                villages = []
                for s in spec:
                    if s.get("parent") in relays:
                        relay_client.set_relay(work / s["code"], relays[s["parent"]].url)
                        st = Station(work / s["code"])
                        with st.transaction():
                            st.meta.set("hub_url", DEAD_HUB)
                        villages.append(st)
                common.log(f"{len(villages)} villages go through {len(relays)} townships")
                t0 = time.perf_counter()
                deposit = _rounds(villages)
                deposit_s = time.perf_counter() - t0
                held_s = _until("the hub holds everything", lambda: common.hub_count(work / "hub") >= accepted)
                held_s = None if held_s is None else held_s + deposit_s
                t1 = time.perf_counter()

                def receipted() -> bool:
                    _rounds([st for st in villages if st.pending_changes()])
                    return all(st.pending_changes() == 0 for st in villages)

                back_s = _until("every village holds its receipts", receipted)
                back_s = None if back_s is None else back_s + (t1 - t0)
                # The batches are built during the first round and kept (receipted) afterwards.
                up_bytes = sum(
                    int(st.conn.execute("SELECT COALESCE(SUM(length(frame)), 0) FROM outbox").fetchone()[0])
                    for st in villages
                )
                on_hub = common.hub_count(work / "hub")
                relay_cpu = round(sum(r.cpu_seconds() for r in relays.values()), 2)
                for st in villages:
                    st.close()
            finally:
                for served in relays.values():
                    served.stop()
    failed = [(code, repr(r)) for code, _, r in deposit if isinstance(r, BaseException)]
    via = sum(1 for _, _, r in deposit if getattr(r, "via", "") == "relay")
    latencies = [t for _, t, r in deposit if not isinstance(r, BaseException)]
    return {
        "benchmark": "district_relay",
        "villages": len(villages),
        "townships": len(relays),
        "records": accepted,
        "rounds_via_relay": via,
        "failed": len(failed),
        "failures": failed[:5],
        "deposit_rounds_seconds": round(deposit_s, 3),
        "deposit_round_p50_ms": common.ms(common.percentile(latencies, 50)),
        "hub_holds_all_seconds": None if held_s is None else round(held_s, 3),
        "receipts_back_seconds": None if back_s is None else round(back_s, 3),
        "hub_holds": on_hub,
        "village_link_bytes_up": up_bytes,
        "relays_cpu_seconds": relay_cpu,
    }


def beside_direct(records: int | None) -> dict[str, object]:
    """``bench district --relay``: the direct figures and the relayed ones, one after the other."""
    from bench import district

    direct = district.run(records)
    return {"benchmark": "district --relay", "direct": direct, "relay": run(records)}


__all__ = ["beside_direct", "run"]
