"""The hub's HTTP face, served for real on a local port by aiohttp's TestServer.

Stations are made the way an operator makes them: ``hub.enrolment.register`` issues a token and
``node.enrolment.init_online`` enrols over HTTP (in a worker thread, since it runs its own event loop),
then ``node.client.sync_round`` pushes and pulls. The app opens the hub folder itself, on the wall
clock, exactly as ``sanji hub serve`` does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from hub import enrolment
from hub.appkeys import HUB
from hub.service import Hub
from hub.web.sync import MAX_FRAMES_PER_PUSH, MAX_PUSH_BYTES
from node import client as node_client
from node import commands, uplink
from node.enrolment import init_online
from node.station import Station
from protocol.codec import pack
from protocol.document import open_document, sign_document
from replica.errors import Refused
from tests.conftest import HUB_ID, People, materials

FRAMES = "application/vnd.sanji.frames+msgpack"
TOWNSHIP_ITEM = "360802-0010"
DISTRICT_ITEM = "360802-0004"


@dataclass
class Served:
    client: TestClient
    hub: Hub  # the app's own Hub object: registering through it keeps its caches right
    url: str
    root: Path
    people: People
    opened: list[Station] = field(default_factory=list)

    def open(self, code: str) -> Station:
        st = Station(self.root / code)
        self.opened.append(st)
        return st

    async def enrol(self, code: str, tier: str, parent: str = "") -> Station:
        """Enrol a new station the way `sanji node init DIR --hub URL --token T` does."""
        token = enrolment.register(self.hub, station=code, name=f"{code} 测试站", tier=tier, parent=parent)
        await asyncio.to_thread(init_online, self.root / code, self.url, token)
        return self.open(code)

    def accept(self, st: Station, item: str, *, note: str = "") -> dict[str, object]:
        p = self.people.applicant()
        deferred = [m.name for m in st.catalogue().catalogue.items[item].materials if m.deferrable][:1]
        return commands.accept(
            st,
            commands.Application(
                item=item,
                name=p["name"],
                id_number=p["id_number"],
                phone=p["phone"],
                address="测试镇测试村1组",  # the inspection items need one
                note=note,
                submitted=materials(st, item, deferred=deferred),
                deferred=deferred,
            ),
        )

    async def healthy(self) -> None:
        resp = await self.client.get("/healthz")
        assert resp.status == 200
        assert await resp.json() == {"ok": True, "hub_id": HUB_ID, "worker": os.getpid()}


pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


@pytest.fixture
async def served(enrolled_client: tuple[TestClient, Path]) -> AsyncIterator[Served]:
    """The app serving a copy of a hub folder in which T1, T1-V1 and T1-V2 are already enrolled
    (``tests/hub/conftest.py``)."""
    client, root = enrolled_client
    s = Served(client, client.app[HUB], str(client.make_url("")).rstrip("/"), root, People())
    try:
        yield s
    finally:
        for st in s.opened:
            st.close()


@pytest.fixture
def village(served: Served) -> Station:
    return served.open("T1-V1")


async def json_error(resp: object) -> dict[str, object]:
    """A refusal: 4xx, JSON, with a machine code and a human message."""
    status = resp.status  # type: ignore[attr-defined]
    assert 400 <= status < 500, status
    assert resp.content_type == "application/json"  # type: ignore[attr-defined]
    body = await resp.json()  # type: ignore[attr-defined]
    assert isinstance(body, dict) and body.get("error") and body.get("message"), body
    return body


# -- the happy path over HTTP ---------------------------------------------------------------------


async def test_online_enrolment_push_and_replay(served: Served) -> None:
    village = await served.enrol("T1-V3", "village", "T1")
    assert village.meta.get("enrolled") is True and village.catalogue().version == 1
    for item in (TOWNSHIP_ITEM, DISTRICT_ITEM, TOWNSHIP_ITEM):
        served.accept(village, item)
    result = await node_client.sync_round(village, served.url)
    assert (result.pushed, result.refused, result.pending) == (3, [], 0)
    assert served.hub.store.applications_held("T1-V3") == 3
    again = await node_client.sync_round(village, served.url)
    assert (again.pushed, again.refused) == (0, [])

    # The very same frames posted again: acknowledged as duplicates, nothing changes.
    frames = [bytes(r[0]) for r in village.conn.execute("SELECT frame FROM outbox ORDER BY first_seq")]
    before = served.hub.store.changes_logged(), served.hub.store.batches_taken()
    resp = await served.client.post("/v1/sync/push", data=pack(frames), headers={"Content-Type": FRAMES})
    assert resp.status == 200
    doc = open_document(await resp.read(), kind="acks", recipient="T1-V3", verify_key=village.hub_key)
    assert [a["result"] for a in doc.body["acks"]] == ["duplicate"] * len(frames)  # type: ignore[index]
    assert (served.hub.store.changes_logged(), served.hub.store.batches_taken()) == before


async def test_a_township_pulls_its_villages_township_items_and_a_neighbour_nothing(served: Served) -> None:
    t1, v1, v2 = (served.open(code) for code in ("T1", "T1-V1", "T1-V2"))
    mine = served.accept(v1, TOWNSHIP_ITEM)
    served.accept(v1, DISTRICT_ITEM)
    theirs = served.accept(v2, TOWNSHIP_ITEM)
    for s in (v1, v2, t1):
        await node_client.sync_round(s, served.url)
    await node_client.sync_round(v2, served.url)
    assert {r[0] for r in t1.conn.execute("SELECT id FROM applications")} == {mine["id"], theirs["id"]}
    assert {r[0] for r in v2.conn.execute("SELECT id FROM applications")} == {theirs["id"]}
    # The township decides; its village hears of it at its next round.
    commands.transition(t1, str(mine["number"]), "under_review")
    await node_client.sync_round(t1, served.url)
    await node_client.sync_round(v1, served.url)
    assert v1.records.values("application", str(mine["id"]))["status"] == "under_review"


# -- pulls: who may read which feed ------------------------------------------------------------------


async def test_a_pull_signed_by_one_station_cannot_read_anothers_feed(served: Served, village: Station) -> None:
    header = {uplink.REQUEST_HEADER: uplink.pull_request(village, 0)}
    resp = await served.client.get("/v1/sync/pull", params={"station": "T1-V2"}, headers=header)
    assert resp.status == 403
    assert (await json_error(resp))["error"] == "forbidden"
    resp = await served.client.get("/v1/sync/pull", params={"station": "T1-V1"}, headers=header)
    assert resp.status == 200
    assert uplink.apply_feed(village, await resp.read()).pulled == 0


def _signed_pull(st: Station, body: dict[str, object], *, key: object = None) -> str:
    doc = sign_document("pull", body, signer=st.code, recipient=st.hub_id, signing_key=key or st.keys.sign)  # type: ignore[arg-type]
    return base64.b64encode(doc).decode()


@pytest.mark.parametrize("case", ["missing", "not_base64", "not_a_frame", "wrong_key", "stale", "no_after"])
async def test_a_pull_without_a_valid_signed_request_is_refused(served: Served, village: Station, case: str) -> None:
    now = village.clock()
    headers = {
        "missing": {},
        "not_base64": {uplink.REQUEST_HEADER: "!!not base64!!"},
        "not_a_frame": {uplink.REQUEST_HEADER: base64.b64encode(b"hello").decode()},
        "wrong_key": {uplink.REQUEST_HEADER: _signed_pull(village, {"after": 0, "at_ms": now}, key=_stranger_key())},
        "stale": {uplink.REQUEST_HEADER: _signed_pull(village, {"after": 0, "at_ms": now - 3_600_000})},
        "no_after": {uplink.REQUEST_HEADER: _signed_pull(village, {"at_ms": now})},
    }[case]
    resp = await served.client.get("/v1/sync/pull", headers=headers)
    body = await json_error(resp)
    if case == "missing":
        assert body["error"] == "unauthenticated"
    await served.healthy()


def _stranger_key() -> object:
    from protocol.keys import signing_key_from_seed

    return signing_key_from_seed(bytes([9]) * 32)


@pytest.mark.parametrize(
    "extra",
    [{"pending": "x"}, {"catalogue_version": 1.5}, {"after": 2**64 - 1}],
    ids=["pending_str", "catalogue_float", "after_u64"],
)
async def test_an_authentic_but_malformed_pull_is_a_400(
    served: Served, village: Station, extra: dict[str, object]
) -> None:
    """Regression (a bug at commit 57ed1b3, since fixed in the working tree): hub/web/sync.py pull(): only `after` and
    `at_ms` of a signed pull body are type-checked; `pending` and `catalogue_version` go through int(str(...)) and
    `after` straight into SQLite, so an authentic request with pending='x', catalogue_version=1.5 or after=2**64-1
    raises ValueError/OverflowError, which the errors middleware does not map: the station gets a bare 500 instead
    of a 400 with a reason."""
    body: dict[str, object] = {"after": 0, "at_ms": village.clock(), "pending": 0, "catalogue_version": 1, **extra}
    resp = await served.client.get("/v1/sync/pull", headers={uplink.REQUEST_HEADER: _signed_pull(village, body)})
    assert resp.status == 400


async def test_a_revoked_station_can_neither_pull_nor_push(served: Served, village: Station) -> None:
    served.accept(village, TOWNSHIP_ITEM)
    with served.hub.store.transaction():
        served.hub.store.revoke("T1-V1")
    resp = await served.client.get("/v1/sync/pull", headers={uplink.REQUEST_HEADER: uplink.pull_request(village, 0)})
    assert (resp.status, (await json_error(resp))["error"]) == (403, "revoked")
    with pytest.raises(Refused, match="区局拒绝了本次下载"):
        await node_client.sync_round(village, served.url)
    assert village.conn.execute("SELECT state FROM outbox").fetchall() == [("rejected",)]
    assert served.hub.store.changes_logged() == 0
    assert served.hub.store.rejections()[0] >= 1


# -- enrolment ------------------------------------------------------------------------------------------


async def test_an_enrolment_token_works_once(served: Served) -> None:
    token = enrolment.register(served.hub, station="T1-V3", name="三村", tier="village", parent="T1")
    await asyncio.to_thread(init_online, served.root / "V2a", served.url, token)
    with pytest.raises(Refused, match="already been used"):
        await asyncio.to_thread(init_online, served.root / "V2b", served.url, token)
    assert not (served.root / "V2b").exists()  # a failed enrolment leaves nothing half-made
    resp = await served.client.post("/v1/enroll", data=b"\x00garbage", headers={"Content-Type": "application/msgpack"})
    await json_error(resp)
    await served.healthy()


async def test_a_used_token_is_refused_with_403_enrolment_refused(served: Served) -> None:
    """Regression (a bug at commit 57ed1b3, since fixed in the working tree): hub/enrolment.py EnrolmentError sets
    class attributes status=403/code='enrolment_refused' that RemoteProtocolError.__init__ shadows with
    default_status/default_code: refusals of used, unknown or expired tokens are answered 400 'protocol_error'
    instead of 403 'enrolment_refused'."""
    token = enrolment.register(served.hub, station="T1-V3", name="三村", tier="village", parent="T1")
    await asyncio.to_thread(init_online, served.root / "V2a", served.url, token)
    # The token itself never travels any more: a used one is refused when its id asks for a challenge.
    from protocol.enrolment import parse_token, token_id, token_key

    body = pack({"token_id": token_id(token_key(parse_token(token)))})
    resp = await served.client.post("/v1/enroll/challenge", data=body, headers={"Content-Type": "application/msgpack"})
    assert (resp.status, (await json_error(resp))["error"]) == (403, "enrolment_refused")


async def test_enrolment_and_key_routes_refuse_junk_and_consume_nothing(served: Served) -> None:
    token = enrolment.register(served.hub, station="T1-V3", name="三村", tier="village", parent="T1")
    headers = {"Content-Type": "application/msgpack"}
    for path, body in (
        ("/v1/enroll/challenge", pack({"token_id": "0" * 16})),  # no such token
        ("/v1/enroll/challenge", pack({"token": token})),  # the old way: the token itself is not taken
        ("/v1/enroll/challenge", b"\x00" * 5000),  # over the request cap
        (
            "/v1/enroll",
            pack({"challenge": b"SJF1junk", "sign_pub": bytes(32), "seal_pub": bytes(32), "proof": bytes(32)}),
        ),
        ("/v1/enroll", pack({"challenge": b"x" * 2000})),
    ):
        resp = await served.client.post(path, data=body, headers=headers)
        assert 400 <= resp.status < 500, (path, resp.status)
        assert (await json_error(resp))["error"]
    resp = await served.client.get("/v1/keys", params={"after": "not-a-number"})
    assert resp.status == 400
    resp = await served.client.get("/v1/keys", params={"after": str(2**40)})
    assert resp.status == 200
    assert [t for t in served.hub.store.tokens_for("T1-V3") if t[2] is not None] == []  # still unused
    await asyncio.to_thread(init_online, served.root / "V3", served.url, token)  # and it still works


# -- hostile pushes ---------------------------------------------------------------------------------------

HOSTILE = {
    "wrong_content_type": ("text/plain", pack([b"SJF1"])),
    "garbage_bytes": (FRAMES, b"\xc1\xff\xfe garbage \x00"),
    "empty_body": (FRAMES, b""),
    "declared_4gib_bin": (FRAMES, b"\x91\xc6\xff\xff\xff\xff" + b"x" * 16),
    "declared_4g_array": (FRAMES, b"\xdd\xff\xff\xff\xff" + b"\xc4\x00" * 4),
    "declared_4g_map": (FRAMES, b"\xdf\xff\xff\xff\xff"),
    "array_of_non_bytes": (FRAMES, pack([1, "frame", None, [b"x"]])),
    "empty_array": (FRAMES, pack([])),
    "a_map": (FRAMES, pack({"frames": [b"x"]})),
    "too_many_frames": (FRAMES, pack([b"x"] * (MAX_FRAMES_PER_PUSH + 1))),
    "bytes_that_are_not_frames": (FRAMES, pack([b"hello", b"SJF1\x93"])),
    "trailing_bytes": (FRAMES, pack([b"x"]) + b"\x00"),
    "deeply_nested": (FRAMES, b"\x91" * 100 + b"\xc0"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_push_bodies_get_a_4xx_with_a_reason(served: Served, case: str) -> None:
    content_type, body = HOSTILE[case]
    before = served.hub.store.changes_logged(), served.hub.store.batches_taken()
    resp = await served.client.post("/v1/sync/push", data=body, headers={"Content-Type": content_type})
    await json_error(resp)
    assert (served.hub.store.changes_logged(), served.hub.store.batches_taken()) == before
    await served.healthy()


async def test_a_declared_oversize_body_is_refused_before_it_is_read(served: Served) -> None:
    host, port = served.client.host, served.client.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST /v1/sync/push HTTP/1.1\r\nHost: {host}\r\nContent-Type: {FRAMES}\r\n"
        f"Content-Length: {MAX_PUSH_BYTES + 1}\r\n\r\n".encode()
        + b"\x91\xc6"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"413"
    await served.healthy()


async def _stream(total: int, head: bytes) -> AsyncIterator[bytes]:
    yield head
    chunk = bytes(1 << 20)
    sent = len(head)
    while sent < total:
        yield chunk
        sent += len(chunk)


async def test_an_oversize_streamed_body_is_refused(served: Served) -> None:
    """Over 32 MiB, chunked so no Content-Length warns the hub: still a 4xx with a reason."""
    total = MAX_PUSH_BYTES + (1 << 20)
    head = b"\x91\xc6" + struct.pack(">I", total)
    resp = await served.client.post("/v1/sync/push", data=_stream(total, head), headers={"Content-Type": FRAMES})
    await json_error(resp)
    await served.healthy()


# -- bodies larger than one socket read ---------------------------------------------------------------------


async def test_a_legitimate_push_larger_than_one_socket_read_is_applied(served: Served, village: Station) -> None:
    """A back-entry of 200 paper records with long notes, then one sync round.

    Regression (a bug at commit 57ed1b3, since fixed in the working tree): ``_read_body`` used
    ``request.content.read(limit + 1)``, which returns only what has arrived so far, so any push over one
    socket read (~64 KiB) was refused as 'input ends before the encoded value does (truncated)'."""
    lines = []
    for n in range(200):
        p = served.people.applicant()
        lines.append(
            json.dumps(
                {
                    "item": TOWNSHIP_ITEM,
                    "applicant": {"name": p["name"], "id_number": p["id_number"], "phone": p["phone"]},
                    "materials": [{"name": m} for m in materials(village, TOWNSHIP_ITEM)],
                    "note": f"{n}:" + os.urandom(900).hex(),  # ~1.8 KB of incompressible notes each
                },
                ensure_ascii=False,
            )
        )
    assert commands.accept_lines(village, lines) == {"accepted": 200, "refused": []}
    uplink.build_outbox(village)
    size = sum(len(bytes(r[0])) for r in village.conn.execute("SELECT frame FROM outbox"))
    assert 200_000 < size < 4 * 1024 * 1024  # one request, well inside every documented limit
    result = await node_client.sync_round(village, served.url)
    assert (result.pushed, result.refused) == (200, [])


async def test_an_oversize_streamed_body_is_413_too_large(served: Served) -> None:
    """Same regression: the stream must be read to its end (or to the limit) before deciding."""
    total = MAX_PUSH_BYTES + (1 << 20)
    head = b"\x91\xc6" + struct.pack(">I", total)
    resp = await served.client.post("/v1/sync/push", data=_stream(total, head), headers={"Content-Type": FRAMES})
    assert (resp.status, (await json_error(resp))["error"]) == (413, "too_large")
