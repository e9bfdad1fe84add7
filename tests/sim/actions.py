"""What happens during a run: staff work at the windows, the hub operator decides, syncs and nightly
jobs start, and the plan's faults strike. Each ``on_<kind>`` handles one kind of event for the world.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hub import quarantine_review
from hub.admission import Gate
from hub.feed import Lookup
from node import commands, uplink
from node.station import Station
from protocol.batch import BatchHeader, batch_filename, build_batch
from protocol.codec import unpack
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.keys import load_seal_public
from replica.errors import NotApplied, Refused
from sync.change import Change, change_from_wire, change_to_wire
from sync.fold import versions
from sync.hlc import tick
from sync.identity import id_check_char
from sync.model import ModelError
from sync.session import AckResult
from sync.workflow import TRANSITIONS, Move, Status, allowed_moves, may_move
from tests.sim import compromised, district, forgery, freeze, relay, rotation
from tests.sim.catalogue import catalogue_doc
from tests.sim.district import Node
from tests.sim.faults import DAY, HOUR, MINUTE, START_MS
from tests.sim.network import HUB, Event

if TYPE_CHECKING:
    from tests.sim.world import World


def schedule_all(world: World) -> None:
    plan, rng = world.plan, world.rng
    for s in plan.schedule:
        world.queue.push(START_MS + s.at, Event(s.kind, s.target, s.value, START_MS + s.until if s.until else 0))
    for _ in range(plan.ops):
        world.queue.push(START_MS + rng.randint(0, plan.duration), Event("op"))
    for code in plan.nodes:
        every = rng.randint(HOUR, 8 * HOUR)
        world.queue.push(START_MS + rng.randint(0, HOUR), Event("sync", code, every))
        night = START_MS + 17 * HOUR  # 02:00 the next morning, local time
        while night < START_MS + plan.duration:
            world.queue.push(night + rng.randint(0, 30 * MINUTE), Event("nightly", code))
            night += DAY


def on_sync(world: World, event: Event) -> None:
    world.start(event.target, "sync")
    world.schedule(int(event.value * world.rng.uniform(0.5, 1.5)), Event("sync", event.target, event.value))


def on_nightly(world: World, event: Event) -> None:
    world.start(event.target, "reconcile")


# -- work at the windows and at the hub -----------------------------------------------------------------


def on_op(world: World, event: Event) -> None:
    rng = world.rng
    up = [code for code, n in world.nodes.items() if n.up]
    if world.hub.up and (not up or rng.random() < 0.2):
        hub_op(world)
        return
    if not up:
        return
    node = world.nodes[rng.choice(up)]
    roll = rng.random()
    try:
        if roll < 0.45 or not applications(node.st):
            accept(world, node)
        elif roll < 0.9:
            station_op(world, node)
        else:
            rate(world, node)
    except (Refused, NotApplied, RemoteProtocolError) as exc:  # e.g. a release its keys no longer verify
        world.stats.refused_ops += 1
        world.note(f"{node.code} refused: {str(exc)[:80]}")


def sim_id_number(serial: int) -> str:
    """A made-up ID number with a valid check character (the hub checks it): region 360802, born
    1985-06-15, the serial as sequence code. It names nobody."""
    first17 = f"36080219850615{serial % 1000:03d}"
    return first17 + id_check_char(first17)


def accept(world: World, node: Node) -> None:
    """`node accept`: an item this tier may accept, its materials brought (some deferred, now and then)."""
    rng, st = world.rng, node.st
    cat = st.catalogue().catalogue
    codes = [item.code for item in cat.items_for_tier(st.tier)]
    if not codes:
        raise Refused(f"no item may be accepted at tier {st.tier}")
    item = cat.items[rng.choice(codes)]
    defer = rng.random() < 0.3
    serial = st.meta.int("counter") + 1
    out = commands.accept(
        st,
        commands.Application(
            item=item.code,
            name=f"模拟申请人{serial}",
            id_number=sim_id_number(serial),
            phone=f"1380000{serial % 10000:04d}",
            address=f"{node.code}村{serial}号",
            submitted=[m.name for m in item.materials if m.required and not (defer and m.deferrable)],
            deferred=[m.name for m in item.materials if m.required and defer and m.deferrable],
        ),
    )
    world.accepted[str(out["id"])] = (node.code, str(out["number"]), world.now)
    world.stats.accepted += 1
    world.note(f"{node.code} accepted {out['number']}")


def applications(st: Station) -> list[tuple[str, str]]:
    """(id, number) of every application the station holds, in id order."""
    return [(str(i), str(n)) for i, n in st.conn.execute("SELECT id, number FROM applications ORDER BY id")]


def open_moves(st: Station, app_id: str) -> list[Move]:
    """Moves staff here could make on an application now (what the UI offers)."""
    vals = st.records.values("application", app_id)
    if "status" not in vals or "item" not in vals:
        return []
    immediate = vals.get("kind") == "immediate"
    roles = commands.roles_here(st, str(vals.get("station")), str(vals.get("item")))
    return [
        m
        for m in allowed_moves(Status(str(vals["status"])), immediate=immediate)
        if m is not Move.INSPECT and any(may_move(r, m, immediate=immediate) for r in roles)
    ]


def station_op(world: World, node: Node) -> None:
    candidates = [(a, n, moves) for a, n in applications(node.st) if (moves := open_moves(node.st, a))]
    if not candidates:
        return
    app_id, number, moves = world.rng.choice(candidates)
    move = world.rng.choice(moves)
    current = Status(str(node.st.records.values("application", app_id)["status"]))
    target = TRANSITIONS[(current, move)]
    note = f"备注{world.rng.getrandbits(16)}" if world.rng.random() < 0.3 else ""
    commands.transition(node.st, number, target.value, note)
    world.note(f"{node.code} moved {app_id} {current.value}->{target.value}")


def rate(world: World, node: Node) -> None:
    """A citizen's rating (好差评): a record of its own, written once, tied to the application."""
    st = node.st
    rated = {str(r[0]) for r in st.conn.execute("SELECT DISTINCT application FROM changes WHERE entity='rating'")}
    for app_id, _number in applications(st):
        vals = st.records.values("application", app_id)
        if (
            vals.get("station") == node.code
            and vals.get("status") in ("completed", "delivered")
            and app_id not in rated
        ):
            with st.transaction():
                st.write(
                    "rating",
                    f"rating-{app_id}-{world.rng.getrandbits(32):08x}",
                    {"application": app_id, "score": world.rng.randint(1, 5), "comment": ""},
                    {},
                )
            world.note(f"{node.code} rated {app_id}")
            return


