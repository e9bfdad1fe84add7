"""The simulated district is the real code: a hub (hub/) and its stations (node/), each a folder of its
own in a temporary directory, every one on a virtual clock the world injects.

Stations talk to the hub in node/conversation.py's requests; ``HubDoor.answer`` hands each one to the
functions hub/web/sync.py's handlers call (``ingest_frame``, ``feed_page``, ``hub.reconcile.handle``,
``keyring.bundle``), with what those handlers check around them, minus aiohttp. That glue is the one
part of the hub the simulator spells out itself. Nothing here decides anything a district decides.

Two probes watch the real code without changing it (probes.py): every merge into any replica's
records and every re-issue of a station's changes under a new epoch are reported to the replica's
watcher, which is how the checkers see each step as it happens.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import shutil
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hub import enrolment, keyring, shared_state
from hub import reconcile as hub_reconcile
from hub.feed import chain_at, feed_page
from hub.ingest import FrameAck, ingest_frame
from hub.service import Hub
from hub.usb_files import note_status
from node import epoch, uplink, usb_files
from node.conversation import Answer, Request
from node.enrolment import _pin
from node.station import Station
from node.store import DB_NAME
from protocol.codec import pack, unpack
from protocol.document import open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.feed import MAX_NONCE_BYTES, PullRequest
from protocol.keys import public_bytes, sealing_key_from_seed, signing_key_from_seed
from protocol.reconciliation import ReconcileRequest
from replica.errors import Refused
from tests.sim import relay_usb
from tests.sim.catalogue import catalogue_doc
from tests.sim.faults import START_MS
from tests.sim.probes import REISSUED, WATCHERS, install_probes  # noqa: F401 (world.py reads them here)

HUB_ID = "360802"
ROGUE = "R99"
ROGUE_SEED = bytes(range(32))
B = TypeVar("B")
PULL_WINDOW_MS = 15 * 60 * 1000  # hub/web/sync.py: a pull signed further from hub time than this is stale


def quiet(conn: object) -> None:
    """The simulator's disk is a temporary folder it throws away: no fsync per commit."""
    conn.execute("PRAGMA synchronous=OFF")  # type: ignore[attr-defined]


# -- the folders, built once per process and copied for every run -------------------------------------------

_TEMPLATES: dict[tuple[str, ...], Path] = {}
_SCRATCH: list[Path] = []


def scratch() -> Path:
    """The folder runs live in (in memory where the system has one), removed when the process that made
    it exits; worker processes forked after it share it."""
    if not _SCRATCH:
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
        _SCRATCH.append(Path(tempfile.mkdtemp(prefix="sanji-sim-", dir=base)))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0]


def tier_of(code: str) -> tuple[str, str]:
    return ("township", "") if code.startswith("T") else ("village", "T01")


def template(codes: tuple[str, ...]) -> Path:
    """A hub with these stations (and the rogue) enrolled, as `node init` and `hub enroll` leave them."""
    if codes in _TEMPLATES:
        return _TEMPLATES[codes]
    root = scratch() / f"template-{os.getpid()}-{len(_TEMPLATES)}"
    hub = Hub.create(
        root / "hub", district=HUB_ID, name="模拟区行政审批局", catalogue=catalogue_doc(1), clock=lambda: START_MS
    )
    for code in codes:
        tier, parent = tier_of(code)
        token = enrolment.register(hub, station=code, name=f"{code} 模拟站", tier=tier, parent=parent)
        st = Station(root / code, clock=lambda: START_MS, create=True)
        answer = enrolment.redeem(hub, token=token, sign_pub=st.keys.sign_pub, seal_pub=st.keys.seal_pub)
        _pin(st, answer, token, "", online=True)
        st.close()
    token = enrolment.register(hub, station=ROGUE, name="越权站", tier="village", parent="T01")
    seal = sealing_key_from_seed(bytes(32))
    enrolment.redeem(
        hub, token=token, sign_pub=public_bytes(signing_key_from_seed(ROGUE_SEED)), seal_pub=public_bytes(seal)
    )
    hub.close()
    _TEMPLATES[codes] = root
    return root


