"""One simulated district from one seed: a hub, a township, its villages, a virtual clock and a queue.

Everything random comes from one ``random.Random(seed)``; the clock only moves when the queue says so;
events are processed in (time, insertion) order and each one is hashed into the trace as it runs, so
the same seed gives the same trace hash. After the fault phase the world heals (links back, crashed
processes restarted, clocks corrected) and gives the district at most three sync rounds to converge.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.codec import pack
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.keys import key_id, public_bytes
from sync.merkle import ReconcileError
from sync.session import AckResult
from tests.sim import actions, compromised, faults, freeze, rotation
from tests.sim.checkers import Checks, Violation
from tests.sim.client_model import Answer, Conversation, Request, reconcile_round, sync_round
from tests.sim.faults import HOUR, MINUTE, START_MS
from tests.sim.healing import heal
from tests.sim.hub_model import HubHooks, SimHub
from tests.sim.hub_reconcile import handle
from tests.sim.hub_store import FrameAck, HubStore
from tests.sim.network import HUB, Event, Links, Msg, Queue, Wire
from tests.sim.node_model import NodeHooks, NodeStore, Refused, SimNode
from tests.sim.replica_model import NumberTaken
from tests.sim.uplink_model import import_file

HUB_ID = "360802"
TIMEOUT_MS = 120_000  # node/client.py: aiohttp total timeout
ROUND_ERRORS = (Refused, RemoteProtocolError, ReconcileError, ValueError, NumberTaken)


@dataclass
class Conv:
    id: int
    kind: str
    gen: Conversation
    req: int = 0
    replayed: bool = False  # a frozen network answered one of its pulls with an old page
    genuine: bool = False  # the hub itself answered one of its pulls


@dataclass
class RunStats:
    accepted: int = 0
    refused_ops: int = 0
    rounds_done: int = 0
    rounds_failed: int = 0
    held: int = 0
    released: int = 0
    forks: int = 0
    restores: int = 0
    lost_to_restore: int = 0
    forgeries: int = 0
    converged_in: int = 0
    rotations: int = 0
    replays: int = 0  # pulls a frozen network answered with an old page
    stale_flagged: int = 0  # rounds that ended with the station flagged stale because of them
    events: int = 0
    acks: dict[str, int] = field(default_factory=dict)


@dataclass
class World:
    seed: int
    as_is: frozenset[str] = frozenset()  # adapter issues to mirror as they are (adapter_issues.py)
    copy_with_hub_restore: bool = False  # see faults.draw
    rng: random.Random = field(init=False)
    plan: faults.FaultPlan = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.plan = faults.draw(self.rng, copy_with_hub_restore=self.copy_with_hub_restore)
        self.now = START_MS
        self.queue = Queue()
        self.links = Links()
        self.wire = Wire(self.rng, self.plan.loss, self.plan.dup, self.plan.slow)
        self.trace = hashlib.sha256()
        self.log: list[str] = []
        self.keep_log = False
        self.stats = RunStats()
        self.checks = Checks(start_ms=START_MS)
        self.skews = dict(self.plan.skews)
        self.hub_skew = self.rng.randint(-60_000, 60_000)
        self.hub_wall_high = 0
        self.convs: dict[str, Conv] = {}
        self.conv_ids = 0
        self.accepted: dict[str, tuple[str, str, int]] = {}  # id -> (station, number, when)
        self.archive: dict[str, dict[bytes, bytes]] = {}
        self.snapshots: dict[str, NodeStore] = {}
        self.cloned: set[str] = set()  # stations put back by a raw file copy: only they may fork
        self.hub_snapshot: tuple[HubStore, set[bytes]] | None = None
        self.hub_generations = 1
        self.compromise_rng: random.Random | None = None  # set when a station turns compromised
        self.rotation_rng: random.Random | None = None  # set when the hub rotates its keys (rotation.py)
        self.retired: list[tuple[int, Ed25519PrivateKey]] = []  # (last list naming it, key) after a rotation
        self.frozen: dict[str, int] = {}  # station -> until when its pulls are answered by a replay (freeze.py)
        self.last_page: dict[str, bytes] = {}  # the last genuine page each station received
        self.hub_committed: set[bytes] = set()
        # Hub answers each station has taken, with its outbox as it was right after (see ``take``).
        self.node_done: dict[str, dict[bytes, bytes]] = {}
        self.hub = SimHub(
            hub_id=HUB_ID,
            seed=self.rng.randbytes(64),
            clock=self.hub_clock,
            sealed=self.plan.sealed,
            page_limit=self.plan.page_limit,
            as_is=self.as_is,
            hooks=HubHooks(
                watch=self.checks.watcher("hub"),
                wrote=self.checks.authored_by,
                stamped=self.checks.stamped,
                admitted=self.checks.admitted,
                held=lambda _row: self._held(),
            ),
        )
        self.hub.publish()
        self.nodes: dict[str, SimNode] = {}
        for code in self.plan.nodes:
            township = code.startswith("T")
            node = SimNode(
                code=code,
                tier="township" if township else "village",
                parent="" if township else "T01",
                hub_id=HUB_ID,
                seed=self.rng.randbytes(64),
                hub_keys=self.hub.current_keys(),
                sealed=self.plan.sealed,
                clock=self._clock_of(code),
                hooks=NodeHooks(
                    watch=self.checks.watcher(code),
                    wrote=self.checks.authored_by,
                    stamped=self.checks.stamped,
                    took=self._took,
                ),
                as_is=self.as_is,
            )
            self.hub.enrol(code, node.tier, node.parent, public_bytes(node.sign), node.seal_pub)
            node.store_catalogue(self.hub.store.releases[1])  # handed over at enrolment
            self.nodes[code] = node
            self.archive[code] = {}
            self.node_done[code] = {}
        self.rogue = actions.Rogue.enrol(self)

    # -- clocks -----------------------------------------------------------------------------------------

    def hub_clock(self) -> int:
        ms = self.now + self.hub_skew
        self.hub_wall_high = max(self.hub_wall_high, ms)
        return ms

    def _clock_of(self, code: str) -> Callable[[], int]:
        """A station's wall clock: virtual time plus its skew, which faults may change at any moment."""
        return lambda: self.now + self.skews[code]

    # -- the loop ---------------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        line = f"{self.now - START_MS} {text}"
        self.trace.update(line.encode() + b"\n")
        if self.keep_log:
            self.log.append(line)

    def schedule(self, delay: int, event: Event) -> None:
        self.queue.push(self.now + delay, event)

    def run(self) -> list[Violation]:
        actions.schedule_all(self)
        compromised.schedule(self, self.seed)
        rotation.schedule(self, self.seed)
        freeze.schedule(self, self.seed)
        end = START_MS + self.plan.duration
        while self.queue:
            at, _, event = self.queue.pop()
            if at > end:
                break
            self.now = max(self.now, at)
            self.checks.now = self.now
            self.note(event.describe())
            self.stats.events += 1
            handler = getattr(self, f"on_{event.kind}", None)
            if handler is not None:
                handler(event)
            else:
                getattr(actions, f"on_{event.kind}")(self, event)
            self.after_step()
        heal(self)
        return self.checks.violations

    def after_step(self) -> None:
        for node in self.nodes.values():
            self.checks.catalogue(node)
        self.checks.clocks(self.nodes.values(), self.hub, self.hub_wall_high)

    def _held(self) -> None:
        self.stats.held += 1

    # -- messages and conversations ---------------------------------------------------------------------

    def _took(self, code: str, kind: str, frame: bytes, version: int) -> None:
        listed = self.hub.listed.get(version)
        self.checks.signed_by_listed(
            code, kind, str(peek_header(frame).get("signer_key", "")), key_id(listed) if listed else ""
        )

    def send(self, msg: Msg) -> None:
        if msg.request is not None and msg.request.kind == "pull" and msg.src in self.frozen:
            page = self.last_page.get(msg.src)
            if page is not None:  # the proxy in front of the station answers; the hub never hears of it
                self.stats.replays += 1
                self.note(f"frozen: {msg.src}'s pull answered with an old page")
                reply = Msg(freeze.PROXY, msg.src, msg.conv, msg.req, answer=Answer(200, page, "replay"))
                self.schedule(freeze.DELAY_MS, Event("deliver", msg=reply))
                return
        if not self.links.open(msg.src, msg.dst):
            self.note(f"cut {msg.describe()}")
            return
        for delay in self.wire.deliveries():
            self.schedule(delay, Event("deliver", msg=msg))

    def start(self, code: str, kind: str) -> None:
        node = self.nodes[code]
        if not node.up or code in self.convs:
            return
        maker = sync_round if kind == "sync" else reconcile_round
        self.conv_ids += 1
        conv = Conv(self.conv_ids, kind, maker(node, max_batch=self.plan.max_batch, max_push=self.plan.max_push))
        self.convs[code] = conv
        self._advance(node, conv, None)
        for row in node.store.outbox:
            self.archive[code].setdefault(row.hash, row.frame)

    def _advance(self, node: SimNode, conv: Conv, answer: Answer | None) -> bool:
        """Resume a conversation with the hub's answer; False when the station refused the answer."""
        try:
            request = next(conv.gen) if answer is None else conv.gen.send(answer)
        except StopIteration:
            self.convs.pop(node.code, None)
            self.stats.rounds_done += 1
            self.note(f"{node.code} {conv.kind} round done")
            self._round_ended(node.code, conv)
            return True
        except ROUND_ERRORS as exc:
            self.abort(node.code, f"failed: {exc}")
            return False
        conv.req += 1
        self.send(Msg(node.code, HUB, conv.id, conv.req, request=request))
        self.schedule(TIMEOUT_MS, Event("timeout", node.code, conv.id, conv.req))
        return True

    def abort(self, code: str, why: str) -> None:
        conv = self.convs.pop(code, None)
        if conv is not None:
            conv.gen.close()
            self.stats.rounds_failed += 1
            self.note(f"{code} {conv.kind} round aborted: {why[:120]}")
            self._round_ended(code, conv)

    def _round_ended(self, code: str, conv: Conv) -> None:
        """A round whose pulls only a frozen network answered must leave the station flagged stale."""
        if conv.replayed and not conv.genuine:
            stale = self.nodes[code].store.stale_rounds
            self.stats.stale_flagged += stale > 0
            self.checks.flagged_stale(code, stale)

    def on_timeout(self, event: Event) -> None:
        conv = self.convs.get(event.target)
        if conv is not None and conv.id == event.value and conv.req == event.until:
            self.abort(event.target, "hub unreachable (timeout)")

    def on_deliver(self, event: Event) -> None:
        msg = event.msg
        assert msg is not None
        if not self.links.open(msg.src, msg.dst):
            return
        if msg.dst == HUB:
            self.hub_receive(msg)
        else:
            self.node_receive(msg)

    def hub_answer(self, request: Request, crash_at: int | None = None) -> Answer | None:
        """The hub's handling of one request; None when it crashed at ``crash_at`` (commits so far stay)."""
        if request.kind == "keys":
            if crash_at is not None:
                return None
            status, body = self.hub.keys_answer(request.doc)
            return Answer(status, body, "keys")
        if request.kind == "push":
            acks: list[FrameAck] = []
            for i, frame in enumerate(request.frames):
                if crash_at == i:
                    return None
                try:
                    acks.append(self.ingest(frame))
                except NumberTaken as exc:  # an exception in the handler: aiohttp answers 500
                    return Answer(500, f"internal error: {exc}".encode(), "500")
            if crash_at is not None:
                return None
            status, body = self.hub.answer_push(acks)
            return Answer(status, body, ",".join(a.result.value for a in acks))
        if crash_at == 0:
            return None
        status, body = self.hub.pull(request.doc) if request.kind == "pull" else handle(self.hub, request.doc)
        if crash_at is not None:
            return None
        return Answer(status, body, request.kind)

    def ingest(self, frame: bytes) -> FrameAck:
        """Ingest one frame; a frame the hub already committed must leave it exactly as it was."""
        digest = hashlib.sha256(frame).digest()
        before = self.hub.fingerprint() if digest in self.hub_committed else None
        ack = self.hub.ingest_frame(frame)
        self.stats.acks[ack.result.value] = self.stats.acks.get(ack.result.value, 0) + 1
        if before is not None:
            self.checks.unchanged(
                f"hub took a batch again ({ack.result.value}) and changed", before, self.hub.fingerprint()
            )
        if ack.result in (AckResult.APPLIED, AckResult.QUARANTINED, AckResult.FORK):
            self.hub_committed.add(digest)
        if ack.result is AckResult.FORK:
            self.stats.forks += 1
            if ack.origin not in self.cloned:
                self.checks.fail("false_fork", f"the hub saw a fork from {ack.origin}, which was never copied back")
        if ack.batch:
            self.checks.gapless(self.hub, ack.origin)
        return ack

    def hub_receive(self, msg: Msg) -> None:
        if not self.hub.up:
            return
        assert msg.request is not None
        crash_at = None
        if self.plan.hub_crash_on_request and self.rng.random() < self.plan.hub_crash_on_request:
            crash_at = self.rng.randint(0, len(msg.request.frames) if msg.request.kind == "push" else 1)
        answer = self.hub_answer(msg.request, crash_at)
        if answer is None:
            self.crash(HUB, self.rng.randint(MINUTE, 2 * HOUR))
            return
        self.send(Msg(HUB, msg.src, msg.conv, msg.req, answer=answer))

    def node_receive(self, msg: Msg) -> None:
        node = self.nodes[msg.dst]
        if not node.up:
            return
        assert msg.answer is not None
        rate = self.plan.node_crash_on_answer
        if rate and self.rng.random() < rate / 2:
            self.crash(node.code, self.rng.randint(MINUTE, 2 * HOUR))  # before it read the answer
            return
        conv = self.convs.get(node.code)
        replay = msg.src == freeze.PROXY
        if msg.answer.summary == "pull" and msg.answer.status == 200 and not replay:
            self.last_page[node.code] = msg.answer.body  # what a proxy on the path saw go by
        if conv is not None and conv.id == msg.conv and conv.req == msg.req:
            answer = msg.answer
            if replay:
                conv.replayed = True
                before = self.node_data(node)
                self._advance(node, conv, answer)
                self.checks.unchanged_by_replay(node.code, before, self.node_data(node))
            else:
                conv.genuine = conv.genuine or (answer.summary == "pull" and answer.status == 200)
                self.take(node, answer.body, "answer", lambda: self._advance(node, conv, answer))
        elif replay:
            pass  # a late answer from the proxy, on a connection already closed
        elif msg.answer.status == 200:
            # A late or duplicated answer: the station treats it like a hub file carried by hand.
            self.import_by_hand(node, msg.answer.body)
        if rate and self.rng.random() < rate / 2:
            self.crash(node.code, self.rng.randint(MINUTE, 2 * HOUR))  # right after it committed

    def import_by_hand(self, node: SimNode, data: bytes) -> str:
        """A hub file imported at the station; one it already took must change nothing."""
        if not node.up:
            return "down"
        outcome = ""

        def run() -> bool:
            nonlocal outcome
            outcome = self.late_file(node, data)
            return outcome == "accepted"

        self.take(node, data, "file", run)
        return outcome

    def take(self, node: SimNode, data: bytes, what: str, process: Callable[[], bool]) -> None:
        """Let a station process a hub message, checking that taking one a second time changes nothing.

        Its data (log, records, counters, catalogue, feed cursor) must not move at all. Its outbox may
        legitimately move when other answers came in between (a late gap answer re-queues batches), so
        the outbox is held to idempotence: unchanged if nothing moved it since the first time."""
        digest = hashlib.sha256(data).digest()
        done = self.node_done[node.code]
        if digest not in done:
            if process():
                done[digest] = self.node_outbox(node)
            return
        data_before, outbox_before = self.node_data(node), self.node_outbox(node)
        process()
        self.checks.unchanged(
            f"{node.code} took a hub {what} again and its data changed", data_before, self.node_data(node)
        )
        if done[digest] == outbox_before:
            self.checks.unchanged(
                f"{node.code} took a hub {what} twice in a row and its outbox changed",
                outbox_before,
                self.node_outbox(node),
            )

    def late_file(self, node: SimNode, data: bytes) -> str:
        try:
            kind = str(peek_header(data).get("kind", ""))
        except RemoteProtocolError:
            return "unreadable"
        if kind not in ("acks", "feed", "catalogue"):
            return "ignored"
        outcome = import_file(node, data)
        self.note(f"{node.code} imported a late {kind}: {outcome[:80]}")
        return outcome

    @staticmethod
    def node_data(node: SimNode) -> bytes:
        s = node.store
        return hashlib.sha256(
            pack(
                [
                    s.records.fingerprint_items(),
                    s.epoch,
                    s.seq,
                    s.batched_seq,
                    s.counter,
                    s.chain,
                    s.feed_cursor,
                    sorted(s.catalogues),
                ]
            )
        ).digest()

    @staticmethod
    def node_outbox(node: SimNode) -> bytes:
        return hashlib.sha256(pack([[r.hash, r.state] for r in node.store.outbox])).digest()

    def node_fingerprint(self, node: SimNode) -> bytes:
        return self.node_data(node) + self.node_outbox(node)

    # -- crashes ------------------------------------------------------------------------------------------

    def crash(self, target: str, downtime: int) -> None:
        if target == HUB:
            if not self.hub.up:
                return
            self.hub.up = False
        else:
            if not self.nodes[target].up:
                return
            self.nodes[target].up = False
            self.abort(target, "station crashed")
        self.note(f"{target} crashed")
        self.schedule(downtime, Event("restart", target))

    def on_restart(self, event: Event) -> None:
        if event.target == HUB:
            self.hub.up = True
        else:
            self.nodes[event.target].up = True