def hub_op(world: World) -> None:
    """The district hall decides its own items, and now and then steps in or annotates anything."""
    hub, rng = world.hub.hub, world.rng
    apps = [str(r[0]) for r in hub.store.conn.execute("SELECT id FROM applications ORDER BY id")]
    if not apps:
        return
    app_id = rng.choice(apps)
    record = hub.records.load("application", app_id)
    vals = hub.records.values("application", app_id)
    if "status" not in vals or "item" not in vals:
        return
    try:
        if rng.random() < 0.25:
            with hub.store.transaction():
                hub.write(
                    "application",
                    app_id,
                    {"note": f"区级备注{rng.getrandbits(16)}"},
                    {"note": versions(record).get("note", 0)},
                )
            world.note(f"hub noted {app_id}")
            return
        if hub.decided_at(str(vals["item"])) != "district" and rng.random() < 0.8:
            return
        immediate = vals.get("kind") == "immediate"
        current = Status(str(vals["status"]))
        moves = [m for m in allowed_moves(current, immediate=immediate) if may_move("hub", m, immediate=immediate)]
        moves = [m for m in moves if m is not Move.INSPECT]
        if not moves:
            return
        move = rng.choice(moves)
        target = TRANSITIONS[(current, move)]
        fields: dict[str, object] = {"status": target.value}
        base = {"status": versions(record).get("status", 0)}
        if move in (Move.APPROVE, Move.DENY):
            fields["decision"] = f"{move.value} by the district"
            base["decision"] = versions(record).get("decision", 0)
        with hub.store.transaction():
            hub.write("application", app_id, fields, base)
        world.note(f"hub moved {app_id} {current.value}->{target.value}")
    except (Refused, NotApplied) as exc:
        world.stats.refused_ops += 1
        world.note(f"hub refused: {str(exc)[:80]}")


# Refusals that another held change can lift (a rating waits for the completion it follows).
WAITS_FOR_ANOTHER = frozenset(quarantine_review.WAITING)