# -- one station ---------------------------------------------------------------------------------------------


@dataclass
class Node:
    """A station folder and whether its process runs; ``st`` is reopened after a restore."""

    code: str
    folder: Path
    clock: Callable[[], int]
    st: Station = field(init=False)
    up: bool = True
    wall_high: int = 0  # the latest wall time its clock has shown (for the HLC checks)
    pulls: int = 0  # numbers its pull nonces, so that a seed stays deterministic
    on_open: Callable[[Node], None] | None = None  # the world's watchers, attached again after a restore

    def __post_init__(self) -> None:
        self.open()

    def now(self) -> int:
        ms = self.clock()
        self.wall_high = max(self.wall_high, ms)
        return ms

    def open(self) -> None:
        self.st = Station(self.folder, clock=self.now)
        quiet(self.st.conn)
        if self.on_open is not None:
            self.on_open(self)

    def close(self) -> None:
        WATCHERS.pop(id(self.st.conn), None)
        self.st.close()

    def nonce(self) -> bytes:
        self.pulls += 1
        return hashlib.sha256(f"sim-nonce:{self.code}:{self.pulls}".encode()).digest()[:16]

    # views
    def meta(self, name: str) -> int:
        return self.st.meta.int(name)

    @property
    def catalogue_version(self) -> int:
        return int(self.st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0)

    def backup(self, out: Path) -> None:
        epoch.backup(self.st, out)

    def restore(self, source: Path) -> int:
        """`node restore`: the backup put back, in a new epoch."""
        self.close()
        result = epoch.restore(self.folder, source, clock=self.now)
        self.open()
        return int(str(result["epoch"]))

    def copy_back(self, source: Path) -> int:
        """The database file copied back by hand: nobody starts a new epoch."""
        self.close()
        for suffix in ("-wal", "-shm"):
            Path(str(self.folder / DB_NAME) + suffix).unlink(missing_ok=True)
        shutil.copyfile(source, self.folder / DB_NAME)
        self.open()
        return self.meta("epoch")

    def import_file(self, data: bytes, name: str) -> str:
        """A hub file carried by hand (`node import`): "accepted", or why not."""
        path = self.folder.parent / "usb" / self.code / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        try:
            out = usb_files.import_files(self.st, [path])
        finally:
            path.unlink(missing_ok=True)
        rejected = out["rejected"]
        assert isinstance(rejected, list)
        if rejected:
            return f"refused: {rejected[0].get('reason', '')}"
        return "accepted" if out["accepted"] else "ignored"


# -- the hub's door --------------------------------------------------------------------------------------------


class HubDown(Exception):
    """The hub process crashed while it handled a request: what it committed so far stays."""


