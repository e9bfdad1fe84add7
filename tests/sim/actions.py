"""What happens during a run: staff work at the windows, the hub operator decides, syncs and nightly
jobs start, and the plan's faults strike. Each ``on_<kind>`` handles one kind of event for the world.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.batch import BatchHeader, batch_filename, build_batch
from protocol.frame import peek_header
from protocol.keys import public_bytes, sealing_key_from_seed, signing_key_from_seed
from sync.change import Change, change_to_wire
from sync.fold import versions
from sync.hlc import tick
from sync.session import AckResult
from sync.workflow import TRANSITIONS, Move, Status, allowed_moves, may_move
from tests.sim import compromised, forgery, freeze, rotation
from tests.sim.faults import DAY, HOUR, MINUTE, START_MS
from tests.sim.hub_reconcile import review_quarantine
from tests.sim.network import HUB, Event
from tests.sim.node_model import Refused, SimNode
from tests.sim.replica_model import NumberTaken
from tests.sim.uplink_model import build_outbox, unsettled

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
        if roll < 0.45 or not node.store.records.records:
            app_id = f"{node.code.lower()}-{rng.getrandbits(64):016x}"
            _, number = node.accept(app_id, rng.choice, defer=rng.random() < 0.3)
            world.accepted[app_id] = (node.code, number, world.now)
            world.stats.accepted += 1
            world.note(f"{node.code} accepted {number}")
        elif roll < 0.9:
            station_op(world, node)
        else:
            rate(world, node)
    except (Refused, NumberTaken) as exc:
        world.stats.refused_ops += 1
        world.note(f"{node.code} refused: {str(exc)[:80]}")


def station_op(world: World, node: SimNode) -> None:
    apps = sorted(k[1] for k in node.store.records.records if k[0] == "application")
    candidates = [(a, moves) for a in apps if (moves := node.open_moves(a))]
    if not candidates:
        return
    app_id, moves = world.rng.choice(candidates)
    move = world.rng.choice(moves)
    current = Status(str(node.store.records.values("application", app_id)["status"]))
    target = TRANSITIONS[(current, move)]
    note = f"备注{world.rng.getrandbits(16)}" if world.rng.random() < 0.3 else ""
    node.transition(app_id, target, note)
    world.note(f"{node.code} moved {app_id} {current.value}->{target.value}")


def rate(world: World, node: SimNode) -> None:
    # sync/model.py: ratings are records written once with fresh ids; one per application here.
    rated = {
        str(r.get("application", (0, "", ""))[2]) for k, r in node.store.records.records.items() if k[0] == "rating"
    }
    for app_id in sorted(node.own_applications()):
        vals = node.store.records.values("application", app_id)
        if vals.get("status") in ("completed", "delivered") and app_id not in rated:
            node.rate(f"rating-{app_id}-{world.rng.getrandbits(32):08x}", app_id, world.rng.randint(1, 5))
            world.note(f"{node.code} rated {app_id}")
            return


def hub_op(world: World) -> None:
    """The district hall decides its own items, and now and then steps in or annotates anything."""
    hub, rng = world.hub, world.rng
    apps = sorted(k[1] for k in hub.store.records.records if k[0] == "application")
    if not apps:
        return
    app_id = rng.choice(apps)
    record = hub.store.records.records[("application", app_id)]
    vals = hub.store.records.values("application", app_id)
    if "status" not in vals or "item" not in vals:
        return
    if rng.random() < 0.25:
        hub.write(
            "application", app_id, {"note": f"区级备注{rng.getrandbits(16)}"}, {"note": versions(record).get("note", 0)}
        )
        world.note(f"hub noted {app_id}")
        return
    if hub.decided_at(str(vals["item"])) != "district" and rng.random() < 0.8:
        return
    immediate = vals.get("kind") == "immediate"
    current = Status(str(vals["status"]))
    moves = [m for m in allowed_moves(current, immediate=immediate) if may_move("hub", m, immediate=immediate)]
    if not moves:
        return
    move = rng.choice(moves)
    target = TRANSITIONS[(current, move)]
    fields: dict[str, object] = {"status": target.value}
    base = {"status": versions(record).get("status", 0)}
    if move in (Move.APPROVE, Move.DENY):
        fields["decision"] = f"{move.value} by the district"
        base["decision"] = versions(record).get("decision", 0)
    hub.write("application", app_id, fields, base)
    world.note(f"hub moved {app_id} {current.value}->{target.value}")


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
        world.snapshots[node.code] = node.backup()
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
        node.store = node.backup_of(snapshot)
        world.cloned.add(node.code)
        world.checks.catalogue_seen[node.code] = node.catalogue_version  # no software ran: nothing to hold
        world.checks.own_high.pop(node.code, None)  # nor can its clock know what it stamped since
        epoch = node.store.epoch
    else:
        epoch = node.restore(snapshot)
    world.node_done[node.code] = {}  # what it had taken since the backup is gone with the disk
    node.up = True
    world.stats.restores += 1
    world.note(f"{node.code} restored from backup ({'raw copy' if event.value else 'restore'}), epoch {epoch}")


def on_hub_backup(world: World, event: Event) -> None:
    if world.hub.up:
        world.hub_snapshot = (world.hub.backup(), set(world.hub_committed))
        world.queue.push(event.until, Event("hub_restore", HUB, 0, world.now))


def on_hub_restore(world: World, event: Event) -> None:
    """The hub put back from its backup: it lacks what came after, and stations must resend it."""
    if world.hub_snapshot is None:
        return
    snapshot, committed = world.hub_snapshot
    world.hub_snapshot = None
    world.checks.restored(HUB, event.until, world.now)
    world.hub_generations += 1
    world.hub.restore(snapshot, f"g{world.hub_generations}")
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
        build_outbox(node, world.plan.max_batch)
        frames = [f for _, f in unsettled(node)]
        for row in node.store.outbox:
            world.archive[node.code].setdefault(row.hash, row.frame)
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
    status, body = world.hub.answer_push(acks)
    if status == 200 and world.rng.random() < 0.6:  # the acknowledgements ride back on the stick
        world.schedule(world.rng.randint(HOUR, 2 * DAY), Event("usb_acks", event.target, data=body))


def _file_order(frame: bytes) -> str:
    return batch_filename(BatchHeader.from_header(peek_header(frame)))


def on_usb_acks(world: World, event: Event) -> None:
    assert isinstance(event.data, bytes)
    world.import_by_hand(world.nodes[event.target], event.data)


def on_publish(world: World, event: Event) -> None:
    if world.hub.up:
        world.note(f"hub published release {world.hub.publish()}")


def on_usb_release(world: World, event: Event) -> None:
    releases = world.hub.store.releases
    # Versions may have gaps: a hub restored from backup publishes past the releases it lost.
    version = max((v for v in releases if v <= event.value), default=min(releases))
    world.import_by_hand(world.nodes[event.target], releases[version])


def on_forge(world: World, event: Event) -> None:
    forgery.forge(world, event.target, event.value)


def on_review(world: World, event: Event) -> None:
    if world.hub.up:
        released, rejected = review_quarantine(world.hub)
        world.stats.released += released
        world.note(f"operator released {released}, rejected {rejected}")


def on_compromise(world: World, event: Event) -> None:
    compromised.strike(world, event.target)


def on_rogue(world: World, event: Event) -> None:
    if world.hub.up:
        world.rogue.strike(world)


@dataclass
class Rogue:
    """An enrolled village station whose software writes to other stations' applications."""

    code: str
    sign_seed: bytes
    epoch: int = 1
    seq: int = 0
    hlc: int = 0
    chain: bytes = bytes(32)

    @classmethod
    def enrol(cls, world: World) -> Rogue:
        rogue = cls("R99", world.rng.randbytes(32))
        seal = sealing_key_from_seed(world.rng.randbytes(32))
        world.hub.enrol(
            rogue.code, "village", "T01", public_bytes(signing_key_from_seed(rogue.sign_seed)), public_bytes(seal)
        )
        return rogue

    def strike(self, world: World) -> None:
        apps = sorted(k[1] for k in world.hub.store.records.records if k[0] == "application")
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
            recipient=world.hub.hub_id,
            hlc=self.hlc,
            signing_key=signing_key_from_seed(self.sign_seed),
            seal_to=world.hub.seal.public_key() if world.plan.sealed else None,
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
