"""Villages through their township's relay (issue 17): some villages, drawn from the seed, lose their
own line to the hub for a while and go through the township instead, as `node sync` does when the hub
is out of reach and `node init … --relay URL` named the township (node/client.py ``_through_relay``).

- The relay's queue is the real one: node/relay_queue.py's ``RelayQueue``, its relay.db in the
  township's folder, on the township's clock (``offer_up``, ``offer_pull``, ``answered``, ``expire``).
- A village's round through it (``visit``) follows node/relay_client.py ``relay_round`` step for step,
  which speaks aiohttp and so cannot run here: every unsettled batch left at the relay in pushes of
  ``PUSH_MAX_FRAMES``, the acks handed back opened with ``uplink.read_acks``; then a pull request with
  a fresh nonce remembered by ``relay_client._remember``, each page handed back checked by
  ``relay_client.classify`` and taken by ``feed_quarantine.take_page``, and one more pull when a
  page applied. The relay listener is the township's `node serve` process: down when it is.
- The township forwards at its next round with the hub, as node/client.py runs node/relay_forward.py
  after the township's own round: ``forward`` is that function's loop as a conversation of requests,
  carried by the simulated network like any other (loss, delay, cuts, hub crashes, timeouts). A
  township in `node serve` syncs every 30 s, so a village's visit brings its round within minutes.
- The relay may misbehave for a while (relay_malice.py); what it hands a village goes through ``hand``,
  where a genuine page proving a batch kept back (``skipped``, node/relay_skipped.py) fails the run when
  the relay never misbehaved (``relay_skipped_honest``).

A village cut off from the hub reaches it by no other way: its nightly reconciliation fails, as the
relay carries push and pull only. When the district heals (``heal``), the relay behaves and the
villages it carried are still cut off: the district must converge through it within three rounds.
Then they get their own line back and healing.py's direct rounds follow.
"""

from __future__ import annotations

import base64
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from node import conversation, feed_quarantine, hubkeys, relay_client, relay_queue, relay_skipped, uplink
from node.conversation import REPLAYED, Answer, Conversation, Request, drive
from node.relay_forward import FRAMES_TYPE, Signer, _chunks
from node.relay_queue import RelayQueue, keep_keys, kept_keys
from protocol.codec import pack, unpack
from protocol.limits import PUSH_MAX_FRAMES
from protocol.wire import REQUEST_HEADER
from replica.errors import Refused
from tests.sim import district, relay_malice, relay_stress, relay_usb
from tests.sim.faults import HOUR, MINUTE, START_MS, FaultPlan
from tests.sim.network import Event
from tests.sim.relay_malice import Malice

if TYPE_CHECKING:
    from tests.sim.district import Node
    from tests.sim.world import World

TOWNSHIP = "T01"
SHARE = 0.35  # of the seeds run some villages through the relay


class SimRelayQueue(RelayQueue):
    """node/relay_queue.py's queue as it is, but for whose frames it takes: a real relay takes only codes
    shaped like its villages' (360802-T01 → 360802-T01-05, ``is_village_of``, tested in
    tests/node/test_relay.py); the simulator's stations are named T01, V01, V02…"""

    def __init__(self, folder: Path, township: str, villages: set[str]) -> None:
        super().__init__(folder, township)
        self.villages = villages
        self.quota: int | None = None  # per village, when relay_stress.py sets it near what a push needs

    def check_origin(self, origin: str) -> None:
        if origin not in self.villages:
            super().check_origin(origin)

    def _room(self, conn: sqlite3.Connection, village: str, size: int) -> None:
        if self.quota is None:
            return super()._room(conn, village, size)
        real = relay_queue.VILLAGE_QUOTA_BYTES  # the real check, with the quota the seed drew; put back
        relay_queue.VILLAGE_QUOTA_BYTES = self.quota
        try:
            super()._room(conn, village, size)
        finally:
            relay_queue.VILLAGE_QUOTA_BYTES = real


@dataclass
class Relay:
    township: str
    queue: SimRelayQueue
    windows: dict[str, tuple[int, int]]  # village -> [from, until) ms: its own line to the hub is dead
    malice: Malice
    rng: random.Random
    stress: relay_stress.Stress = relay_stress.PLAIN
    usb: set[str] = field(default_factory=set)  # villages that carry sticks to the township (relay_usb.py)
    turns: dict[str, int] = field(default_factory=dict)  # a stick village's turns: some by the listener
    proxied: set[bytes] = field(default_factory=set)  # pages a frozen proxy on the township's line replayed
    healing: bool = False  # after the fault phase: the relay behaves, its villages are still cut off

    def cut_off(self, code: str, now: int) -> bool:
        w = self.windows.get(code)
        return w is not None and (self.healing or w[0] <= now < w[1])

    def close(self) -> None:
        self.queue.close()


