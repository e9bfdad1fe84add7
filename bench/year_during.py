"""``/healthz`` while the hub works hard (issue 20): the nightly job, a backup, a station's sync.

Each piece of work runs as its own process against the serving hub's folder, as it does in
production: the nightly job as the server's scheduled worker would (``sanji hub reconcile`` at nice 10,
over its own connection), a backup as an operator takes one while the hub serves (``sanji hub
backup``), and a station's push and pull through the real client. Meanwhile this process asks
``/healthz`` every 20 ms and keeps every answer's latency; the figures are the probes' median, p99,
max and how many took over 100 ms, beside the work's own wall time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

import aiohttp

from bench import common

NICE = 10  # the nightly worker's own priority (hub/nightly.py NICE)
SYNC_APPLICATIONS = 1_000  # accepted at the station offline, then pushed while the probes run

_SYNC = (
    "import asyncio, sys; from pathlib import Path; from node import client; from node.station import Station;"
    " st = Station(Path(sys.argv[1])); print(asyncio.run(client.sync_round(st, sys.argv[2]))); st.close()"
)


async def _probe_while(url: str, argv: list[str]) -> dict[str, object]:
    """Run ``argv`` to its end while probing ``url``; the probes' figures and the command's."""
    probes: list[float] = []
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
    )
    waiting = asyncio.create_task(proc.communicate())
    async with aiohttp.ClientSession() as session:
        while not waiting.done():
            p0 = time.perf_counter()
            async with session.get(url + "/healthz") as r:
                await r.read()
            probes.append(time.perf_counter() - p0)
            await asyncio.sleep(0.02)
    out, err = await waiting
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        common.log(f"`{' '.join(argv[-4:])}` exited {proc.returncode}: {err.decode(errors='replace')[-600:]}")
    return {
        "seconds": round(wall, 2),
        "exit": proc.returncode,
        "probes": len(probes),
        "median_ms": common.ms(common.percentile(probes, 50)),
        "p99_ms": common.ms(common.percentile(probes, 99)),
        "max_ms": common.ms(max(probes) if probes else None),
        "over_100ms": sum(1 for p in probes if p > 0.1),
        "stdout": out.decode(errors="replace"),
    }


def _nightly_parts(stdout: str) -> dict[str, object]:
    """What the run's JSON report says it did (its re-fold and facts), without the report's lists."""
    try:
        report = json.loads(stdout)["report"]
    except (ValueError, KeyError):
        return {}
    return {k: report.get(k) for k in ("refold", "facts", "merkle_leaves", "backup_kind", "backup_bytes")}


def during(url: str, hub_dir: Path, st_dir: Path, work: Path) -> dict[str, object]:
    """The probes' figures during two nightly runs (the first after a build or an upgrade does more),
    a backup, and a station's sync of SYNC_APPLICATIONS new applications."""
    from node import commands
    from node.station import Station

    sanji = common.sanji_command()
    out: dict[str, object] = {}
    for label in ("nightly, first run", "nightly, next run"):
        common.log(f"healthz during the {label}")
        argv = ["nice", "-n", str(NICE), *sanji, "hub", "reconcile", str(hub_dir), "--json"]
        got = asyncio.run(_probe_while(url, argv))
        got["parts"] = _nightly_parts(str(got.pop("stdout")))
        out[label] = got
    common.log("healthz during a backup")
    copy = work / "during-backup.db"
    got = asyncio.run(_probe_while(url, [*sanji, "hub", "backup", str(hub_dir), "--out", str(copy), "--json"]))
    got.pop("stdout")
    got["backup_mb"] = round(copy.stat().st_size / 1e6, 1) if copy.exists() else None
    out["backup"] = got
    copy.unlink(missing_ok=True)
    for extra in work.glob("during-backup.db*"):  # the photos folder beside it, if any
        if extra.is_dir():
            shutil.rmtree(extra, ignore_errors=True)
    common.log(f"healthz during a station's sync of {SYNC_APPLICATIONS} new applications")
    st = Station(st_dir)
    accepted = commands.accept_lines(st, common.workload_lines(SYNC_APPLICATIONS))
    st.close()
    got = asyncio.run(_probe_while(url, [sys.executable, "-c", _SYNC, str(st_dir), url]))
    got["accepted"] = accepted["accepted"]
    got.pop("stdout")
    out["sync"] = got
    return out
