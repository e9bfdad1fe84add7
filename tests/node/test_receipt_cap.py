"""A station keeps the hub's receipts, each a small signed frame, and no larger thing offered as one."""

from __future__ import annotations

from collections.abc import Callable

from node import uplink
from protocol.document import sign_document
from protocol.limits import RECEIPT_FRAME_MAX_BYTES
from tests.conftest import World

DISTRICT_ITEM = "360802-0004"


def test_genuine_receipts_fit_the_cap_and_an_oversize_one_is_not_kept(make_world: Callable[..., World]) -> None:
    world = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = world.get("T1-V1")
    world.accept(v1, DISTRICT_ITEM)
    acks = world.push(v1)
    kept = [bytes(r[0]) for r in v1.conn.execute("SELECT receipt FROM outbox")]
    assert kept and all(0 < len(r) <= RECEIPT_FRAME_MAX_BYTES for r in kept)

    world.accept(v1, DISTRICT_ITEM)
    frames = world.frames(v1)
    acks = world.ingest(frames[-1:])
    wire = [{**a.to_wire(), "receipt": bytes(RECEIPT_FRAME_MAX_BYTES + 1)} for a in acks]
    answer = sign_document(
        "acks", {"acks": wire}, signer=world.hub.hub_id, recipient=v1.code, signing_key=world.hub.keys.sign
    )
    uplink.read_acks(v1, answer)
    rows = v1.conn.execute("SELECT state, receipt FROM outbox ORDER BY first_seq").fetchall()
    assert rows[-1][0] == "receipted" and rows[-1][1] is None
