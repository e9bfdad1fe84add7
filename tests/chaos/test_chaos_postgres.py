"""Chaos on PostgreSQL with several hub processes: workers SIGKILLed mid-push, fifty stations syncing.

A hub whose store is a PostgreSQL database (the throwaway cluster of ``tests/pg_fixtures.py``) is
served by `sanji hub serve HUB --workers 2` (real processes). One township and 49 villages under it
(registered by `sanji hub enroll`, each a real station folder) accept applications offline (one at a
time and by back-entry lines, ``node.commands.accept_lines``) and run sync rounds again and again
(``node.client.sync_round``, what `sanji node sync` runs), driven by six threads that each own a
share of the stations, so one station never syncs twice at once, as at a real window. Meanwhile the
hub decides (`sanji hub transition`, another process writing the same database), and a killer SIGKILLs
one serving worker at a time, four times, each while pushing syncs are in flight; the parent starts a
new worker each time (five deaths a minute would make it give up, which would fail here).

Then the hub stays up and every village syncs until nothing is pending, and the township last with
`sanji node sync`. At that point:

* every application accepted at a station is at the hub exactly once, under that station, and
  nothing else is;
* every feed is whole: each village's copy equals what the hub holds for it, the township holds every
  application the hub holds (both items used are handled at the village or the township), and every
  copy has the hub's status (the hub's decisions reached it);
* no sync round ended other than synced or "hub unreachable" (the work stays queued and is sent at
  the next round), no accept failed, and no change was quarantined or raised a fork alert.

`SANJI_CHAOS_SEED=<seed>` replays the schedule (process timing still varies); `SANJI_CHAOS_SECONDS`
sets the length of the chaos phase (60 s). All data is generated and names nobody.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.pg_stations import (
    HEAL_ROUNDS,
    ITEMS,
    KILLS,
    SYNC_OK,
    Ledger,
    StationPeople,
    driver,
    enrol,
    heal,
    held,
)
from tests.e2e.conftest import DISTRICT, TOWNSHIP, Hub
from tests.e2e.processes import (
    CLI_TIMEOUT,
    START_TIMEOUT,
    free_loopback_port,
    healthz,
    ok,
    run_sanji,
    start_sanji,
    stop_process,
)

pytestmark = pytest.mark.slow

CHAOS_SECONDS = float(os.environ.get("SANJI_CHAOS_SECONDS", "60"))
VILLAGES = 49  # and one township: fifty stations
DRIVERS = 6  # threads driving the stations (two cores: more only queue)


def chaos_seed() -> int:
    raw = os.environ.get("SANJI_CHAOS_SEED", "").strip()
    return int(raw) if raw else secrets.randbelow(2**32)


# -- the hub ----------------------------------------------------------------------------------------


def workers_of(parent: int) -> set[int]:
    try:
        found = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return set()
    return {int(p) for p in found if b"hub.serve_worker" in _cmdline(int(p))}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def killer(parent: subprocess.Popen[bytes], ledger: Ledger, seed: int, deadline: float) -> None:
    """SIGKILL one worker KILLS times, each while pushing syncs run; wait for the parent's restart."""
    rng = random.Random(seed)
    try:
        gap = (deadline - time.monotonic() - 5.0) / KILLS
        for k in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.0) * gap)
            while ledger.in_flight == 0 and time.monotonic() < deadline + 150:
                time.sleep(0.02)
            workers = workers_of(parent.pid)
            if not workers:
                ledger.errors.append(f"kill {k + 1}: the parent has no worker to kill")
                return
            with ledger.lock:
                in_flight = ledger.in_flight
            os.kill(rng.choice(sorted(workers)), signal.SIGKILL)
            with ledger.lock:
                ledger.kills += 1
                ledger.kills_in_flight.append(in_flight)
            restart_by = time.monotonic() + START_TIMEOUT * 2
            while len(workers_of(parent.pid)) < 2 and time.monotonic() < restart_by:
                time.sleep(0.1)
    except Exception as exc:
        ledger.errors.append(f"killer crashed: {type(exc).__name__}: {exc}")