@dataclass
class HubDoor:
    """The hub folder, opened, and what its HTTP routes do with each request (hub/app.py, minus aiohttp)."""

    folder: Path
    clock: Callable[[], int]
    page_limit: int
    failed: Callable[[str], None]  # an exception in a handler: aiohttp answers 500, the run reports it
    hub: Hub = field(init=False)
    up: bool = True
    cache: hub_reconcile.TreeCache = field(default_factory=hub_reconcile.TreeCache)
    on_open: Callable[[Hub], None] | None = None  # each process, as it opens
    # Several hub processes over one folder (``hub serve --workers N``): each request is answered by
    # the one ``choose`` names, so what a process keeps in memory must never go stale behind the
    # others' writes. One process unless the world draws more.
    processes: int = 1
    choose: Callable[[int], int] | None = None
    hubs: list[Hub] = field(init=False, default_factory=list)
    caches: list[hub_reconcile.TreeCache] = field(init=False, default_factory=list)
    answered: list[int] = field(init=False, default_factory=list)  # requests each process answered

    def __post_init__(self) -> None:
        self.open()

    def open(self) -> None:
        self.hubs = [Hub.open(self.folder, clock=self.clock) for _ in range(self.processes)]
        self.caches = [hub_reconcile.TreeCache() for _ in self.hubs]
        self.answered = self.answered or [0] * self.processes
        for i in reversed(range(len(self.hubs))):  # ends serving with process 0
            self.serve_with(i)
            quiet(self.hub.store.conn)
            if self.on_open is not None:
                self.on_open(self.hub)

    def serve_with(self, i: int) -> None:
        """The process that answers what comes next (and that the world's actions act through)."""
        self.hub, self.cache = self.hubs[i], self.caches[i]

    def pick(self) -> None:
        i = self.choose(len(self.hubs)) if len(self.hubs) > 1 and self.choose is not None else 0
        self.serve_with(i)
        self.answered[i] += 1
        shared_state.catch_up(self.hub)  # hub/app.py's middleware: what other processes changed

    @property
    def hub_id(self) -> str:
        return self.hub.hub_id

    def close(self) -> None:
        for hub in self.hubs:
            WATCHERS.pop(id(hub.store.conn), None)
            hub.close()

    def ingest(self, frame: bytes, source: str = "sim") -> FrameAck:
        return ingest_frame(self.hub, frame, source=source)

    def acks_answer(self, acks: list[FrameAck]) -> Answer:
        """hub/app.py ``push``: the signed acknowledgements, or the first refusal when none is authentic."""
        authentic = [a for a in acks if a.batch]
        if not authentic:
            first = acks[0]
            return Answer(first.status if first.status >= 400 else 403, message=first.reason)
        doc = sign_document(
            "acks",
            {"acks": [a.to_wire() for a in acks]},
            signer=self.hub.hub_id,
            recipient=authentic[0].origin,
            signing_key=self.hub.keys.sign,
        )
        return Answer(200, doc)

    def answer(self, request: Request, ingest: Callable[[bytes], FrameAck], crash_at: int | None = None) -> Answer:
        """The hub's answer to one request; HubDown when it crashed at ``crash_at`` (push: before that
        frame; otherwise before or after handling it)."""
        self.pick()
        try:
            if request.kind == "push":
                frames = unpack(request.body)
                assert isinstance(frames, list)
                acks = []
                for i, frame in enumerate(frames):
                    if crash_at == i:
                        raise HubDown
                    acks.append(ingest(bytes(frame)))
                if crash_at is not None:
                    raise HubDown
                return self.acks_answer(acks)
            if crash_at == 0:
                raise HubDown
            answer = self._answer(request)
            if crash_at is not None:
                raise HubDown
            return answer
        except RemoteProtocolError as exc:
            return Answer(exc.status, str(exc).encode(), str(exc))
        except Refused as exc:
            return Answer(400, str(exc).encode(), str(exc))
        except HubDown:
            raise
        except Exception as exc:  # aiohttp would answer 500; a simulator run must not hide it
            self.failed(f"{request.kind}: {exc.__class__.__name__}: {exc}\n{traceback.format_exc(limit=-3)}")
            return Answer(500, b"internal error", "internal error")

    def _answer(self, request: Request) -> Answer:
        hub = self.hub
        if request.kind == "keys":  # hub/web/enrolment.py: public, unsigned; stations verify what it holds
            return Answer(200, pack(keyring.bundle(hub, after=int(request.params.get("after", "0")))))
        if request.kind == "pull":
            data = base64.b64decode(request.headers[uplink.REQUEST_HEADER])
            try:
                station, pull = self._identity(data, PullRequest.from_wire, PullRequest.KIND)
            except Refused as exc:  # a village's stick status, carried on by its township (relay_usb.py)
                station, pull = relay_usb.carried_status(hub, request, data, exc)
                with hub.store.transaction():
                    note_status(hub.store, station, pull, hub.clock())
            else:
                self._seen(station, pull)
            page = feed_page(
                hub,
                station,
                after=pull.after,
                catalogue_version=pull.catalogue_version,
                limit=self.page_limit,
                nonce=pull.nonce if 0 < len(pull.nonce) <= MAX_NONCE_BYTES else b"",
                chain=chain_at(hub, station, pull.epoch),
            )
            return Answer(200, page)
        assert request.kind == "reconcile"
        station, step = self._identity(request.body, ReconcileRequest.from_wire, ReconcileRequest.KIND)
        return Answer(200, hub_reconcile.handle(hub, self.cache, station, step))

    def _seen(self, station: str, pull: PullRequest) -> None:
        """What an online pull says of its station (hub/web/sync.py ``_note_pull``)."""
        hub = self.hub
        with hub.store.transaction():
            hub.store.seen(
                station,
                hub.clock(),
                backlog=pull.pending,
                catalogue_version=pull.catalogue_version,
                feed_ack=pull.after,
                skew_ms=pull.at_ms - hub.clock(),
                error=None,
                via="network",
            )
            seq, ep = pull.seq, pull.epoch
            if seq is not None and ep is not None and 0 <= seq < 2**62 and 0 < ep < 2**62:
                hub.store.note_horizon(station, ep, seq, pull.after)

    def _identity(self, data: bytes, read: Callable[[object], B], kind: str) -> tuple[str, B]:
        """The signer and typed body of a signed request, as hub/web/sync.py opens it."""
        hub = self.hub
        doc = open_document(data, kind=kind, recipient=hub.hub_id, verify_key=hub.verify_key)
        body = read(doc.body)
        at_ms = getattr(body, "at_ms", None)
        if type(at_ms) is not int or abs(at_ms - hub.clock()) > PULL_WINDOW_MS:
            raise Refused("request is stale or from a clock far off; check the station's clock", code="stale")
        return doc.signer, body

    def backup(self, out: Path) -> None:
        from hub.backup import backup

        backup(self.hub, out)

    def restore(self, source: Path) -> None:
        from hub.restore import restore

        self.close()
        restore(self.folder, source)
        self.open()


