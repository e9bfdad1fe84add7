"""The hub names a township relay only on the township's own proof (hub/relay_proof.py,
protocol/relay_label.py), on both backends.

Anyone can write ``X-Sanji-Relay: T``. Without T's signature over the very body forwarded, the label
names nobody: no ``relay_seen`` alert against T, no "reached through T" on the station tree; it is noted
in the refusal log as ``unproven_relay`` (the words say "claimed") and counted in ``/metrics``. A real
township's proof still gets its bad forwarded frame raised against it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.appkeys import COMMITTER, HUB
from hub.service import Hub
from node import commands, uplink
from node.relay_forward import FRAMES_TYPE, Signer
from node.station import Station
from protocol import relay_label
from protocol.codec import pack
from protocol.wire import REQUEST_HEADER
from replica.ids import now_ms
from tests.conftest import People, materials

TOWNSHIP, VILLAGE = "T1", "T1-V1"  # enrolled with T1-V2 (tests/hub/conftest.py: ENROLLED)
ITEM = "360802-0010"

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


@dataclass
class Served:
    client: TestClient
    hub: Hub
    township: Station
    village: Station

    def signer(self, key: Ed25519PrivateKey | None = None) -> Signer:
        return Signer(TOWNSHIP, key or self.township.keys.sign, self.hub.hub_id)

    def frames(self) -> list[bytes]:
        p = People().applicant()
        commands.accept(
            self.village,
            commands.Application(
                item=ITEM,
                name=p["name"],
                id_number=p["id_number"],
                phone=p["phone"],
                address="测试镇测试村1组",
                submitted=materials(self.village, ITEM),
                deferred=[],
            ),
        )
        uplink.build_outbox(self.village)
        return [frame for _, frame in uplink.unsettled(self.village)]

    async def push(self, body: bytes, headers: dict[str, str]) -> int:
        resp = await self.client.post("/v1/sync/push", data=body, headers={"Content-Type": FRAMES_TYPE, **headers})
        status = resp.status
        resp.release()
        await self.client.app[COMMITTER].submit(lambda: None)  # its bookkeeping is committed
        return status

    async def pull(self, signed: bytes, headers: dict[str, str]) -> int:
        resp = await self.client.get(
            "/v1/sync/pull", headers={REQUEST_HEADER: base64.b64encode(signed).decode(), **headers}
        )
        resp.release()
        await self.client.app[COMMITTER].submit(lambda: None)  # its bookkeeping is committed
        return resp.status

    def alerts(self, kind: str = "relay_seen") -> list[dict[str, object]]:
        return [a for a in self.hub.store.alerts() if a["kind"] == kind]

    def unproven(self) -> list[dict[str, object]]:
        return [r for r in self.hub.store.rejections(50)[1] if str(r["reason"]).startswith("unproven_relay:")]

    def via(self) -> str:
        station = self.hub.store.station(VILLAGE)
        assert station is not None
        return station.last_via


@pytest.fixture
async def served(enrolled_client: tuple[TestClient, Path]) -> AsyncIterator[Served]:
    """The app serving a hub with T1, T1-V1 and T1-V2 enrolled (``tests/hub/conftest.py``)."""
    client, root = enrolled_client
    township, village = Station(root / TOWNSHIP), Station(root / VILLAGE)
    try:
        yield Served(client, client.app[HUB], township, village)
    finally:
        township.close()
        village.close()


def tampered(frames: list[bytes]) -> bytes:
    """A push of one frame that no longer verifies (its header still names the village)."""
    frame = frames[0]
    return pack([frame[:-1] + bytes([frame[-1] ^ 1])])


async def test_a_forged_label_names_nobody(served: Served) -> None:
    bad = tampered(served.frames())
    # No proof at all: anyone can write the header.
    assert await served.push(bad, {relay_label.RELAY_HEADER: TOWNSHIP}) >= 400
    # A proof signed by a key that is not the township's (here the village's own, claiming T1).
    village_key = served.signer(served.village.keys.sign).headers(relay_label.PUSH_ROUTE, bad, now_ms())
    assert await served.push(bad, village_key) >= 400
    # Garbage where the proof goes.
    assert await served.push(bad, {relay_label.RELAY_HEADER: TOWNSHIP, relay_label.PROOF_HEADER: "v1.1.2.3"}) >= 400
    assert served.alerts() == []  # T1 is not named as misbehaving
    noted = served.unproven()
    assert noted and all(f"声称经乡镇中转站 {TOWNSHIP}" in str(r["reason"]) for r in noted), noted
    assert all("不据此认定该乡镇有任何异常" in str(r["reason"]) and r["origin"] == "" for r in noted)
    assert sum(int(str(r["count"])) for r in noted) == 3  # one row per address, hour and code: bounded
    assert len(noted) == 1
    metrics = await (await served.client.get("/metrics")).text()
    assert re.search(r'sanji_batches_rejected_total\{reason="unproven_relay"\} 3\.0', metrics), metrics


async def test_a_proof_moved_onto_another_body_is_refused(served: Served) -> None:
    frames = served.frames()
    genuine = pack(frames)
    captured = served.signer().headers(relay_label.PUSH_ROUTE, genuine, now_ms())
    bad = tampered(frames)
    assert await served.push(bad, captured) >= 400  # the township's real proof, on another body
    assert served.alerts() == []
    assert [str(r["reason"]).split("（", 2)[1][:13] for r in served.unproven()] == ["bad_signature"]
    # Where it belongs, it proves the path: the batch is taken, through T1.
    assert await served.push(genuine, captured) == 200
    assert served.via() == f"relay:{TOWNSHIP}"
    assert served.alerts() == []


async def test_a_real_relays_bad_frame_still_names_it(served: Served) -> None:
    bad = tampered(served.frames())
    assert await served.push(bad, served.signer().headers(relay_label.PUSH_ROUTE, bad, now_ms())) >= 400
    seen = served.alerts()
    assert [a["station"] for a in seen] == [TOWNSHIP], seen
    assert "未通过核验" in str(seen[0]["detail"]) and VILLAGE in str(seen[0]["detail"])
    assert served.unproven() == []


async def test_an_authentic_batch_under_a_forged_label_is_taken_as_direct(served: Served) -> None:
    body = pack(served.frames())
    assert await served.push(body, {relay_label.RELAY_HEADER: TOWNSHIP}) == 200  # the batch verifies alone
    assert served.via() == "network"  # not "reached only through T1" on the station tree
    assert served.hub.store.applications_held(VILLAGE) == 1
    assert len(served.unproven()) == 1


async def test_a_pull_under_a_forged_label_is_not_through_the_relay(served: Served) -> None:
    signed = base64.b64decode(uplink.pull_request(served.village, 0, b"n" * 16))

    assert await served.pull(signed, {relay_label.RELAY_HEADER: TOWNSHIP}) == 200
    assert served.via() == "network" and len(served.unproven()) == 1
    # A push's proof does not serve a pull, even of the same bytes.
    assert await served.pull(signed, served.signer().headers(relay_label.PUSH_ROUTE, signed, now_ms())) == 200
    assert served.via() == "network"
    assert await served.pull(signed, served.signer().headers(relay_label.PULL_ROUTE, signed, now_ms())) == 200
    assert served.via() == f"relay:{TOWNSHIP}"


async def test_a_stick_status_is_answered_from_its_cursor_only_under_a_townships_proof(served: Served) -> None:
    """A village's status read from a stick at its township has no nonce and may be hours old; the hub
    answers it, however old, only when the township proves it carried it. Under a bare label it is a
    stale pull like any other."""
    hours_ago = now_ms() - 3 * 3_600_000
    old = Station(served.village.folder, clock=lambda: hours_ago)
    try:
        signed = base64.b64decode(uplink.pull_request(old, 0))  # no nonce: a status file's request
    finally:
        old.close()

    assert await served.pull(signed, {relay_label.RELAY_HEADER: TOWNSHIP}) == 400  # refused as stale
    assert await served.pull(signed, served.signer().headers(relay_label.PULL_ROUTE, signed, now_ms())) == 200