def review_quarantine(world: World) -> tuple[int, int]:
    """The operator works through the quarantine (hub/quarantine_review.py): a held change that would be
    admitted but for its clock, or for arriving before what it builds on, is released (the hub writes
    what it would write, as a new hub change); one still waiting for another is left; the rest are
    rejected. Returns (released, rejected)."""
    hub = world.hub.hub
    released = rejected = 0
    rows = hub.store.conn.execute(
        "SELECT id, origin, raw FROM quarantine WHERE state='open' AND whole_batch=0 ORDER BY id"
    ).fetchall()
    for qid, origin, raw in rows:
        if hub.store.conn.execute("SELECT state FROM quarantine WHERE id=?", (qid,)).fetchone()[0] != "open":
            continue  # released meanwhile, with what it was waiting for
        try:
            change = change_from_wire(unpack(bytes(raw)))
            gate = Gate(hub, Lookup(hub))
            verdict = gate.ask(change, gate.actor(str(origin)))  # the operator judges a clock by looking
            if hub.records.has_change(*change.key):
                verdict = None  # a copy re-sent by another station of what its origin has sent since
        except (ModelError, RemoteProtocolError):
            verdict = None
        try:
            if verdict is not None and verdict.admitted:
                quarantine_review.release(hub, int(qid), by="sim")
                released += 1
            elif verdict is None or verdict.code not in WAITS_FOR_ANOTHER:
                quarantine_review.reject(hub, int(qid), by="sim", reason="不符合规则 (the simulator's operator)")
                rejected += 1
        except (Refused, NotApplied):
            continue
    return released, rejected


# -- faults ---------------------------------------------------------------------------------------------


def on_cut(world: World, event: Event) -> None:
    world.links.cut(event.target, event.value, +1)
    world.queue.push(event.until, Event("uncut", event.target, event.value))


def on_uncut(world: World, event: Event) -> None:
    world.links.cut(event.target, event.value, -1)


def on_crash(world: World, event: Event) -> None:
    world.crash(event.target, max(event.until - world.now, MINUTE))


def on_skew(world: World, event: Event) -> None:
    world.skews[event.target] = event.value


def on_backup(world: World, event: Event) -> None:
    node = world.nodes[event.target]
    if node.up:
        path = world.root / "backups" / f"{node.code}-{world.now}.db"
        path.parent.mkdir(exist_ok=True)
        node.backup(path)
        world.snapshots[node.code] = str(path)
        world.queue.push(event.until, Event("restore", node.code, event.value, world.now))


def on_restore(world: World, event: Event) -> None:
    snapshot = world.snapshots.pop(event.target, None)
    if snapshot is None:
        return
    node = world.nodes[event.target]
    world.abort(node.code, "restored from a backup")
    world.checks.restored(node.code, event.until, world.now)  # until: when the backup was taken
    if event.value:
        # The database file copied back by hand: nobody starts a new epoch, so the station reuses
        # seqs the hub already holds with other content, and only the hub's fork answer saves it.
        epoch = node.copy_back(Path(snapshot))
        world.cloned.add(node.code)
        world.checks.catalogue_seen[node.code] = node.catalogue_version  # no software ran: nothing to hold
        world.checks.own_high.pop(node.code, None)  # nor can its clock know what it stamped since
        world.checks.stamps.pop(node.code, None)
    else:
        epoch = node.restore(Path(snapshot))  # `node restore`
    world.node_done[node.code] = {}  # what it had taken since the backup is gone with the disk
    node.up = True
    world.stats.restores += 1
    world.note(f"{node.code} restored from backup ({'raw copy' if event.value else 'restore'}), epoch {epoch}")


def on_hub_backup(world: World, event: Event) -> None:
    if world.hub.up:
        path = world.root / "backups" / f"hub-{world.now}.db"
        path.parent.mkdir(exist_ok=True)
        world.hub.backup(path)
        world.hub_snapshot = (str(path), set(world.hub_committed))
        world.queue.push(event.until, Event("hub_restore", HUB, 0, world.now))


def on_hub_restore(world: World, event: Event) -> None:
    """The hub put back from its backup (`hub restore`): it lacks what came after, and stations must
    resend it."""
    if world.hub_snapshot is None:
        return
    snapshot, committed = world.hub_snapshot
    world.hub_snapshot = None
    world.checks.restored(HUB, event.until, world.now)
    world.hub.restore(Path(snapshot))
    world.hub_committed = committed
    world.hub.up = True
    world.stats.restores += 1
    world.note("hub restored from backup")


def on_usb_batches(world: World, event: Event) -> None:
    """A USB stick: either the station exports its queue now and the stick reaches the hub hours or days
    later (sticks overtake each other), or some of its old batch files are replayed, days old."""
    node = world.nodes[event.target]
    if event.value:
        if not node.up:
            return
        uplink.build_outbox(node.st)
        frames = [f for _, f in uplink.unsettled(node.st)]
        world.keep_frames(node)
        if frames:
            world.schedule(world.rng.randint(HOUR, 3 * DAY), Event("usb_arrive", node.code, len(frames), data=frames))
        return
    old = list(world.archive[node.code].values())  # in the order they were made (never by hash)
    if old:
        picked = world.rng.sample(old, world.rng.randint(1, len(old)))
        on_usb_arrive(world, Event("usb_arrive", node.code, len(picked), data=picked))


