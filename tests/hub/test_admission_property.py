"""Both directions of the admission question (issue 12), over random sequences of honest commands.

One district (a hub, township T1, its villages T1-V1 and T1-V2, field devices F1 and F2) lives for the
whole module; every example adds a few random commands to it: acceptances at any station, workflow
moves by any station or the hub, inspections assigned by the hub or the township, reports by the
field devices. Each command is the real one (``node.commands``, ``node.assignment``,
``node.inspection``, ``hub.operations``, ``hub.inspection``).

- Honest direction: whatever a command writes is pushed at once, as its own batch, and every change
  must be admitted (no false quarantine). A command may refuse for its own domain reasons; it must
  never be refused by the station's own admission check, which would mean the two disagree.
- Forged direction: before that push, the first change the command wrote is mutated in one guarded
  place (status, item, number, station, task, report, catalogue version, applicant identity), or
  handed to a station that could not have written it, and asked of the hub's gate, which must refuse
  it. The oracle for statuses is the workflow table itself (``sync/workflow.py``).

All applicants are generated (``tests.conftest.People``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import inspection as hub_inspection
from hub import operations
from hub import supplement as hub_supplement
from hub.admission import Gate
from hub.feed import Lookup
from node import assignment, commands
from node import inspection as node_inspection
from node import supplement as node_supplement
from node.station import Station
from protocol.codec import unpack
from replica.errors import NotApplied, Refused
from sync.change import Change
from sync.model import Actor, RecordContext, roles_of
from sync.workflow import STAGE, TRANSITIONS, Status, allowed_moves, is_allowed, may_move
from tests.conftest import FakeClock, World
from tests.pg_cluster import Cluster

EXAMPLES = int(os.environ.get("SANJI_ADMISSION_EXAMPLES", "2000"))
VILLAGES = ("T1-V1", "T1-V2")
STATIONS = ("T1", *VILLAGES)
DEVICES = ("F1", "F2")
# Items the villages and the township accept: decided by the township or the district, immediate or
# promised, with and without inspection, with deferrable (容缺) materials.
ITEMS = ("360802-0001", "360802-0004", "360802-0006", "360802-0009", "360802-0010", "360802-0012", "360802-0007")
ADMISSION_REFUSAL = "本站不能写入这一变更"


@dataclasses.dataclass
class District:
    world: World
    numbers: list[str] = dataclasses.field(default_factory=list)
    admitted: int = 0
    refused_forgeries: int = 0
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def st(self, code: str) -> Station:
        return self.world.get(code)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def district(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    """One district for the module, its hub on SQLite or in a database of the throwaway PostgreSQL
    cluster (as ``hub_backend`` does for function-scoped worlds)."""
    root: Path = tmp_path_factory.mktemp("admission-district")
    cluster: Cluster | None = request.getfixturevalue("pg_cluster") if request.param == "postgres" else None
    name = f"admission{os.getpid()}"
    world = World(root, FakeClock(), database=cluster.create_database(name) if cluster else None)
    world.station("T1", "township")
    for code in VILLAGES:
        world.station(code, "village", "T1")
    for code in DEVICES:
        world.station(code, "field")
    # One fsync per statement would make two thousand examples take minutes; durability is not what
    # this test is about.
    for conn in [*([] if cluster else [world.hub.store.conn]), *(s.conn for s in world.stations)]:
        conn.execute("PRAGMA synchronous=OFF")
    if cluster:
        world.hub.store.conn.execute("SET synchronous_commit = off")
    d = District(world)
    yield d
    print(
        f"\nadmission property: {d.admitted} honest changes admitted, {d.refused_forgeries} forgeries refused;"
        f" commands: {dict(sorted(d.outcomes.items()))}"
    )
    world.close()
    if cluster:
        cluster.drop_database(name)


def _new_changes(st: Station, after_seq: int) -> list[Change]:
    rows = st.conn.execute(
        "SELECT origin, epoch, seq, hlc, entity, rid, fields, base FROM changes WHERE origin=? AND seq>? ORDER BY seq",
        (st.code, after_seq),
    ).fetchall()
    out = []
    for o, e, s, h, ent, rid, f, b in rows:
        fields, base = unpack(f), unpack(b)
        assert isinstance(fields, dict) and isinstance(base, dict)
        out.append(Change(o, e, s, h, ent, rid, fields, base))
    return out


def _legal_targets(seen: str, roles: frozenset[str], immediate: bool) -> set[str]:
    return {
        to.value
        for (frm, move), to in TRANSITIONS.items()
        if frm.value == seen
        and is_allowed(frm, move, immediate=immediate)
        and any(may_move(r, move, immediate=immediate) for r in roles & {"station", "decider", "hub"})
    }


def _mutations(d: District, change: Change) -> list[tuple[str, Change, Actor]]:
    """Forged variants of an honest change, each with the actor that would send it."""
    hub = d.world.hub
    tier = hub.tiers().get(change.origin, "field")
    actor = Actor(change.origin, tier)
    f = dict(change.fields)
    out: list[tuple[str, Change, Actor]] = []

    def variant(what: str, **fields: object) -> None:
        out.append((what, dataclasses.replace(change, fields={**f, **fields}), actor))

    # A village with no part in the record: neither the author nor the application's station.
    app_id = (
        change.id
        if change.entity == "application"
        else str(f.get("application") or hub.records.values(change.entity, change.id).get("application", ""))
    )
    owner = str(hub.records.values("application", app_id).get("station") or f.get("station", ""))
    other = next(c for c in VILLAGES if c not in (change.origin, owner))
    stranger = dataclasses.replace(change, origin=other)
    out.append(("handed to " + other, stranger, Actor(other, hub.tiers()[other])))
    if change.entity == "application" and "number" in f:  # a new application
        neighbour = next(v for v in VILLAGES if v != change.origin)
        variant("number in a neighbour's namespace", number=str(f["number"]).replace(change.origin, neighbour, 1))
        variant("item in no catalogue", item="360802-9999")
        variant("catalogue version never published", catalogue_version=99)
        variant("station of another", station=other)
        variant("ID number", applicant_id="123")
        variant("phone", applicant_phone="abc")
        variant("created already completed", status="completed")
        if change.origin in VILLAGES:
            variant("district-only item", item="360802-0042")
        if hub.catalogue()[1].items[str(f["item"])].inspection_required:  # 需现场踏勘: the site is required
            variant("no address for an item needing inspection", address=" ")
    elif change.entity == "application" and "status" in f:
        record = hub.records.load("application", change.id)
        seen = str(record["status"][2])
        immediate = record["kind"][2] == "immediate"
        vals = {k: c[2] for k, c in record.items()}
        station = hub.store.station(str(vals["station"]))
        ctx = RecordContext(
            str(vals["station"]), station.parent if station else None, hub.decided_at(str(vals["item"]))
        )
        legal = _legal_targets(seen, roles_of(actor, ctx), immediate)
        for target in sorted({s.value for s in Status} - legal - {seen}):
            variant(f"move {seen} → {target}", status=target)
        lie = _older_base(d, change, record)
        if lie is not None:
            out.append(
                (
                    "base claims a status from before a decision it had received",
                    dataclasses.replace(change, base={**change.base, "status": lie}),
                    actor,
                )
            )
    elif change.entity == "application" and any(k.startswith("m.") for k in f):  # 补交材料
        received = next(v for k, v in f.items() if k.startswith("m."))
        assert isinstance(received, list)
        variant("supplement of a material never deferred", **{"m.结婚证": ["supplemented", received[1]]})
        variant("received before acceptance", **{k: ["supplemented", "2000-01-01"] for k in f})
        variant("received years from now", **{k: ["supplemented", "2099-01-01"] for k in f})
        variant("written back to deferred", **{k: ["deferred", "2099-01-01"] for k in f})
    elif change.entity == "task" and "inspector" in f:
        variant("task for a station that is no field device", inspector="T1-V1")
        variant("task naming another application's number", number="T1-V1-20260101-99999")
    elif change.entity == "report":
        other_device = next(x for x in DEVICES if x != change.origin)
        out.append(
            ("report by another device", dataclasses.replace(change, origin=other_device), Actor(other_device, "field"))
        )
        variant("report for another task", task="not-" + change.id)
        variant("report result outside the list", result="excellent")
    return out


def _older_base(d: District, change: Change, record: dict[str, tuple[int, str, object, int]]) -> int | None:
    """An earlier status version to claim as base, when the current one (which wins over it) reached the
    author through its feed: then the claim is a lie the hub can see."""
    hub = d.world.hub
    hlc, origin, value, _ = record["status"]
    if origin == change.origin or change.base.get("status") != hlc:
        return None
    row = hub.store.conn.execute(
        "SELECT rowid FROM changes WHERE entity='application' AND rid=? AND hlc=? AND origin=?",
        (change.id, hlc, origin),
    ).fetchone()
    if row is None or not hub.store.delivered(change.origin, int(row[0])):
        return None
    for old_hlc, old_status in hub.store.conn.execute(
        "SELECT hlc, fields FROM changes WHERE entity='application' AND rid=? AND hlc<? ORDER BY hlc", (change.id, hlc)
    ):
        status = unpack(old_status).get("status")  # type: ignore[union-attr]
        if isinstance(status, str) and STAGE[Status(status)] < STAGE[Status(str(value))]:
            return int(old_hlc)
    return None


def _push_and_check(d: District, station: Station, before: int, rng: random.Random) -> None:
    written = _new_changes(station, before)
    if not written:
        return
    mutations = _mutations(d, written[0])
    if mutations:
        # The batch header's horizon is noted before any of its changes is judged (hub/ingest.py).
        seen = station.meta.get("horizon", [])
        if isinstance(seen, list) and len(seen) == 3:
            d.world.hub.store.note_horizon(station.code, int(seen[0]), int(seen[1]), int(seen[2]))
        lies = [m for m in mutations if m[0].startswith("base claims")]
        what, forged, actor = rng.choice(lies) if lies and rng.random() < 0.35 else rng.choice(mutations)
        verdict = Gate(d.world.hub, Lookup(d.world.hub)).ask(forged, actor)
        assert not verdict.admitted, f"forgery admitted: {what}: {forged}"
        if what.startswith("base claims"):
            assert verdict.code == "seen_newer", verdict
            d.outcomes["forged base refused"] += 1
        assert verdict.code and verdict.reason
        d.refused_forgeries += 1
    for ack in d.world.push(station):
        assert ack.quarantined == 0, (ack, [c.fields for c in written])
    d.admitted += len(written)
    for code in (*STATIONS, *DEVICES):
        d.world.pull(d.st(code))


def _run(d: District, rng: random.Random) -> None:
    world = d.world
    op = rng.choice(["accept", "accept", "move", "move", "hub move", "inspect", "report", "supplement"])
    if op == "accept" or not d.numbers:
        code = rng.choice(STATIONS)
        station = d.st(code)
        item = rng.choice(ITEMS)
        cat_item = station.catalogue().catalogue.items[item]
        deferrable = [m.name for m in cat_item.materials if m.deferrable]
        deferred = deferrable[:1] if deferrable and rng.random() < 0.5 else []
        before = station.meta.int("seq")
        try:
            made = world.accept(station, item, deferred=deferred)
        except Refused as exc:
            assert ADMISSION_REFUSAL not in str(exc), exc
            return
        d.numbers.append(str(made["number"]))
        d.outcomes["accept"] += 1
        _push_and_check(d, station, before, rng)
        return
    number = rng.choice(d.numbers[-30:])
    if op == "supplement":
        _supplement(d, number, rng)
        return
    # Mostly a move the workflow offers from where the hub stands (so files get decided, inspected and
    # delivered), sometimes any status at all (which the command must refuse for its own reasons).
    vals = world.hub.records.values("application", operations.find_application(world.hub, number))
    offered = [
        TRANSITIONS[(Status(str(vals["status"])), m)].value
        for m in allowed_moves(Status(str(vals["status"])), immediate=vals.get("kind") == "immediate")
    ]
    offered = [t for t in offered if t != Status.INSPECTING.value]
    onward = [t for t in offered if t not in (Status.NOT_ACCEPTED.value, Status.WITHDRAWN.value)]
    if onward and rng.random() < 0.7:
        target = rng.choice(onward)
    elif offered and rng.random() < 0.8:
        target = rng.choice(offered)
    else:
        target = rng.choice([s.value for s in Status if s is not Status.INSPECTING])
    if op == "hub move":
        try:
            operations.transition(world.hub, number, target)
            d.outcomes[f"hub move to {target}"] += 1
        except Refused as exc:
            assert ADMISSION_REFUSAL not in str(exc), exc
            d.outcomes["hub move refused"] += 1
        except NotApplied as exc:  # the hub's own command reported success it did not have
            raise AssertionError(exc) from exc
        for code in STATIONS:
            world.pull(d.st(code))
        return
    if op == "move":
        # The application's own station or the township (which decides township items), mostly; now
        # and then any station, whose command must then refuse.
        code = rng.choice([str(vals["station"]), "T1"]) if rng.random() < 0.85 else rng.choice(STATIONS)
        _station_command(
            d, d.st(code), f"station move to {target}", rng, lambda st: commands.transition(st, number, target)
        )
        return
    if op == "inspect":
        _, cat = world.hub.catalogue()
        under_review = [
            n
            for n, item in world.hub.store.conn.execute(
                "SELECT number, item FROM applications WHERE status='under_review'"
            )
            if cat.items[item].inspection_required
        ]
        number = rng.choice(under_review) if under_review and rng.random() < 0.9 else number
        device = rng.choice(DEVICES)
        if rng.random() < 0.5:
            _station_command(d, d.st("T1"), "township inspect", rng, lambda st: assignment.assign(st, number, device))
        else:
            try:
                hub_inspection.assign(world.hub, number, device)
                d.outcomes["hub inspect"] += 1
            except Refused:
                d.outcomes["hub inspect refused"] += 1
                return
            for code in (*STATIONS, *DEVICES):
                world.pull(d.st(code))
        return
    device = d.st(rng.choice(DEVICES))
    tasks = [t for t in node_inspection.tasks(device) if t.get("status") != "done"]
    if not tasks:
        return
    task = rng.choice(tasks)
    result = rng.choice(["pass", "fail", "rectify"])
    _station_command(
        d,
        device,
        "report",
        rng,
        lambda st: node_inspection.report(st, str(task["task"]), result=result, findings=["现场核查记录"]),
    )


def _supplement(d: District, number: str, rng: random.Random) -> None:
    """补交材料 of one deferred material, at the accepting station (or now and then another) or the hub."""
    world = d.world

    def owed_of(n: str) -> tuple[dict[str, object], list[str]]:
        vals = world.hub.records.values("application", operations.find_application(world.hub, n))
        return vals, [
            k[2:] for k, v in vals.items() if k.startswith("m.") and isinstance(v, list) and v[0] == "deferred"
        ]

    # Mostly a file that still owes a material (so receipts happen), else the drawn one (refused if none).
    owing = [n for n in d.numbers[-60:] if owed_of(n)[1]]
    number = rng.choice(owing) if owing and rng.random() < 0.9 else number
    vals, owed = owed_of(number)
    if not owed:
        return
    if rng.random() < 0.3:
        try:
            hub_supplement.supplement(world.hub, number, owed[:1])
            d.outcomes["hub supplement"] += 1
        except Refused as exc:
            assert ADMISSION_REFUSAL not in str(exc), exc
            d.outcomes["hub supplement refused"] += 1
        for code in STATIONS:
            world.pull(d.st(code))
        return
    code = str(vals["station"]) if rng.random() < 0.85 else rng.choice(STATIONS)
    _station_command(
        d, d.st(code), "station supplement", rng, lambda st: node_supplement.supplement(st, number, owed[:1])
    )


def _station_command(
    d: District, station: Station, label: str, rng: random.Random, command: Callable[[Station], object]
) -> None:
    """Run a station's real command: it may refuse for its own reasons, never by the admission check
    (the station and the hub disagreeing); what it writes is pushed and checked both ways."""
    before = station.meta.int("seq")
    try:
        command(station)
    except Refused as exc:
        assert ADMISSION_REFUSAL not in str(exc), exc
        d.outcomes[label.split(" to ")[0] + " refused"] += 1
        return
    d.outcomes[label] += 1
    _push_and_check(d, station, before, rng)


def test_honest_commands_are_admitted_and_their_forgeries_are_not(district: District) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(seed=st.integers(0, 2**64 - 1))
    def one_more_command(seed: int) -> None:
        # The district grows from example to example, so what can be drawn depends on what came
        # before; each example draws one seed and makes its choices from it.
        _run(district, random.Random(seed))

    one_more_command()
    # Both directions were exercised, not just drawn.
    assert district.admitted >= EXAMPLES // 3, district.admitted
    assert district.refused_forgeries >= EXAMPLES // 3, district.refused_forgeries
    assert district.outcomes["report"] and district.outcomes["township inspect"], district.outcomes
    assert district.outcomes["forged base refused"], district.outcomes
    assert district.outcomes["station supplement"] and district.outcomes["hub supplement"], district.outcomes