def decider(hub: Hub, ledger: Ledger, seed: int, deadline: float) -> None:
    """The district decides while stations sync: completes applications already at the hub."""
    rng = random.Random(seed)
    try:
        while time.monotonic() < deadline - 3:
            time.sleep(rng.uniform(1.0, 3.0))
            rows = [r for r in hub_rows(hub) if r["status"] == "accepted" and r["item"] == ITEMS[0]]
            for row in rng.sample(rows, min(3, len(rows))):
                res = run_sanji("hub", "transition", hub.dir, row["number"], "--to", "completed")
                with ledger.lock:
                    if res.code == 0:
                        ledger.decisions += 1
                    else:
                        ledger.errors.append(f"hub transition exited {res.code}: {res.stderr.strip()[-300:]}")
    except Exception as exc:
        ledger.errors.append(f"decider crashed: {type(exc).__name__}: {exc}")


def hub_rows(hub: Hub) -> list[dict[str, Any]]:
    return list(ok("hub", "applications", hub.dir)["applications"])


def test_worker_kills_on_postgresql_lose_nothing_duplicate_nothing_and_leave_feeds_whole(
    tmp_path: Path, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = chaos_seed()
    with capsys.disabled():
        print(f"\n[chaos-pg] seed={seed} (replay: SANJI_CHAOS_SEED={seed}), chaos {CHAOS_SECONDS:.0f} s", flush=True)
    master = random.Random(seed)
    hub_dir = tmp_path / "hub"
    assert ok("hub", "init", hub_dir, "--district", DISTRICT, "--database", pg_dsn)["hub_id"] == DISTRICT
    hub = Hub(hub_dir, free_loopback_port())
    hub.enroll(TOWNSHIP, tier="township", name="混沌镇便民服务中心")
    log = tmp_path / "serve.log"
    parent = start_sanji("hub", "serve", hub_dir, "--port", hub.port, "--workers", 2, log=log)
    ledger = Ledger()
    try:
        up_by = time.monotonic() + START_TIMEOUT * 3
        while not (len(workers_of(parent.pid)) == 2 and healthz(hub.url)) and time.monotonic() < up_by:
            time.sleep(0.1)
        assert parent.poll() is None and len(workers_of(parent.pid)) == 2, log.read_text("utf-8", "replace")

        people = [StationPeople(master.randrange(2**32), i) for i in range(VILLAGES + 1)]
        with ThreadPoolExecutor(DRIVERS) as pool:
            township = pool.submit(enrol, hub, tmp_path / "township", TOWNSHIP, "township", "", people[0])
            villages = [
                pool.submit(enrol, hub, tmp_path / f"v{n:02d}", f"{TOWNSHIP}-{n:02d}", "village", TOWNSHIP, people[n])
                for n in range(1, VILLAGES + 1)
            ]
            stations = [township.result(), *(f.result() for f in villages)]

        # -- chaos ----------------------------------------------------------------------------------
        t0 = time.monotonic()
        deadline = t0 + CHAOS_SECONDS
        shares = [stations[i::DRIVERS] for i in range(DRIVERS)]
        threads = [
            threading.Thread(target=driver, args=(share, ledger, master.randrange(2**32), deadline)) for share in shares
        ]
        threads.append(threading.Thread(target=killer, args=(parent, ledger, master.randrange(2**32), deadline)))
        threads.append(threading.Thread(target=decider, args=(hub, ledger, master.randrange(2**32), deadline)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=CHAOS_SECONDS + 10 * CLI_TIMEOUT)
        assert not any(t.is_alive() for t in threads), f"seed {seed}: a chaos thread hung"
        chaos_took = time.monotonic() - t0
        assert not ledger.errors, f"seed {seed}: {ledger.errors}"
        assert parent.poll() is None, f"seed {seed}: the parent gave up:\n{log.read_text('utf-8', 'replace')[-3000:]}"

        # -- heal: villages push their last work and pull the last decisions; then the township ------
        with ThreadPoolExecutor(DRIVERS) as pool:
            healed = {st.code: out for st, out in zip(stations[1:], pool.map(heal, stations[1:]), strict=True)}
        # The township last, by the real command: its feed must now hold every village's work.
        last = run_sanji("node", "sync", stations[0].dir, timeout=CLI_TIMEOUT)
        healed[TOWNSHIP] = "clean" if last.code == 0 and last.data["pending"] == 0 else f"{last}"[:400]
        stuck = {code: out for code, out in healed.items() if out != "clean"}
        assert not stuck, f"seed {seed}: stations not clean after {HEAL_ROUNDS} syncs with the hub up: {stuck}"

        rows = hub_rows(hub)
        status = ok("hub", "status", hub_dir)
        copies = {st.code: held(st) for st in stations}
    finally:
        stop_process(parent, grace=30)

    by_name = Counter(str(r["applicant_name"]) for r in rows)
    by_number = Counter(str(r["number"]) for r in rows)
    hub_status = {str(r["number"]): r["status"] for r in rows}
    lost = sorted(set(ledger.accepted) - set(by_name))
    unexpected = sorted(n for n in by_name if n not in ledger.accepted and n not in ledger.uncertain)
    duplicates = sorted(n for n, k in (by_name + by_number).items() if k > 1)
    wrong_station = sorted(n for n, code in ledger.accepted.items() if n in by_name and _station(rows, n) != code)
    missing_at_township = sorted(set(hub_status) - set(copies[TOWNSHIP]))
    stale = sorted(
        f"{code}:{number}"
        for code, apps in copies.items()
        for number, status in apps.items()
        if hub_status.get(number) != status
    )
    village_gaps = sorted(
        code
        for code, apps in copies.items()
        if code != TOWNSHIP and set(apps) != {str(r["number"]) for r in rows if r["station"] == code}
    )

    summary = (
        f"[chaos-pg] seed={seed} chaos={chaos_took:.1f}s stations={len(stations)} kills={ledger.kills} "
        f"(pushing syncs in flight at each: {ledger.kills_in_flight}) decisions={ledger.decisions} "
        f"sync exits={dict(ledger.sync_codes)}\n"
        f"[chaos-pg] accepted={len(ledger.accepted)} at hub={len(rows)} lost={len(lost)} unexpected={len(unexpected)} "
        f"duplicates={len(duplicates)} uncertain={len(ledger.uncertain)} township missing={len(missing_at_township)} "
        f"stale copies={len(stale)}"
    )
    with capsys.disabled():
        print(summary, flush=True)

    assert ledger.kills >= 3 and all(n > 0 for n in ledger.kills_in_flight), f"seed {seed}: {summary}"
    assert not lost, f"seed {seed}: {len(lost)} accepted application(s) never reached the hub: {lost[:5]}"
    assert not unexpected, f"seed {seed}: application(s) at the hub no accept reported: {unexpected[:5]}"
    assert not duplicates, f"seed {seed}: at the hub more than once: {duplicates[:5]}"
    assert not wrong_station, f"seed {seed}: at the hub under the wrong station: {wrong_station[:5]}"
    assert not village_gaps, f"seed {seed}: villages whose copy differs from the hub's: {village_gaps[:5]}"
    assert not missing_at_township, f"seed {seed}: the township's feed lacks {missing_at_township[:5]}"
    assert not stale, f"seed {seed}: copies without the hub's decision: {stale[:5]}"
    assert not ledger.accept_failures, f"seed {seed}: accepts failed: {ledger.accept_failures[:5]}"
    assert not ledger.sync_failures, (
        f"seed {seed}: syncs ended other than {sorted(SYNC_OK)}: {ledger.sync_failures[:5]}"
    )
    assert status["quarantined"] == 0, f"seed {seed}: changes were quarantined: {status}"
    forks = [a for a in status.get("alerts", []) if a.get("kind") == "fork"]
    assert not forks, f"seed {seed}: fork alerts after the kills: {forks[:3]}"
    assert len(rows) == len(ledger.accepted) + sum(1 for n in ledger.uncertain if n in by_name)


def _station(rows: list[dict[str, Any]], name: str) -> str:
    return next(str(r["station"]) for r in rows if str(r["applicant_name"]) == name)
