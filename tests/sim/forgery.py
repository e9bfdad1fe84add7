"""Forged and tampered frames: each must be refused, and refusing it must change nothing.

Toward the hub: a batch from an unknown signer, one signed with a key that is not the station's, an
authentic batch with a flipped body byte or an altered header, one addressed to another hub, and one
where a station signs as another origin. Toward a station: a feed page, a catalogue release and an
acknowledgement signed by someone other than the pinned hub key. Forged changes write applications
no station ever wrote, so if one were merged anywhere the merge hook would report it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.batch import build_batch
from protocol.codec import pack, unpack
from protocol.document import sign_document
from protocol.frame import MAGIC, seal_frame
from protocol.keys import signing_key_from_seed
from sync.change import Change, change_to_wire
from sync.hlc import tick
from sync.session import AckResult
from tests.sim.district import hub_fingerprint
from tests.sim.faults import FORGERIES

if TYPE_CHECKING:
    from tests.sim.world import World

FAKE_HUB = "999999"


def _changes(world: World, origin: str, epoch: int, first: int) -> list[object]:
    stamp = tick(0, world.now)
    app_id = f"forged-{world.rng.getrandbits(48):012x}"
    fields: dict[str, object] = {
        "station": origin,
        "item": "360802-0001",
        "status": "accepted",
        "applicant_name": "伪造",
    }
    return [change_to_wire(Change(origin, epoch, first, stamp, "application", app_id, fields, {}))]


def _split(frame: bytes) -> list[bytes]:
    parts = unpack(frame[len(MAGIC) :])
    assert isinstance(parts, list) and all(isinstance(p, bytes) for p in parts)
    return [bytes(p) for p in parts]


def _authentic(world: World, code: str, *, recipient: str | None = None) -> bytes:
    """A frame the station's own key signs, but with changes it never wrote (never sent untampered)."""
    node = world.nodes[code]
    return build_batch(
        origin=code,
        epoch=99,
        first_seq=1,
        changes=_changes(world, code, 99, 1),
        prev=bytes(32),
        recipient=recipient or world.hub.hub_id,
        hlc=tick(0, world.now),
        signing_key=node.st.keys.sign,
    )


def hub_frame(world: World, code: str, kind: str) -> bytes:
    rng = world.rng
    cursor_seq = world.nodes[code].meta("seq") + 1
    if kind == "unknown_signer":
        key = signing_key_from_seed(rng.randbytes(32))
        return build_batch(
            origin="X99",
            epoch=1,
            first_seq=1,
            changes=_changes(world, "X99", 1, 1),
            prev=bytes(32),
            recipient=world.hub.hub_id,
            hlc=tick(0, world.now),
            signing_key=key,
        )
    if kind == "wrong_key":
        key = signing_key_from_seed(rng.randbytes(32))
        return build_batch(
            origin=code,
            epoch=1,
            first_seq=cursor_seq,
            changes=_changes(world, code, 1, cursor_seq),
            prev=bytes(32),
            recipient=world.hub.hub_id,
            hlc=tick(0, world.now),
            signing_key=key,
        )
    if kind in ("tampered_body", "tampered_header"):
        frames = list(world.archive[code].values())
        frame = rng.choice(frames) if frames else _authentic(world, code)
        header, body, signature = _split(frame)
        if kind == "tampered_body":
            at = rng.randrange(len(body))
            body = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
        else:
            fields = unpack(header)
            assert isinstance(fields, dict)
            fields["first_seq"] = int(fields["first_seq"]) + 1
            fields["last_seq"] = int(fields["last_seq"]) + 1
            header = pack(fields)
        return MAGIC + pack([header, body, signature])
    if kind == "wrong_recipient":
        return _authentic(world, code, recipient=FAKE_HUB)
    assert kind == "impersonation"
    other = next((c for c in world.nodes if c != code), "V99")
    claimed: dict[str, object] = {
        "kind": "batch",
        "signer": code,
        "recipient": world.hub.hub_id,
        "recipient_key": "",
        "origin": other,
        "epoch": 1,
        "first_seq": 1,
        "last_seq": 1,
        "count": 1,
        "prev": bytes(32),
        "hlc": tick(0, world.now),
    }
    return seal_frame(claimed, _changes(world, other, 1, 1), signing_key=world.nodes[code].st.keys.sign)


def node_file(world: World, code: str, kind: str) -> bytes:
    fake = signing_key_from_seed(world.rng.randbytes(32))
    hub_id = world.hub.hub_id
    if kind == "forged_feed":
        body = {
            "station": code,
            "after": 0,
            "next": 10**6,
            "more": False,
            "changes": _changes(world, "T01", 1, 10**6),
            "origins": {"T01": "district"},
            "catalogue": None,
            "revoked": [],
            "hub_ms": world.now,
            "generation": str(world.hub.hub.store.get_meta("generation", "")),
        }
        return sign_document(
            "feed", body, signer=hub_id, recipient=code, signing_key=fake, extra_header={"next": 10**6, "more": False}
        )
    if kind == "forged_release":
        from tests.sim.catalogue import release_body

        version = world.hub.hub.published_up_to() + 5
        return sign_document(
            "catalogue",
            release_body(version, world.now),
            signer=hub_id,
            recipient="*",
            signing_key=fake,
            extra_header={"version": version},
        )
    assert kind == "tampered_acks"
    row = world.nodes[code].st.conn.execute("SELECT hash FROM outbox ORDER BY epoch DESC, first_seq DESC").fetchone()
    batch = bytes(row[0]) if row is not None else bytes(32)
    return sign_document(
        "acks",
        {"acks": [{"batch": batch, "result": "fork", "expected": 1, "reason": "forged"}]},
        signer=hub_id,
        recipient=code,
        signing_key=fake,
    )


def forge(world: World, code: str, which: int) -> None:
    kind = FORGERIES[which]
    world.stats.forgeries += 1
    if kind in ("forged_feed", "forged_release", "tampered_acks"):
        node = world.nodes[code]
        before = world.fingerprint(node)
        outcome = world.import_file(node, node_file(world, code, kind), kind)
        world.note(f"forged {kind} to {code}: {outcome[:60]}")
        if outcome == "accepted":
            world.checks.fail("forgery_accepted", f"{code} accepted a {kind}")
        world.checks.unchanged(f"{code} refused a {kind} but changed", before, world.fingerprint(node))
        return
    before = hub_fingerprint(world.hub.hub)
    ack = world.hub.ingest(hub_frame(world, code, kind))
    world.note(f"forged {kind} as {code}: {ack.result.value} {ack.reason[:60]}")
    if ack.result is not AckResult.REJECTED:
        world.checks.fail("forgery_accepted", f"the hub answered {ack.result.value} to a {kind} frame")
    world.checks.unchanged(f"the hub refused a {kind} frame but changed", before, hub_fingerprint(world.hub.hub))