def rogue_key():  # type: ignore[no-untyped-def]
    return signing_key_from_seed(ROGUE_SEED)


def frames_of(request: Request) -> list[bytes]:
    frames = unpack(request.body)
    return [bytes(f) for f in frames] if isinstance(frames, list) else []


# -- what the checkers compare -------------------------------------------------------------------------------


def _digest(parts: list[object]) -> bytes:
    return hashlib.sha256(pack(parts)).digest()


def _rows(conn: object, sql: str) -> list[list[object]]:
    return [list(r) for r in conn.execute(sql)]  # type: ignore[attr-defined]


def node_data(st: Station) -> bytes:
    """Everything a replayed or duplicated message must leave alone at a station: its log, records,
    counters, chain, feed cursor and catalogue releases (not its outbox: see World.take)."""
    meta = [
        st.meta.get(k) for k in ("epoch", "seq", "batched_seq", "counter", "chain", "feed_cursor", "hub_generation")
    ]
    return _digest(
        [
            _rows(st.conn, "SELECT origin, epoch, seq FROM changes ORDER BY origin, epoch, seq"),
            _rows(st.conn, "SELECT entity, id, state FROM records ORDER BY entity, id"),
            meta,
            _rows(st.conn, "SELECT version FROM catalogues ORDER BY version"),
        ]
    )


def node_outbox(st: Station) -> bytes:
    return _digest(_rows(st.conn, "SELECT hash, state FROM outbox ORDER BY epoch, first_seq, hash"))


def hub_fingerprint(hub: Hub) -> bytes:
    """Everything a replayed or duplicated batch must leave alone at the hub (not its clocks, refusal
    counts or alert counters)."""
    conn = hub.store.conn
    return _digest(
        [
            _rows(conn, "SELECT origin, epoch, seq FROM changes ORDER BY origin, epoch, seq"),
            _rows(conn, "SELECT entity, id, state FROM records ORDER BY entity, id"),
            _rows(conn, "SELECT * FROM cursors ORDER BY 1, 2"),
            _rows(conn, "SELECT hash FROM batches ORDER BY hash"),
            _rows(conn, "SELECT origin, epoch, seq, batch, reason, whole_batch, state FROM quarantine ORDER BY id"),
            _rows(conn, "SELECT station, change FROM feed ORDER BY station, change"),
            _rows(conn, "SELECT DISTINCT kind, station FROM alerts ORDER BY kind, station"),
        ]
    )
