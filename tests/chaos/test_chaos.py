"""Chaos with real processes: the hub SIGKILLed and restarted at random, stations killed mid-sync.

Three villages under one township accept applications (one at a time and by back-entry files) and
push them with `sanji node sync` processes that run side by side, while the hub process is killed with
SIGKILL and restarted 6-10 times at seeded random moments, and some `node sync` processes are
SIGKILLed part way through. Then the network heals: the hub stays up and every station syncs until
nothing is pending. At that point every application a `sanji node accept` reported (exit 0) must be
at the hub exactly once, nothing else may be there, and every SQLite file must pass `PRAGMA
quick_check` although its process died unclean, again and again.

The schedule (what each station does, when the hub dies, how long it stays down, when a sync is
killed) comes from one seed, printed at the start; `SANJI_CHAOS_SEED=<seed>` replays it (thread and
process timing still varies). `SANJI_CHAOS_SECONDS` changes the length of the chaos phase (40 s).

All data is generated: ID numbers carry a correct GB 11643 check character but name nobody.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.applicants import catalogue_items, id_check_char, required_materials
from tests.e2e.conftest import DISTRICT, TOWNSHIP, Hub, HubServer, Node, init_online, quick_check, village_items
from tests.e2e.processes import CliResult, free_loopback_port, ok, run_sanji, start_sanji, stop_process

pytestmark = pytest.mark.slow

CHAOS_SECONDS = float(os.environ.get("SANJI_CHAOS_SECONDS", "40"))
VILLAGES = 3
HUB_CYCLES = (6, 10)  # SIGKILL/restart cycles of the hub during the chaos phase
HUB_DOWN = (0.1, 1.5)  # seconds the hub stays dead before its restart begins
SYNC_KILL_AFTER = (0.4, 3.0)  # seconds after its start a doomed `node sync` is SIGKILLed
MAX_SYNCS_PER_NODE = 2  # background `node sync` processes one station may have running at once
BULK_LINES = (5, 150)
HEAL_ROUNDS = 5
CLI_TIMEOUT = 120.0
CHINA = timezone(timedelta(hours=8))
SYNC_EXIT_OK = {0, 3, -9}  # synced; hub unreachable (work stays queued); killed by this test


def chaos_seed() -> int:
    raw = os.environ.get("SANJI_CHAOS_SEED", "").strip()
    return int(raw) if raw else secrets.randbelow(2**32)


# -- generated applicants ---------------------------------------------------------------------------------


class Applicants:
    """Synthetic applicants for one station: unique names, valid-looking ID numbers of nobody."""

    def __init__(self, rng: random.Random, tag: str) -> None:
        self.rng = rng
        self.tag = tag
        self.n = 0

    def name(self) -> str:
        self.n += 1
        return f"混沌{self.tag}-{self.n:05d}"

    def id_number(self) -> str:
        born = datetime(1940, 1, 1) + timedelta(days=self.rng.randrange(0, 365 * 64))
        first17 = f"{DISTRICT}{born:%Y%m%d}{self.rng.randrange(1000):03d}"
        return first17 + id_check_char(first17)

    def phone(self) -> str:
        return f"139{self.rng.randrange(10**8):08d}"

    def address(self) -> str:
        return f"测试镇混沌村{self.rng.randrange(1, 20)}组{self.rng.randrange(1, 99)}号"


# -- what happened --------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Everything the chaos phase observed, shared by the worker threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: dict[str, str] = field(default_factory=dict)  # applicant name -> station, for every exit-0 accept
    numbers: dict[str, str] = field(default_factory=dict)  # number a single accept reported -> applicant name
    uncertain: dict[str, str] = field(default_factory=dict)  # name -> why: an accept that did not exit 0
    sync_codes: Counter[int] = field(default_factory=Counter)
    sync_failures: list[str] = field(default_factory=list)  # syncs that exited outside SYNC_EXIT_OK
    accept_failures: list[str] = field(default_factory=list)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (which file, quick_check result) after kills
    hub_kills: int = 0
    hub_restarts: int = 0
    sync_kills_landed: int = 0  # the doomed sync was still running when SIGKILL arrived
    sync_kills_missed: int = 0  # it had already finished
    singles: int = 0
    bulks: int = 0

    def check_db(self, label: str, path: Path) -> None:
        try:
            result = quick_check(path)
        except Exception as exc:  # a file SQLite cannot even open is a failed check too
            result = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.checks.append((label, result))


@dataclass
class Station:
    node: Node
    index: int
    rng: random.Random
    people: Applicants
    syncs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.node.dir / "node.db"


# -- the station's actions ----------------------------------------------------------------------------


def accept_one(st: Station, ledger: Ledger) -> None:
    item = st.rng.choice(village_items())
    deferrable = {str(m["name"]) for m in _item(item)["materials"] if m.get("deferrable")}
    name = st.people.name()
    args: list[object] = [
        "node",
        "accept",
        st.node.dir,
        "--item",
        item,
        "--name",
        name,
        "--id-number",
        st.people.id_number(),
        "--phone",
        st.people.phone(),
        "--address",
        st.people.address(),
    ]
    for m in required_materials(item):
        args += ["--defer" if m in deferrable and st.rng.random() < 0.5 else "--material", m]
    res = run_sanji(*args, timeout=CLI_TIMEOUT)
    with ledger.lock:
        ledger.singles += 1
        if res.code == 0 and res.data is not None and res.data.get("number"):
            ledger.accepted[name] = st.node.code
            ledger.numbers[str(res.data["number"])] = name
        else:
            ledger.uncertain[name] = f"exit {res.code}"
            ledger.accept_failures.append(f"{st.node.code} accept exited {res.code}: {res.stderr.strip()[:300]}")


def accept_file(st: Station, ledger: Ledger, folder: Path) -> None:
    n = st.rng.randint(*BULK_LINES)
    now = datetime.now(CHINA)
    names: list[str] = []
    lines: list[str] = []
    items = village_items()
    for i in range(n):
        item = st.rng.choice(items)
        name = st.people.name()
        names.append(name)
        lines.append(
            json.dumps(
                {
                    "station": "ignored",
                    "item": item,
                    "applicant": {"name": name, "id_number": st.people.id_number(), "phone": st.people.phone()},
                    "address": st.people.address(),
                    "materials": [{"name": m, "status": "submitted"} for m in required_materials(item)],
                    "accepted_at": (now - timedelta(days=2, seconds=-i)).replace(microsecond=0).isoformat(),
                    "note": "",
                },
                ensure_ascii=False,
            )
        )
    path = folder / f"register-{st.node.code}-{st.people.n}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = run_sanji("node", "accept", st.node.dir, "--from", path, timeout=CLI_TIMEOUT)
    with ledger.lock:
        ledger.bulks += 1
        if res.code == 0 and res.data is not None:
            refused_lines = {int(r["line"]) for r in res.data.get("refused", [])}
            for lineno, name in enumerate(names, start=1):
                if lineno in refused_lines:
                    continue
                ledger.accepted[name] = st.node.code
            if refused_lines:
                ledger.accept_failures.append(f"{st.node.code} back-entry refused lines: {res.data['refused'][:3]}")
            if res.data.get("accepted") != n - len(refused_lines):
                ledger.accept_failures.append(
                    f"{st.node.code} back-entry says {res.data.get('accepted')} accepted "
                    f"of {n} lines with {len(refused_lines)} refused"
                )
        else:
            for name in names:
                ledger.uncertain[name] = f"back-entry exit {res.code}"
            ledger.accept_failures.append(f"{st.node.code} back-entry exited {res.code}: {res.stderr.strip()[:300]}")


def _item(code: str) -> dict[str, Any]:
    return catalogue_items()[code]


def reap(st: Station, ledger: Ledger) -> None:
    """Collect the exit codes of background syncs that have finished."""
    for proc in list(st.syncs):
        code = proc.poll()
        if code is None:
            continue
        st.syncs.remove(proc)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr is not None else ""
        stop_process(proc)
        with ledger.lock:
            ledger.sync_codes[code] += 1
            if code not in SYNC_EXIT_OK:
                ledger.sync_failures.append(f"{st.node.code} sync exited {code}: {err.strip()[-400:]}")


def start_sync(st: Station) -> subprocess.Popen[bytes] | None:
    if len(st.syncs) >= MAX_SYNCS_PER_NODE:
        return None
    proc = start_sanji("node", "sync", st.node.dir)
    st.syncs.append(proc)
    return proc


def sync_and_kill(st: Station, ledger: Ledger) -> None:
    proc = start_sync(st)
    if proc is None:
        return
    time.sleep(st.rng.uniform(*SYNC_KILL_AFTER))
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)
        with ledger.lock:
            ledger.sync_kills_landed += 1
        ledger.check_db(f"{st.node.code} node.db after a sync was SIGKILLed", st.db)
    else:
        with ledger.lock:
            ledger.sync_kills_missed += 1


def station_worker(st: Station, ledger: Ledger, deadline: float, folder: Path, errors: list[str]) -> None:
    try:
        while time.monotonic() < deadline:
            reap(st, ledger)
            action = st.rng.choices(("single", "bulk", "sync", "kill"), weights=(3, 2, 3, 2))[0]
            if action == "single":
                accept_one(st, ledger)
            elif action == "bulk":
                accept_file(st, ledger, folder)
            elif action == "sync":
                start_sync(st)
            else:
                sync_and_kill(st, ledger)
            time.sleep(st.rng.uniform(0.0, 0.3))
    except Exception as exc:  # surfaced by the test, with the seed
        errors.append(f"{st.node.code} worker crashed: {type(exc).__name__}: {exc}")


# -- the hub's deaths -----------------------------------------------------------------------------------


class HubLife:
    """The `sanji hub serve` process of the run: killed and restarted on the seeded schedule."""

    def __init__(self, hub: Hub, logs: Path) -> None:
        self.hub = hub
        self.logs = logs
        self.server: HubServer | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.server = HubServer(self.hub.dir, self.hub.port, self.logs / f"hub-serve-{self.starts}.log")
        self.server.start()

    def kill(self) -> None:
        if self.server is not None:
            self.server.kill()

    @property
    def up(self) -> bool:
        return self.server is not None and self.server.running

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def hub_killer(life: HubLife, ledger: Ledger, rng: random.Random, t0: float, errors: list[str]) -> None:
    try:
        cycles = rng.randint(*HUB_CYCLES)
        moments = sorted(rng.uniform(1.0, max(2.0, CHAOS_SECONDS - 4.0)) for _ in range(cycles))
        for at in moments:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            life.kill()
            with ledger.lock:
                ledger.hub_kills += 1
            ledger.check_db("hub.db after the hub was SIGKILLed", life.hub.db)
            time.sleep(rng.uniform(*HUB_DOWN))
            life.start()
            with ledger.lock:
                ledger.hub_restarts += 1
    except Exception as exc:
        errors.append(f"hub killer crashed: {type(exc).__name__}: {exc}")


# -- healing and checking ------------------------------------------------------------------------------


def heal(node: Node) -> list[CliResult]:
    """Sync until nothing is pending (the hub is up and stays up); return every round's result."""
    rounds = []
    for _ in range(HEAL_ROUNDS):
        res = run_sanji("node", "sync", node.dir, timeout=CLI_TIMEOUT)
        rounds.append(res)
        if res.code == 0 and res.data is not None and res.data.get("pending") == 0:
            break
    return rounds