def on_usb_arrive(world: World, event: Event) -> None:
    """The hub imports a stick's batch files in file-name order, i.e. by epoch and seq."""
    assert isinstance(event.data, list)
    if not world.hub.up:
        return
    frames = sorted(event.data, key=lambda f: _file_order(f))
    acks = [world.ingest(f) for f in frames]
    world.note(f"usb {event.target}: {','.join(a.result.value for a in acks)}")
    answer = world.hub.acks_answer(acks)
    if answer.status == 200 and world.rng.random() < 0.6:  # the acknowledgements ride back on the stick
        world.schedule(world.rng.randint(HOUR, 2 * DAY), Event("usb_acks", event.target, data=answer.body))


def _file_order(frame: bytes) -> str:
    return batch_filename(BatchHeader.from_header(peek_header(frame)))


def on_usb_acks(world: World, event: Event) -> None:
    assert isinstance(event.data, bytes)
    world.import_by_hand(world.nodes[event.target], event.data)


def on_publish(world: World, event: Event) -> None:
    if world.hub.up:
        version = world.hub.hub.published_up_to() + 1
        world.note(f"hub published release {world.hub.hub.publish(catalogue_doc(version))}")


def on_usb_release(world: World, event: Event) -> None:
    releases = dict(world.hub.hub.store.release_frames())
    # Versions may have gaps: a hub restored from backup publishes past the releases it lost.
    version = max((v for v in releases if v <= event.value), default=min(releases))
    world.import_by_hand(world.nodes[event.target], releases[version])


def on_forge(world: World, event: Event) -> None:
    forgery.forge(world, event.target, event.value)


def on_review(world: World, event: Event) -> None:
    if world.hub.up:
        released, rejected = review_quarantine(world)
        world.stats.released += released
        world.note(f"operator released {released}, rejected {rejected}")


def on_compromise(world: World, event: Event) -> None:
    compromised.strike(world, event.target)


def on_rogue(world: World, event: Event) -> None:
    if world.hub.up:
        world.rogue.strike(world)


@dataclass
class Rogue:
    """An enrolled village station (district.ROGUE) whose software writes to other stations' applications."""

    code: str
    epoch: int = 1
    seq: int = 0
    hlc: int = 0
    chain: bytes = bytes(32)

    def strike(self, world: World) -> None:
        hub = world.hub.hub
        apps = [str(r[0]) for r in hub.store.conn.execute("SELECT id FROM applications ORDER BY id")]
        if not apps:
            return
        app_id = world.rng.choice(apps)
        fields: dict[str, object] = world.rng.choice(
            [{"status": "approved"}, {"applicant_name": "冒名顶替"}, {"decision": "越权决定"}, {"status": "withdrawn"}]
        )
        self.seq += 1
        self.hlc = tick(self.hlc, world.now)
        change = Change(self.code, self.epoch, self.seq, self.hlc, "application", app_id, fields, {})
        world.checks.authored_by(change)
        world.checks.forbid(change)
        frame = build_batch(
            origin=self.code,
            epoch=self.epoch,
            first_seq=self.seq,
            changes=[change_to_wire(change)],
            prev=self.chain,
            recipient=hub.hub_id,
            hlc=self.hlc,
            signing_key=district.rogue_key(),
            seal_to=load_seal_public(hub.keys.seal_pub),
            recipient_key=hub.keys.seal_key_id,
        )
        ack = world.ingest(frame)
        if ack.batch:
            self.chain = ack.batch
        if ack.result is AckResult.APPLIED:  # held (or, after a hub restore, a gap): never applied
            world.checks.fail("rights_not_enforced", f"{self.code} wrote {sorted(fields)} of {app_id}: {ack.result}")
        world.note(f"rogue {sorted(fields)} on {app_id}: {ack.result.value}")


def on_rotate_key(world: World, event: Event) -> None:
    rotation.rotate(world, "rotate_key")


def on_rotate_root(world: World, event: Event) -> None:
    rotation.rotate(world, "rotate_root")


def on_forge_removed(world: World, event: Event) -> None:
    rotation.forge_removed(world)


def on_freeze(world: World, event: Event) -> None:
    freeze.start(world, event.target, event.until)


def on_thaw(world: World, event: Event) -> None:
    freeze.thaw(world, event.target, event.until)


def on_relay_forward(world: World, event: Event) -> None:
    relay.township_round(world)
