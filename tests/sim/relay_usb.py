"""USB through the township (issue 17): a village with no line to its township either carries a stick
there instead of visiting the relay listener.

A trip is the real commands in order: the village's ``node export`` (node/usb_files.py ``export``: its
unsettled batches and a signed status, a pull request with no nonce), the township's ``node import T``
of that stick, which takes the village's files as relay cargo (node/relay_cargo.py ``split_cargo``,
into the same queue as the relay listener), then the township's ``node export T --for VILLAGE``
(``export_for``: the hub's key history the township keeps, then the hub's answers waiting for it,
forgotten at the township once written), which the
village imports as usual (``World.import_by_hand``, one file at a time, so that taking one twice is
checked to change nothing). The township forwards the cargo at its next round with the hub, like any
relayed traffic: a stick status hours old is answered as ``hub export`` would (hub/web/sync.py
``_pull_identity``, mirrored by ``carried_status``), so the answers come back on the next trip.

The relay may misbehave with the cargo too (relay_malice.py): what it forwards goes through ``up``
like the listener's, what it writes on the stick through ``down``. A file it wrote, cut short or
swapped in must leave the village as it was (``relay_tamper_taken``); a genuine page it replays may
move where the village stands in the hub's feed, and nothing else (``replayed``).

Every third turn of the fault phase a stick village reaches the relay listener instead (``by_listener``;
while healing, the stick only, so that what only the stick can settle is still shown to): it collects the
hub's answer to its last stick status there, a page with no nonce, which it must take as a stick page
and never count against an honest relay (``honest_relay_named``; the bug of issue 17's new-user walk).

The simulator's stations are named T01, V01…, not 360802-T01-05: ``villages_of`` lets the real code
take them as the township's villages for the length of one call, and puts the real test back.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from node import relay_cargo, relay_queue, usb_files
from node.station import Station
from protocol.codec import pack
from protocol.errors import RemoteProtocolError
from protocol.feed import PullRequest
from protocol.frame import peek_header, verify_frame
from protocol.hubkeys import KEYS_MAGIC
from replica.errors import Refused

if TYPE_CHECKING:
    from hub.service import Hub
    from node.conversation import Request
    from tests.sim.district import Node
    from tests.sim.world import World

SHARE = 0.4  # of the relay seeds: some of their villages travel by stick


def draw(seed: int, villages: list[str]) -> set[str]:
    """The relay villages that carry sticks to the township instead (from a stream of their own)."""
    rng = random.Random(f"relay-usb:{seed}")
    if rng.random() >= SHARE:
        return set()
    return {code for code in villages if rng.random() < 0.6} or {rng.choice(villages)}


@contextmanager
def villages_of(villages: set[str]) -> Iterator[None]:
    real = relay_queue.is_village_of

    def ours(township: str, origin: str) -> bool:
        return origin in villages or real(township, origin)

    relay_queue.is_village_of = ours
    relay_cargo.is_village_of = ours
    try:
        yield
    finally:
        relay_queue.is_village_of = real
        relay_cargo.is_village_of = real


def trip(world: World, node: Node) -> bool:
    """One trip to the township and back; True when the village took anything the hub sent."""
    relay = world.relay
    assert relay is not None
    township = world.nodes[relay.township]
    if not node.up or not township.up:
        world.note(f"{node.code} stick trip: {'the township' if node.up else 'the village'} is down")
        return False
    world.stats.usb_trips += 1
    stick = world.root / "usb-trips" / f"{node.code}-{world.stats.usb_trips}"
    try:
        written = usb_files.export(node.st, stick / "up")
        world.keep_frames(node)
        with villages_of(set(relay.windows)):
            taken = usb_files.import_files(township.st, [stick / "up"])
            back = relay_cargo.export_for(township.st, node.code, stick / "down")
        refused = [r for r in taken["relayed"] if "refused" in r]  # type: ignore[union-attr]
        world.note(
            f"{node.code} stick: {len(written['files'])} file(s) to {relay.township}"  # type: ignore[arg-type]
            f" ({len(refused)} refused), {len(back['files'])} back"  # type: ignore[arg-type]
        )
        return carry_back(world, node, [stick / "down" / name for name in sorted(back["files"])])  # type: ignore[arg-type]
    except Refused as exc:
        world.note(f"{node.code} stick trip refused: {str(exc)[:100]}")
        return False
    finally:
        shutil.rmtree(stick, ignore_errors=True)


def carry_back(world: World, node: Node, files: list[object]) -> bool:
    """The village imports the township's export for it, as the relay chose to write it."""
    from pathlib import Path

    relay = world.relay
    assert relay is not None
    by_kind: dict[str, list[bytes]] = {}
    took = False
    for name in files:
        data = Path(str(name)).read_bytes()
        if Path(str(name)).suffix == ".sjk":  # the key history, first (node/usb_files.py reads it first)
            took |= keys_back(world, node, data, Path(str(name)).name)
            continue
        by_kind.setdefault("acks" if "_receipts_" in Path(str(name)).name else "feed", []).append(data)
    for kind, docs in sorted(by_kind.items()):
        for doc, tampered in relay.malice.down(world, node.code, kind, docs):
            if tampered and any(doc == d for _, d in relay.malice.handed.get(node.code, [])):
                took |= replayed(world, node, doc)
                continue
            if not tampered:
                took |= world.import_by_hand(node, doc) == "accepted"
                world.stats.relay_pages += kind == "feed"
                continue
            before = world.fingerprint(node)
            outcome = world.import_file(node, doc, _kind(doc, kind))
            world.stats.tampered_refused += outcome != "accepted"
            if world.fingerprint(node) != before:
                world.checks.fail("relay_tamper_taken", f"{node.code} took {kind} the relay tampered with, by USB")
    return took