def hub_rows(hub: Hub) -> list[dict[str, Any]]:
    return list(ok("hub", "applications", hub.dir, timeout=CLI_TIMEOUT)["applications"])


def test_chaos_hub_and_station_kills_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = chaos_seed()
    with capsys.disabled():
        print(f"\n[chaos] seed={seed} (replay: SANJI_CHAOS_SEED={seed}), chaos phase {CHAOS_SECONDS:.0f} s", flush=True)
    master = random.Random(seed)
    worker_seeds = [master.randrange(2**32) for _ in range(VILLAGES + 1)]

    hub = Hub(tmp_path / "hub", free_loopback_port())
    doc = ok("hub", "init", hub.dir, "--district", DISTRICT)
    assert doc["hub_id"] == DISTRICT
    hub.enroll(TOWNSHIP, tier="township", name="混沌镇便民服务中心")
    life = HubLife(hub, tmp_path)
    ledger = Ledger()
    errors: list[str] = []
    stations: list[Station] = []
    try:
        life.start()
        for i in range(VILLAGES):
            node = init_online(hub, tmp_path / f"node-{i + 1}", f"{TOWNSHIP}-{i + 1:02d}")
            rng = random.Random(worker_seeds[i])
            stations.append(Station(node, i + 1, rng, Applicants(rng, str(i + 1))))

        # -- chaos ---------------------------------------------------------------------------------
        t0 = time.monotonic()
        deadline = t0 + CHAOS_SECONDS
        threads = [
            threading.Thread(
                target=hub_killer, args=(life, ledger, random.Random(worker_seeds[-1]), t0, errors), name="hub-killer"
            )
        ]
        threads += [
            threading.Thread(target=station_worker, args=(st, ledger, deadline, tmp_path, errors), name=st.node.code)
            for st in stations
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=CHAOS_SECONDS + 6 * CLI_TIMEOUT)
        assert not any(t.is_alive() for t in threads), f"seed {seed}: a chaos thread hung"
        chaos_took = time.monotonic() - t0
        assert not errors, f"seed {seed}: {errors}"

        # -- heal ----------------------------------------------------------------------------------
        for st in stations:  # let the last background syncs finish on their own
            for proc in list(st.syncs):
                try:
                    proc.wait(timeout=CLI_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
            reap(st, ledger)
        if not life.up:
            life.start()
        heal_rounds = {st.node.code: heal(st.node) for st in stations}
        pending = {
            code: (r[-1].code, r[-1].data.get("pending") if r[-1].data else None, r[-1].stderr.strip()[-300:])
            for code, r in heal_rounds.items()
        }
        assert all(code == 0 and left == 0 for code, left, _ in pending.values()), (
            f"seed {seed}: stations still have work pending after {HEAL_ROUNDS} sync rounds with the hub up: {pending}"
        )

        # -- the set check -------------------------------------------------------------------------
        rows = hub_rows(hub)
        status = hub.status()
        node_numbers = {st.node.code: set(st.node.numbers()) for st in stations}
    finally:
        for st in stations:
            for proc in st.syncs:
                stop_process(proc)
        life.kill()  # the last stop is unclean too

    by_number = Counter(str(r["number"]) for r in rows)
    by_name = Counter(str(r["applicant_name"]) for r in rows)
    hub_names = {str(r["applicant_name"]): r for r in rows}
    expected = ledger.accepted
    lost = sorted(set(expected) - set(hub_names))
    lost_numbers = sorted(n for n in ledger.numbers if n not in by_number)
    unexpected = sorted(
        str(r["number"])
        for r in rows
        if str(r["applicant_name"]) not in expected and str(r["applicant_name"]) not in ledger.uncertain
    )
    duplicates = sorted(n for n, k in by_number.items() if k > 1) + sorted(n for n, k in by_name.items() if k > 1)
    wrong_number = sorted(
        n for n, name in ledger.numbers.items() if name in hub_names and str(hub_names[name]["number"]) != n
    )
    wrong_station = sorted(
        name for name, code in expected.items() if name in hub_names and hub_names[name]["station"] != code
    )
    station_mismatch = {
        code: (
            len(nums - {str(r["number"]) for r in rows if r["station"] == code}),
            len({str(r["number"]) for r in rows if r["station"] == code} - nums),
        )
        for code, nums in node_numbers.items()
    }
    uncertain_at_hub = sum(1 for name in ledger.uncertain if name in hub_names)

    checks = list(ledger.checks)
    checks.append(("hub.db after the final SIGKILL", quick_check(hub.db)))
    for st in stations:
        checks.append((f"{st.node.code} node.db at the end", quick_check(st.db)))
    bad_checks = [(what, result) for what, result in checks if result != "ok"]

    summary = (
        f"[chaos] seed={seed} chaos={chaos_took:.1f}s hub kills={ledger.hub_kills} restarts={ledger.hub_restarts} "
        f"sync kills landed={ledger.sync_kills_landed} missed={ledger.sync_kills_missed} "
        f"sync exits={dict(ledger.sync_codes)} accepts: single={ledger.singles} back-entry files={ledger.bulks}\n"
        f"[chaos] accepted={len(expected)} at hub={len(rows)} lost={len(lost) + len(lost_numbers)} "
        f"unexpected={len(unexpected)} duplicates={len(duplicates)} uncertain={len(ledger.uncertain)} "
        f"(of which at hub {uncertain_at_hub}) quick_checks={len(checks)} failed={len(bad_checks)}"
    )
    with capsys.disabled():
        print(summary, flush=True)

    assert ledger.hub_kills >= HUB_CYCLES[0], f"seed {seed}: only {ledger.hub_kills} hub kills happened"
    assert not bad_checks, f"seed {seed}: PRAGMA quick_check failed after an unclean stop: {bad_checks[:5]}"
    assert not lost and not lost_numbers, (
        f"seed {seed}: {len(lost) + len(lost_numbers)} accepted application(s) never reached the hub, "
        f"e.g. {lost[:3]} {lost_numbers[:3]}"
    )
    assert not unexpected, (
        f"seed {seed}: {len(unexpected)} application(s) at the hub no accept reported: {unexpected[:5]}"
    )
    assert not duplicates, f"seed {seed}: application(s) at the hub more than once: {duplicates[:5]}"
    assert not wrong_number and not wrong_station, f"seed {seed}: {wrong_number[:3]} {wrong_station[:3]}"
    assert all(v == (0, 0) for v in station_mismatch.values()), (
        f"seed {seed}: station and hub disagree (missing at hub, extra at hub) per station: {station_mismatch}"
    )
    assert not ledger.accept_failures, f"seed {seed}: accepts failed: {ledger.accept_failures[:5]}"
    assert not ledger.sync_failures, (
        f"seed {seed}: syncs exited outside {sorted(SYNC_EXIT_OK)}: {ledger.sync_failures[:5]}"
    )
    assert status["quarantined"] == 0, f"seed {seed}: changes were quarantined: {status}"
    forks = [a for a in status.get("alerts", []) if a.get("kind") == "fork"]
    assert not forks, f"seed {seed}: the hub raised fork alerts after the kills: {forks[:3]}"
    assert len(rows) == len(expected) + uncertain_at_hub