def draw(seed: int, plan: FaultPlan) -> tuple[dict[str, tuple[int, int]], Malice] | None:
    """The seed's relay: which villages go through it and when, and how it misbehaves; None for about
    two seeds in three. About a third of the seeds send one or more villages through the township for
    six hours or more of the run, and again when the district heals; from a random stream of their
    own, so that every seed's plan (and every regression replay) stays what it was."""
    rng = random.Random(seed * 7951 + 67)
    villages = [code for code in plan.nodes if code != TOWNSHIP]
    if rng.random() >= SHARE:
        return None
    chosen = [code for code in villages if rng.random() < 0.5] or [rng.choice(villages)]
    d = plan.duration
    windows = {}
    for code in chosen:
        start = rng.randint(0, d // 2)
        windows[code] = (START_MS + start, START_MS + start + rng.randint(6 * HOUR, d))
    first, last = min(w[0] for w in windows.values()), min(max(w[1] for w in windows.values()), START_MS + d)
    return windows, relay_malice.draw(rng, len(chosen), first, last)


def schedule(world: World, seed: int) -> None:
    drawn = draw(seed, world.plan)
    if drawn is None:
        return
    windows, malice = drawn
    villages = {code for code in world.plan.nodes if code != TOWNSHIP}
    queue = SimRelayQueue(world.nodes[TOWNSHIP].folder, TOWNSHIP, villages)
    district.quiet(queue.conn)
    world.relay = Relay(TOWNSHIP, queue, windows, malice, malice.rng, relay_stress.draw(seed))
    relay_stress.prepare(world, world.relay, START_MS + world.plan.duration)
    world.relay.usb = relay_usb.draw(seed, sorted(windows))
    world.stats.relay_usb = len(world.relay.usb)
    world.stats.relay_stress = world.relay.stress.describe()
    world.stats.relay_villages = len(windows)
    world.stats.misbehaviours = malice.modes
    world.stats.misdeeds = malice.counts  # filled as it misbehaves
    spans = ", ".join(
        f"{c} t+{(a - START_MS) / HOUR:.0f}h..{(b - START_MS) / HOUR:.0f}h" for c, (a, b) in windows.items()
    )
    by_usb = f"; by stick: {','.join(sorted(world.relay.usb))}" if world.relay.usb else ""
    world.note(f"relay: {spans}; relay {relay_malice.describe(malice)}; healing {world.stats.relay_stress}{by_usb}")


# -- hooks the world calls ------------------------------------------------------------------------------


def instead(world: World, code: str, kind: str) -> bool:
    """A round a station starts: True when its hub is out of reach and the relay took it instead."""
    relay = world.relay
    if relay is None or not relay.cut_off(code, world.now):
        return False
    if kind == "sync":
        visit_or_trip(world, world.nodes[code])
        world.schedule(relay.rng.randint(30_000, 5 * MINUTE), Event("relay_forward", relay.township))
    else:
        world.note(f"{code} {kind}: the hub is out of reach, and a relay carries no reconciliation")
    return True


def round_done(world: World, code: str, kind: str) -> None:
    """The township's own round went well: node/client.py forwards its villages' traffic next."""
    relay = world.relay
    if relay is not None and code == relay.township and kind == "sync" and relay.queue.villages_waiting():
        world.start(code, "forward")


def township_round(world: World) -> None:
    """`node serve` at the township: its next round comes within seconds (later when it is busy)."""
    assert world.relay is not None
    code = world.relay.township
    if not world.nodes[code].up:
        return  # the process is down; its loop starts again with it, and the regular rounds go on
    if code in world.convs:
        world.schedule(2 * MINUTE, Event("relay_forward", code))
        return
    world.start(code, "sync")


# -- the township forwards -------------------------------------------------------------------------------


def forward(world: World) -> Conversation[None]:
    """node/relay_forward.py ``forward`` as requests: the hub's key history, then each village's batches
    in chain order, in pushes of their own, then its newest pull request as the village signed it; each
    answer kept for it."""
    relay = world.relay
    assert relay is not None
    queue, township = relay.queue, world.nodes[relay.township]
    queue.expire(township.now())
    signer = Signer(relay.township, township.st.keys.sign, township.st.hub_id)  # its word that it forwarded
    villages = queue.villages_waiting()
    if not villages:
        return
    # node/relay_forward.py ``_keys``, first: the hub's key history for the villages, newer than the
    # key of any answer kept after it.
    kept = kept_keys(township.folder)
    version = hubkeys.key_history(unpack(kept)).version if kept else -1
    answer = yield Request("keys", "GET", "/v1/keys", params={"after": str(version)}, summary=f"relay after={version}")
    if answer.status == 200 and hubkeys.key_history(unpack(answer.body)).docs:
        keep_keys(township.folder, answer.body)
    for village in villages:
        waiting = queue.waiting_pull(village)  # before the batches, as relay_forward.py: in order
        batches = relay.malice.up(world, village, queue.waiting_batches(village))
        for chunk in _chunks(batches):
            if not chunk:
                break
            body = pack([f for _, f in chunk])
            answer = yield Request(
                "push",
                "POST",
                "/v1/sync/push",
                body=body,
                headers={"Content-Type": FRAMES_TYPE, **signer.headers("/v1/sync/push", body, township.now())},
                summary=f"relay {village} {len(chunk)} frame(s)",
            )
            if answer.status != 200 and not 400 <= answer.status < 500:
                waiting = None  # not taken: it and all after it wait for the next round, in order
                break
            body = answer.body if answer.status == 200 else None
            queue.answered(village, [i for i, _ in chunk if i], "acks", body, township.now())
            world.stats.relay_forwarded += len(chunk) if body is not None else 0
        if waiting is None:
            continue
        rid, signed = waiting
        answer = yield Request(
            "pull",
            "GET",
            "/v1/sync/pull",
            headers={
                REQUEST_HEADER: base64.b64encode(signed).decode(),
                **signer.headers("/v1/sync/pull", signed, township.now()),
            },
            summary=f"relay {village}",
        )
        queue.answered(village, [rid], "feed", answer.body if answer.status == 200 else None, township.now())
        if relay.township in world.frozen:  # freeze.py: its pulls are answered by the proxy, not the hub
            relay.proxied.add(answer.body)


# -- a village's round through the relay ------------------------------------------------------------------


def visit_or_trip(world: World, node: Node) -> bool:
    """A round at the relay's door, or a stick carried to the township and back (relay_usb.py)."""
    relay = world.relay
    assert relay is not None
    if node.code not in relay.usb or (not relay.healing and relay_usb.by_listener(relay.turns, node.code)):
        return visit(world, node)
    return relay_usb.trip(world, node)


def visit(world: World, node: Node) -> bool:
    """node/relay_client.py ``relay_round`` at the relay's door; True when it moved anything (a page
    applied, or the hub's acks taken)."""
    relay = world.relay
    assert relay is not None
    township, st = world.nodes[relay.township], node.st
    if not node.up:
        return False
    world.stats.relay_visits += 1
    if not township.up:
        world.note(f"{node.code} relay round failed: the township's relay is down too")
        return False
    moved = False
    # The hub's key history first, as relay_client.py ``_keys``; the relay may have altered it.
    kept, bent = relay.malice.keys(world, kept_keys(township.folder))
    before = keys_held(node) if bent else b""
    try:
        drive(conversation.refresh_keys(st), lambda request: Answer(200, kept) if kept else Answer(404))
    except Refused as exc:
        world.note(f"{node.code} did not follow the key history the relay kept: {str(exc)[:80]}")
        if exc.code == hubkeys.KEY_CHAIN_REFUSED:
            # relay_client.py ends the round here (the relay is named, bad_keys): nothing it carries
            # this round could be verified against a key the village did not follow.
            world.stats.keys_refused += 1
            world.stats.tampered_refused += bent
            if bent and keys_held(node) != before:
                world.checks.fail("relay_tamper_taken", f"{node.code} changed on a key history the relay altered")
            return moved
    if bent:  # an altered history must be refused whole (and so named: bad_keys), never taken
        world.checks.fail("relay_tamper_taken", f"{node.code} did not refuse a key history the relay altered")
    try:
        uplink.build_outbox(st)
        world.keep_frames(node)
        unsettled = uplink.unsettled(st)
        frames = [f for _, f in unsettled]
        relay_skipped.keep_only(st, [o.batch_hash for o, _ in unsettled])
        for i in range(0, len(frames), PUSH_MAX_FRAMES):
            offered = relay.queue.offer_up(frames[i : i + PUSH_MAX_FRAMES], township.now())
            relay_skipped.left(st, [o.batch_hash for o, _ in unsettled[i : i + offered.taken]])
            for doc, tampered in relay.malice.down(world, node.code, "acks", offered.answers):
                moved |= hand(world, node, doc, "acks", tampered, kept)
            if offered.refusal is not None:  # taken as far as it fit: the rest waits in the outbox
                world.stats.relay_full += 1
                break
        for _ in range(2):  # once more when a page applied: ask from where the village now stands
            nonce = node.nonce()
            relay_client._remember(st, nonce)
            signed = uplink.pull_frame(st, st.meta.int("feed_cursor"), nonce)
            _, pages, acks = relay.queue.offer_pull(signed, township.now())
            # As relay_client.py ``_pull``: the acks waiting come with the pages (none: no draw, as before).
            for doc, tampered in relay.malice.down(world, node.code, "acks", acks) if acks else []:
                moved |= hand(world, node, doc, "acks", tampered, kept)
            applied = False
            for doc, tampered in relay.malice.down(world, node.code, "feed", pages, nonce):
                applied |= hand(world, node, doc, "feed", tampered, kept)
            moved |= applied
            if not applied:
                break
    except Refused as exc:
        world.note(f"{node.code} relay round refused: {str(exc)[:100]}")
        world.stats.relay_full += exc.code == "relay_full"
        return moved
    with st.transaction():
        st.meta.set("last_relay_round", st.clock())
    world.note(f"{node.code} relay round: {len(frames)} batch(es) left, moved {moved}")
    return moved


def keys_held(node: Node) -> bytes:
    """What a key history could change at a village: the hub keys it trusts, its catalogue, its data."""
    meta = [node.st.meta.get(k) for k in ("hub_root_pub", "hub_sign_pub", "hub_keys_version", "hub_keys_expires")]
    return pack(meta) + district.node_data(node.st) + district.node_outbox(node.st)


def hand(world: World, node: Node, doc: bytes, kind: str, tampered: bool, history: bytes | None = None) -> bool:
    """The village takes one document the relay handed it, as relay_client.py does. One the relay
    wrote, cut short, swapped in or replayed as a page must leave it as it was; a genuine one goes
    through ``World.take`` (taking it twice changes nothing). True when it applied.

    A relay that never misbehaved must never be named: whatever relay_client.py would count as its
    misdeed (``history``: the key history it handed over this round) fails ``honest_relay_named``."""
    st = node.st
    # (A station copied back by hand, not restored, has lost its nonces with its file: not checked.)
    # Nor a page a proxy on the township's own line replayed (freeze.py): the village cannot tell it
    # from the relay's doing, and names the relay, whose path it came by.
    honest = world.relay is not None and not world.relay.malice.modes and node.code not in world.cloned
    honest = honest and doc not in world.relay.proxied  # type: ignore[union-attr]

    def named(what: str) -> None:
        if honest:
            world.checks.fail("honest_relay_named", f"{node.code} would name an honest relay: {what}")

    def process() -> bool:
        if kind == "acks":
            try:
                uplink.read_acks(st, doc)  # the hub's signature, with the pinned key, or refused
            except Refused as exc:
                world.note(f"{node.code} refused acks from the relay: {str(exc)[:80]}")
                if not hubkeys.signed_before_a_rotation(st, doc, history):
                    named(f"bad_acks ({str(exc)[:80]})")
                return False
            return True
        if relay_client.classify(st, doc) == relay_client.REPLAY:
            feed_quarantine.record(st, doc, source="relay", reason=REPLAYED)
            world.note(f"{node.code} refused a page from the relay as a replay")
            named("replayed_page")
            return False
        outcome = feed_quarantine.take_page(st, doc, source="relay")
        if outcome.problem:
            world.note(f"{node.code} set a page from the relay aside: {outcome.problem[:80]}")
            if not relay_client._the_hubs(st, doc, relay_client.RelayRound(history=history)):
                named(f"bad_page ({outcome.problem[:80]})")
        if not tampered and (proof := relay_skipped.check(st, doc)) is not None:
            # The hub's page proves a batch kept back (sync/relay_evidence.py): never of an honest relay.
            world.note(f"{node.code} names the relay: skipped, {proof[1][:60]}")
            if not world.relay or not world.relay.malice.modes:
                world.checks.fail("relay_skipped_honest", f"{node.code}: {proof[1]}")
        world.stats.relay_pages += outcome.result is not None
        return outcome.result is not None

    if tampered and kind == "feed" and relay_usb.answerable(node, doc):
        # The hub's page handed again that the village may still take (a stick status's answer, or one
        # whose first copy went home by stick): taken, and nobody named (relay_usb.py ``replayed``: it
        # may move where the village stands in the feed, no more).
        return relay_usb.replayed(world, node, doc, process)
    if tampered:
        before = world.fingerprint(node)
        took = process()
        world.stats.tampered_refused += not took
        if took or world.fingerprint(node) != before:
            world.checks.fail("relay_tamper_taken", f"{node.code} took {kind} the relay tampered with")
        return False
    took = False

    def run() -> bool:
        nonlocal took
        took = process()
        return took

    world.take(node, doc, "relay answer", run)
    return took


# -- healing ------------------------------------------------------------------------------------------


def settle(world: World, node: Node) -> None:
    """A healed half hour of a cut-off village: its loop visits the relay, the township's forwards,
    until a visit moves nothing (its feed cursor, its queue) and nothing of its own waits (or the half
    hour is over); relay_stress.py makes the schedule harder for some seeds. An empty page answers
    every pull, so "a page applied" is no sign of progress."""
    from tests.sim.healing import direct

    relay = world.relay
    assert relay is not None
    township = world.nodes[relay.township]
    relay_stress.settle(
        world,
        node,
        lambda: visit_or_trip(world, node),
        lambda: direct(world, township, forward(world)),
        lambda: direct(world, node, world.conversation(node, "sync")),
    )


def heal(world: World) -> None:
    """Healing through the relay: it behaves now (what it held back goes out), and the villages it
    carried still have no line of their own. A round: those villages' loops at the relay, every other
    station's sync (the township's followed by its forwarding), the operator's review, the nightly
    reconciliation of the stations that reach the hub, the villages' loops again.

    Within three such rounds each of those villages must have drained both ways through the relay
    (``relay_no_convergence``): everything it wrote receipted by the hub, and everything the hub's feed
    holds for it taken. That is all a relay carries: what only anti-entropy repairs (a village put back
    from a backup gets its own lost changes back from reconciliation, never from the feed) waits for
    its own line, and healing.py's direct rounds check it. A village that missed a hub key rotation
    follows it with the key history the relay keeps (node/relay_forward.py, found by this check)."""
    from tests.sim.actions import review_quarantine
    from tests.sim.healing import HEAL_ROUNDS, direct

    relay = world.relay
    assert relay is not None
    relay.healing = True
    relay.malice.until = min(relay.malice.until, world.now)
    cut = [node for code, node in world.nodes.items() if relay.cut_off(code, world.now)]
    relay_stress.set_quota(world, relay, cut)
    found: list[str] = []
    for rnd in range(1, HEAL_ROUNDS + 1):
        world.now += 30 * MINUTE
        world.checks.now = world.now
        for node in cut:
            settle(world, node)
        for code, node in world.nodes.items():
            if node not in cut:
                direct(world, node, world.conversation(node, "sync"))
                if code == relay.township:
                    direct(world, node, forward(world))
        world.stats.released += review_quarantine(world)[0]
        for node in world.nodes.values():
            if node not in cut:
                direct(world, node, world.conversation(node, "reconcile"))
        world.stats.released += review_quarantine(world)[0]
        for node in cut:
            settle(world, node)
        world.after_step()
        found = [why for node in cut for why in drained(world, node)]
        world.note(f"relay heal round {rnd}: {'; '.join(found) or 'drained'}")
        if not found:
            world.stats.relay_converged_in = rnd
            break
    if found:
        world.checks.fail(
            "relay_no_convergence",
            f"after {HEAL_ROUNDS} rounds through the relay once it behaved: " + "; ".join(found[:4]),
        )
    relay.healing, relay.queue.quota = False, None
    relay.windows.clear()  # their own lines back: healing.py's direct rounds follow


def drained(world: World, node: Node) -> list[str]:
    """What still keeps a village and the hub apart that a relay carries: its changes the hub has not
    receipted, and feed entries (or a feed generation) it has not taken."""
    out = []
    if pending := node.st.pending_changes():
        out.append(f"{node.code} still has {pending} change(s) the hub has not receipted")
    store = world.hub.hub.store
    cursor, generation = node.meta("feed_cursor"), node.st.meta.text("hub_generation")
    if generation != str(store.get_meta("generation", "")) or store.feed_page(node.code, cursor, 1):
        out.append(f"{node.code} has not taken the hub's feed past {cursor}")
    return out