def keys_back(world: World, node: Node, data: bytes, name: str) -> bool:
    """The hub's key history the township wrote on the stick, as the relay chose to (``bad_keys``: its
    documents altered, which the village's import must refuse and stay as it was)."""
    from tests.sim.relay import keys_held

    relay = world.relay
    assert relay is not None
    bundle, bent = relay.malice.keys(world, data[len(KEYS_MAGIC) :])
    before = keys_held(node) if bent else b""
    outcome = node.import_file(KEYS_MAGIC + (bundle or b""), name)
    world.note(f"{node.code} imported the key history from the stick: {outcome[:80]}")
    if bent:
        world.stats.keys_refused += outcome != "accepted"
        world.stats.tampered_refused += outcome != "accepted"
        if outcome == "accepted" or keys_held(node) != before:
            world.checks.fail("relay_tamper_taken", f"{node.code} took a key history the relay altered, by USB")
    return outcome == "accepted"


def by_listener(turns: dict[str, int], code: str) -> bool:
    """Every third turn a stick village reaches the relay listener instead (issue 17's new-user walk: a
    stick, then a network pull): it collects, with its own pages, the hub's answer to its last stick
    status, a page with no nonce (node/relay_client.py ``classify``)."""
    turns[code] = turns.get(code, 0) + 1
    return turns[code] % 3 == 0


def answerable(node: Node, page: bytes) -> bool:
    """A genuine page the relay hands again that the village may still take: the hub signed it for this
    village, and it has no nonce (its answer to a stick status: the relay cannot sign, and its trimmed
    memory may not say it handed it before) or answers a request of ours not answered over the
    listener yet (its first copy went home on a stick, as ``export --for`` writes every waiting page)."""
    try:
        header = verify_frame(page, recipient=node.code, verify_key=node.st.hub_key).header
    except RemoteProtocolError:
        return False
    nonce, kept = header.get("nonce"), node.st.meta.get("relay_nonces", [])
    return "nonce" not in header or (isinstance(nonce, bytes) and isinstance(kept, list) and nonce.hex() in kept)


def replayed(world: World, node: Node, page: bytes, take: Callable[[], bool] | None = None) -> bool:
    """A page the relay handed before, written on the stick again. It is still the hub's, and a stick's
    pages answer no nonce: one the village could not take then (a gap) it may take now. One from the
    hub's generation before a restore makes it start its feed over (node/feed.py: any other generation
    is taken as the newer), which costs a pass over the feed and nothing else: it must leave every
    record, change, counter and release as it was. Counted in the run's figures."""
    before = _content(node.st), node.st.meta.text("hub_generation")
    took = take() if take is not None else world.import_file(node, page, "feed") == "accepted"
    after = _content(node.st), node.st.meta.text("hub_generation")
    if after[1] != before[1]:
        world.stats.usb_generation_back += 1
        world.note(f"{node.code} went back to the hub's feed generation of a replayed page")
        if after[0] != before[0]:
            world.checks.fail("relay_tamper_taken", f"{node.code}'s data changed on a page replayed by stick")
    return took


def _content(st: Station) -> bytes:
    """A station's data but for where it stands in the hub's feed (district.node_data without it)."""
    meta = [st.meta.get(k) for k in ("epoch", "seq", "batched_seq", "counter", "chain")]
    return pack(
        [
            st.conn.execute("SELECT origin, epoch, seq FROM changes ORDER BY origin, epoch, seq").fetchall(),
            st.conn.execute("SELECT entity, id, state FROM records ORDER BY entity, id").fetchall(),
            meta,
            st.conn.execute("SELECT version FROM catalogues ORDER BY version").fetchall(),
        ]
    )


def _kind(doc: bytes, default: str) -> str:
    try:
        return str(peek_header(doc).get("kind", default))
    except Exception:
        return default


def carried_status(hub: Hub, request: Request, data: bytes, stale: Refused) -> tuple[str, PullRequest]:
    """hub/web/sync.py ``_pull_identity`` for a pull older than the window: a village's stick status
    carried on by its township is answered from its cursor; anything else stays refused as stale."""
    import hashlib

    from protocol import relay_label
    from protocol.document import open_document

    doc = open_document(data, kind=PullRequest.KIND, recipient=hub.hub_id, verify_key=hub.verify_key)
    body = PullRequest.from_wire(doc.body)
    label = str(request.headers.get(relay_label.RELAY_HEADER, ""))
    try:  # hub/relay_proof.py: only a township's signed word makes this a carried status
        relay_label.verify(
            label,
            str(request.headers.get(relay_label.PROOF_HEADER, "")),
            hub_id=hub.hub_id,
            route=relay_label.PULL_ROUTE,
            body_sha256=hashlib.sha256(data).digest(),
            now_ms=hub.clock(),
            verify_key=hub.verify_key,
        )
    except RemoteProtocolError:
        raise stale from None
    if stale.code != "stale" or body.nonce or body.at_ms >= hub.clock():
        raise stale
    return doc.signer, body
