"""The fifty stations of ``test_chaos_postgres.py``: what they accept, how they sync, what the test
keeps of it. They run the node's own code in the test's threads (as `bench/district.py` does): a
`sanji` process per action costs an interpreter start, which on two busy cores left a minute of chaos
with a few dozen actions. Each station's database is opened in the thread that drives it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from node import client, commands, enrolment
from node.station import Station as NodeStation
from replica.errors import Unreachable
from tests.applicants import People, required_materials
from tests.e2e.conftest import Hub

KILLS = 4  # worker SIGKILLs; the parent gives up at 5 deaths a minute, which would be a failure here
ITEMS = ("360802-0001", "360802-0009")  # handled at the village or the township: every one reaches the township
BULK_LINES = (2, 12)
HEAL_ROUNDS = 5
SYNC_OK = {"ok", "unreachable"}  # synced; hub unreachable this round (nothing lost, the batch stays queued)
CHINA = timezone(timedelta(hours=8))


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: dict[str, str] = field(default_factory=dict)  # applicant name -> station, every exit-0 accept
    uncertain: set[str] = field(default_factory=set)  # names of accepts that did not exit 0
    accept_failures: list[str] = field(default_factory=list)
    sync_codes: Counter[str] = field(default_factory=Counter)
    sync_failures: list[str] = field(default_factory=list)
    in_flight: int = 0  # syncs running right now that started with work pending
    kills: int = 0
    kills_in_flight: list[int] = field(default_factory=list)  # pushing syncs running at each kill
    decisions: int = 0
    errors: list[str] = field(default_factory=list)


class StationPeople(People):
    """`People` whose names also carry the station's number: fifty stations' counters start at 1
    alike, and the checks below know an application by its applicant's name."""

    def __init__(self, seed: int, station: int) -> None:
        super().__init__(seed)
        self.station = station

    def name(self) -> str:
        return f"{super().name()}-{self.station:02d}"


@dataclass
class Station:
    dir: Path
    code: str
    people: People
    url: str
    pending: bool = False  # accepted something since its last clean sync


def lines_for(st: Station, rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    """`n` back-entry lines (the shape of `sanji node accept --from FILE`) and their applicants' names."""
    now = datetime.now(CHINA)
    names, lines = [], []
    for i in range(n):
        item = rng.choice(ITEMS)
        name = st.people.name()
        names.append(name)
        applicant = {"name": name, "id_number": st.people.id_number(), "phone": st.people.phone()}
        lines.append(
            json.dumps(
                {
                    "station": st.code,
                    "item": item,
                    "applicant": applicant,
                    "address": st.people.address(),
                    "materials": [{"name": m, "status": "submitted"} for m in required_materials(item)],
                    "accepted_at": (now - timedelta(hours=1, seconds=-i)).replace(microsecond=0).isoformat(),
                    "note": "",
                },
                ensure_ascii=False,
            )
        )
    return names, lines


def accept(st: Station, db: NodeStation, ledger: Ledger, rng: random.Random, n: int) -> None:
    names, lines = lines_for(st, rng, n)
    try:
        out = commands.accept_lines(db, lines)
    except Exception as exc:
        with ledger.lock:
            ledger.uncertain.update(names)
            ledger.accept_failures.append(f"{st.code} accept failed: {type(exc).__name__}: {exc}")
        return
    with ledger.lock:
        if not out["refused"] and out["accepted"] == n:
            ledger.accepted.update(dict.fromkeys(names, st.code))
            st.pending = True
        else:
            ledger.uncertain.update(names)
            ledger.accept_failures.append(f"{st.code} accepted {out['accepted']} of {n}: {out['refused']}")


def sync(st: Station, db: NodeStation, ledger: Ledger) -> str:
    """One sync round: 'ok', 'unreachable' (the round's work stays queued), or why it failed."""
    with ledger.lock:
        pushing = st.pending
        ledger.in_flight += pushing
    try:
        result = asyncio.run(client.sync_round(db, st.url))
    except Unreachable:
        outcome = "unreachable"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    else:
        outcome = "ok" if not result.refused and not result.feed_problems else f"refused: {result.refused}"
        if outcome == "ok" and result.pending == 0:
            st.pending = False
    finally:
        with ledger.lock:
            ledger.in_flight -= pushing
    with ledger.lock:
        ledger.sync_codes[outcome if outcome in SYNC_OK else "failed"] += 1
        if outcome not in SYNC_OK:
            ledger.sync_failures.append(f"{st.code} sync: {outcome[:400]}")
    return outcome


def driver(share: list[Station], ledger: Ledger, seed: int, deadline: float) -> None:
    """Drives its stations until the chaos phase is over and every kill has happened (a hard cap)."""
    rng = random.Random(seed)
    dbs = {st.code: NodeStation(st.dir) for st in share}
    try:
        while time.monotonic() < deadline or (ledger.kills < KILLS and time.monotonic() < deadline + 180):
            st = rng.choice(share)
            action = rng.choices(("single", "file", "sync"), weights=(2, 2, 5))[0]
            if action == "single":
                accept(st, dbs[st.code], ledger, rng, 1)
            elif action == "file":
                accept(st, dbs[st.code], ledger, rng, rng.randint(*BULK_LINES))
            else:
                sync(st, dbs[st.code], ledger)
    except Exception as exc:  # surfaced by the test with the seed
        ledger.errors.append(f"driver crashed: {type(exc).__name__}: {exc}")
    finally:
        for db in dbs.values():
            db.close()


def heal(st: Station) -> str:
    """Sync (the node's own round) until nothing is pending, the hub up; 'clean' or the last outcome."""
    db = NodeStation(st.dir)
    try:
        outcome = "no round"
        for _ in range(HEAL_ROUNDS):
            try:
                result = asyncio.run(client.sync_round(db, st.url))
            except Exception as exc:
                outcome = f"{type(exc).__name__}: {exc}"
                continue
            outcome = f"pending {result.pending}, refused {result.refused}, feed {result.feed_problems}"
            if result.pending == 0 and not result.refused and not result.feed_problems:
                return "clean"
        return outcome
    finally:
        db.close()


def held(st: Station) -> dict[str, str]:
    """The station's copy: application number -> status."""
    conn = sqlite3.connect(f"file:{st.dir / 'node.db'}?mode=ro", uri=True, timeout=30)
    try:
        return {str(n): str(s) for n, s in conn.execute("SELECT number, status FROM applications")}
    finally:
        conn.close()


def enrol(hub: Hub, folder: Path, code: str, tier: str, parent: str, people: People) -> Station:
    """Registered at the hub by `sanji hub enroll`, enrolled over HTTP by the node's own code."""
    token = hub.enroll(code, tier=tier, parent=parent)
    enrolment.init_online(folder, hub.url, token)
    return Station(folder, code, people, hub.url)
