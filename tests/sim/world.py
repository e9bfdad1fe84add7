"""One simulated district from one seed: the real hub, a township, its villages, a virtual clock and a queue.

Everything random comes from one ``random.Random(seed)``; the clock only moves when the queue says so; events are
processed in (time, insertion) order and each one is hashed into the trace as it runs, so the same seed gives the same
trace hash. The hub and the stations are the real code (district.py), each in its own folder; their conversations are
node/conversation.py's, carried by the simulated network. After the fault phase the world heals (links back, crashed
processes restarted, clocks corrected) and gives the district at most three sync rounds to converge.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub import keyring
from hub.service import Hub
from node import commands, conversation, uplink
from node import reconcile as node_reconcile
from node.conversation import Answer, Conversation, Request
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.keys import key_id
from replica.errors import NotApplied, Refused
from sync.change import Change
from sync.merkle import ReconcileError
from sync.session import AckResult
from tests.sim import actions, compromised, district, faults, freeze, relay, rotation
from tests.sim.checkers import Checks, Violation
from tests.sim.district import HubDoor, HubDown, Node
from tests.sim.faults import HOUR, MINUTE, START_MS
from tests.sim.healing import heal
from tests.sim.network import HUB, Event, Links, Msg, Queue, Wire
from tests.sim.stats import RunStats

KEY_ID = re.compile(r"\b[0-9a-f]{12,}")
TIMEOUT_MS = 120_000  # node/client.py: aiohttp total timeout
ROUND_ERRORS = (Refused, RemoteProtocolError, ReconcileError, ValueError, NotApplied)


@dataclass
class Conv:
    id: int
    kind: str
    gen: Conversation[object]
    req: int = 0
    replayed: bool = False  # a frozen network answered one of its pulls with an old page
    genuine: bool = False  # the hub itself answered one of its pulls
    meanwhile: Callable[[], object] | None = None  # the station's work while its request travels


@dataclass
class World:
    seed: int
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
        self.snapshots: dict[str, str] = {}  # station -> its backup file
        self.cloned: set[str] = set()  # stations put back by a raw file copy: only they may fork
        self.hub_snapshot: tuple[str, set[bytes]] | None = None
        self.compromise_rng: random.Random | None = None  # set when a station turns compromised
        self.rotation_rng: random.Random | None = None  # set when the hub rotates its keys (rotation.py)
        self.retired: list[tuple[int, Ed25519PrivateKey]] = []  # (last list naming it, key) after a rotation
        self.frozen: dict[str, int] = {}  # station -> until when its pulls are answered by a replay (freeze.py)
        self.last_page: dict[str, bytes] = {}  # the last genuine page each station received
        self.hub_committed: set[bytes] = set()
        self.relay: relay.Relay | None = None  # villages through the township (relay.py)
        # Hub answers each station has taken, with its outbox as it was right after (see ``take``).
        self.node_done: dict[str, dict[bytes, bytes]] = {}
        self.keep_open = False  # run() leaves the folders open (tests look at them afterwards)
        self.opened = False

    def open(self) -> None:
        """Copy the district's folders for this run and open the hub and the stations on its clocks."""
        if self.opened:
            return
        self.opened = True
        self.root = district.scratch() / f"run-{os.getpid()}-{self.seed}"
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.copytree(district.template(tuple(self.plan.nodes)), self.root)
        # Batches as large as the plan says (node/uplink.py reads its limit when it builds), and ids made
        # from the seed's stream: the real `uuid7` draws from os.urandom and the wall clock.
        self._globals = (uplink.MAX_BATCH_CHANGES, commands.uuid7, district.install_probes())  # close() undoes
        uplink.MAX_BATCH_CHANGES = self.plan.max_batch
        commands.uuid7 = lambda ms=None: uuid7_from(self.rng, self.now)  # type: ignore[assignment]
        # A third of the seeds run two hub processes over the one folder (hub serve --workers 2), drawn
        # from a stream of their own so every other draw of a seed stays what it was.
        picks = random.Random(f"hub-processes:{self.seed}")
        processes = 2 if picks.random() < 1 / 3 else 1
        self.hub = HubDoor(
            self.root / "hub", self.hub_clock, self.plan.page_limit, self._hub_failed,
            on_open=self._watch_hub, processes=processes, choose=picks.randrange,
        )  # fmt: skip
        self.listed: dict[int, bytes] = {self._keys_version(): self.hub.hub.keys.sign_pub}
        self.nodes: dict[str, Node] = {}
        for code in self.plan.nodes:
            node = Node(code, self.root / code, self._clock_of(code))
            node.on_open = self._watch_node
            self._watch_node(node)
            self.nodes[code] = node
            self.archive[code] = {}
            self.node_done[code] = {}
        self.rogue = actions.Rogue(district.ROGUE)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
        for node in self.nodes.values():
            node.close()
            district.REISSUED.pop(node.folder, None)
        self.hub.close()
        shutil.rmtree(self.root, ignore_errors=True)
        uplink.MAX_BATCH_CHANGES, commands.uuid7, take_out = self._globals  # later tests share this process
        take_out()  # the probes in replica.records and node.epoch

    # -- clocks and watchers ------------------------------------------------------------------------------

    def hub_clock(self) -> int:
        ms = self.now + self.hub_skew
        self.hub_wall_high = max(self.hub_wall_high, ms)
        return ms

    def _clock_of(self, code: str) -> Callable[[], int]:
        """A station's wall clock: virtual time plus its skew, which faults may change at any moment."""
        return lambda: self.now + self.skews[code]

    def _keys_version(self) -> int:
        chain = keyring.load_chain(self.hub.folder)
        return chain.version if chain is not None else 0

    def _watch_hub(self, hub: Hub) -> None:
        district.WATCHERS[id(hub.store.conn)] = self.checks.watcher("hub", hub.hub_id, self.hub_clock)
        write = hub.write

        def wrote(entity: str, rec_id: str, fields: object, base: object, **kw: bool) -> Change:
            change = write(entity, rec_id, fields, base, **kw)  # type: ignore[arg-type]
            self.checks.authored_by(change)
            return change

        hub.write = wrote  # type: ignore[method-assign]

    def _watch_node(self, node: Node) -> None:
        st = node.st
        district.WATCHERS[id(st.conn)] = self.checks.watcher(node.code, node.code, None)
        district.REISSUED[node.folder] = lambda changes: [self.checks.authored_by(c) for c in changes]
        for name in ("write", "write_unchecked"):
            real = getattr(st, name)

            def wrote(entity: str, rec_id: str, fields: object, base: object, _real=real, **kw: str) -> Change:  # type: ignore[no-untyped-def]
                change = _real(entity, rec_id, fields, base, **kw)  # kw: the author (issue 16)
                self.checks.authored_by(change)
                return change

            setattr(st, name, wrote)

    def _hub_failed(self, what: str) -> None:
        self.checks.fail("hub_error", what)

    # -- the loop -----------------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        # Key ids and hashes in refusals differ from run to run (rotations draw their keys from the OS).
        line = f"{self.now - START_MS} {KEY_ID.sub('<id>', text)}"
        self.trace.update(line.encode() + b"\n")
        if self.keep_log:
            self.log.append(line)

    def schedule(self, delay: int, event: Event) -> None:
        self.queue.push(self.now + delay, event)

    def run(self) -> list[Violation]:
        self.open()
        try:
            actions.schedule_all(self)
            compromised.schedule(self, self.seed)
            rotation.schedule(self, self.seed)
            freeze.schedule(self, self.seed)
            relay.schedule(self, self.seed)
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
        finally:
            if not self.keep_open:
                self.close()
        return self.checks.violations

    def after_step(self) -> None:
        for node in self.nodes.values():
            self.checks.catalogue(node)
        self.checks.clocks(self.nodes.values(), self.hub, self.hub_wall_high)

    # -- messages and conversations -------------------------------------------------------------------------

    def send(self, msg: Msg) -> None:
        if msg.kind == "pull" and msg.request is not None and msg.src in self.frozen:
            page = self.last_page.get(msg.src)
            if page is not None:  # the proxy in front of the station answers; the hub never hears of it
                self.stats.replays += 1
                self.note(f"frozen: {msg.src}'s pull answered with an old page")
                reply = Msg(freeze.PROXY, msg.src, msg.conv, msg.req, "pull", answer=Answer(200, page))
                self.schedule(freeze.DELAY_MS, Event("deliver", msg=reply))
                return
        if not self.links.open(msg.src, msg.dst):
            self.note(f"cut {msg.describe()}")
            return
        for delay in self.wire.deliveries():
            self.schedule(delay, Event("deliver", msg=msg))

    def conversation(self, node: Node, kind: str) -> Conversation[object]:
        if kind == "sync":
            return conversation.sync(node.st, max_count=self.plan.max_push, nonce=node.nonce)  # type: ignore[return-value]
        if kind == "forward":  # the township carries its villages' traffic (relay.py)
            return relay.forward(self)  # type: ignore[return-value]
        return node_reconcile.session(node.st, max_count=self.plan.max_push)  # type: ignore[return-value]

    def start(self, code: str, kind: str) -> None:
        node = self.nodes[code]
        if not node.up or code in self.convs or relay.instead(self, code, kind):
            return
        self.conv_ids += 1
        conv = Conv(self.conv_ids, kind, self.conversation(node, kind))
        self.convs[code] = conv
        self._advance(node, conv, None)
        self.travel(conv)
        self.keep_frames(node)

    @staticmethod
    def travel(conv: Conv) -> None:
        """node/client.py builds the next batches while a request travels (in a worker thread)."""
        if conv.meanwhile is not None:
            work, conv.meanwhile = conv.meanwhile, None
            work()

    def keep_frames(self, node: Node) -> None:
        """Every batch a station built, as it built it (USB replays and tampering draw from these)."""
        for h, frame in node.st.conn.execute(
            "SELECT hash, frame FROM outbox WHERE length(frame) > 0 ORDER BY epoch, first_seq"
        ):
            self.archive[node.code].setdefault(bytes(h), bytes(frame))

    def _advance(self, node: Node, conv: Conv, answer: Answer | None) -> bool:
        """Resume a conversation with the hub's answer; False when the station refused the answer."""
        try:
            request = next(conv.gen) if answer is None else conv.gen.send(answer)
        except StopIteration:
            self.convs.pop(node.code, None)
            self.stats.rounds_done += 1
            self.note(f"{node.code} {conv.kind} round done")
            self._round_ended(node.code, conv)
            relay.round_done(self, node.code, conv.kind)
            return True
        except ROUND_ERRORS as exc:
            self.convs.pop(node.code, None)
            self.stats.rounds_failed += 1
            self.note(f"{node.code} {conv.kind} round failed: {str(exc)[:120]}")
            self._round_ended(node.code, conv)
            return False
        conv.meanwhile = request.meanwhile  # run by ``travel``, once the answer before it is taken
        conv.req += 1
        self.send(Msg(node.code, HUB, conv.id, conv.req, request.kind, request=request))
        self.schedule(TIMEOUT_MS, Event("timeout", node.code, conv.id, conv.req))
        return True

    def abort(self, code: str, why: str) -> None:
        conv = self.convs.pop(code, None)
        if conv is not None:
            conv.gen.close()  # its finally blocks run, as when aiohttp raises
            self.stats.rounds_failed += 1
            self.note(f"{code} {conv.kind} round aborted: {why[:120]}")
            self._round_ended(code, conv)

    def _round_ended(self, code: str, conv: Conv) -> None:
        """A round whose pulls only a frozen network answered must leave the station flagged stale."""
        if conv.replayed and not conv.genuine and conv.kind == "sync":  # not the township's forwarding
            stale = self.nodes[code].meta("stale_rounds")
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

    def hub_answer(self, request: Request, crash_at: int | None = None) -> Answer:
        return self.hub.answer(request, self.ingest, crash_at)

    def ingest(self, frame: bytes) -> object:
        """Ingest one frame; a frame the hub already committed must leave it exactly as it was."""
        digest = hashlib.sha256(frame).digest()
        before = district.hub_fingerprint(self.hub.hub) if digest in self.hub_committed else None
        ack = self.hub.ingest(frame)
        self.stats.acks[ack.result.value] = self.stats.acks.get(ack.result.value, 0) + 1
        if before is not None:
            self.checks.unchanged(
                f"hub took a batch again ({ack.result.value}) and changed",
                before,
                district.hub_fingerprint(self.hub.hub),
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
            frames = len(district.frames_of(msg.request)) if msg.kind == "push" else 1
            crash_at = self.rng.randint(0, frames)
        try:
            answer = self.hub_answer(msg.request, crash_at)
        except HubDown:
            self.crash(HUB, self.rng.randint(MINUTE, 2 * HOUR))
            return
        self.send(Msg(HUB, msg.src, msg.conv, msg.req, msg.kind, answer=answer))

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
        if msg.kind == "pull" and msg.answer.status == 200 and not replay:
            self.last_page[node.code] = msg.answer.body  # what a proxy on the path saw go by
        if conv is not None and conv.id == msg.conv and conv.req == msg.req:
            answer = msg.answer
            if replay:
                conv.replayed = True
                before = district.node_data(node.st)
                self._advance(node, conv, answer)
                self.checks.unchanged_by_replay(node.code, before, district.node_data(node.st))
            elif msg.kind == "keys":  # public and unsigned: "nothing new" is the same bytes every round
                self._advance(node, conv, answer)
            else:
                conv.genuine = conv.genuine or (msg.kind == "pull" and answer.status == 200)
                self.take(node, answer.body, "answer", lambda: self._advance(node, conv, answer))
            self.travel(conv)
        elif replay:
            pass  # a late answer from the proxy, on a connection already closed
        elif msg.answer.status == 200:
            # A late or duplicated answer: the station treats it like a hub file carried by hand.
            self.import_by_hand(node, msg.answer.body)
        if rate and self.rng.random() < rate / 2:
            self.crash(node.code, self.rng.randint(MINUTE, 2 * HOUR))  # right after it committed

    def import_by_hand(self, node: Node, data: bytes) -> str:
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

    def take(self, node: Node, data: bytes, what: str, process: Callable[[], bool]) -> None:
        """Let a station process a hub message, checking that taking one a second time changes nothing.

        Its data (log, records, counters, catalogue, feed cursor) must not move at all. Its outbox may
        legitimately move when other answers came in between (a late gap answer re-queues batches), so
        the outbox is held to idempotence: unchanged if nothing moved it since the first time."""
        digest = hashlib.sha256(data).digest()
        done = self.node_done[node.code]
        if digest not in done:
            # A page from a restored hub only restarts the feed (node/feed.py): taken again, it applies.
            generation = node.st.meta.text("hub_generation")
            if process() and node.st.meta.text("hub_generation") == generation:
                done[digest] = district.node_outbox(node.st)
            return
        data_before, outbox_before = district.node_data(node.st), district.node_outbox(node.st)
        process()
        self.checks.unchanged(
            f"{node.code} took a hub {what} again and its data changed", data_before, district.node_data(node.st)
        )
        if done[digest] == outbox_before:
            self.checks.unchanged(
                f"{node.code} took a hub {what} twice in a row and its outbox changed",
                outbox_before,
                district.node_outbox(node.st),
            )

    def late_file(self, node: Node, data: bytes) -> str:
        try:
            kind = str(peek_header(data).get("kind", ""))
        except RemoteProtocolError:
            return "unreadable"
        if kind not in ("acks", "feed", "catalogue"):
            return "ignored"
        outcome = self.import_file(node, data, kind)
        self.note(f"{node.code} imported a late {kind}: {outcome[:80]}")
        return outcome

    def import_file(self, node: Node, data: bytes, kind: str) -> str:
        """`node import` of one hub file; what it accepted must be signed by the key its key list names."""
        version = node.meta("hub_keys_version")
        outcome = node.import_file(data, f"{kind}-{hashlib.sha256(data).hexdigest()[:12]}.sjd")
        if outcome == "accepted":
            listed = self.listed.get(version)
            self.checks.signed_by_listed(
                node.code, kind, str(peek_header(data).get("signer_key", "")), key_id(listed) if listed else ""
            )
        return outcome

    def fingerprint(self, node: Node) -> bytes:
        return district.node_data(node.st) + district.node_outbox(node.st)

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


def uuid7_from(rng: random.Random, now: int) -> str:
    """A UUIDv7 like replica.ids.uuid7's, its random bits from the run's stream."""
    import uuid

    rand = rng.getrandbits(80)
    value = (now & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62
    return str(uuid.UUID(int=value | rand & ((1 << 62) - 1)))
