"""A man in the middle of online enrolment (issue 21, row 1), against a real `sanji hub serve`.

The proxy is written here: an aiohttp server on 127.0.0.1 that reads each request, records it,
forwards it to the hub, and may answer the station with a rogue hub's enrolment instead. The station
(`sanji node init --hub PROXY --token T`) must refuse every rogue answer, pin nothing, and the proxy
must not be able to enrol keys of its own with what it saw.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from hub import enrolment, keyring
from hub.service import Hub as HubLib
from protocol.codec import pack, unpack
from protocol.enrolment import answer_mac, parse_token, token_key
from protocol.keys import public_bytes, sealing_key_from_seed, signing_key_from_seed
from tests.e2e.conftest import DISTRICT, TOWNSHIP, Hub
from tests.e2e.processes import free_loopback_port, http, ok, run_sanji

STATION = f"{TOWNSHIP}-41"
MSGPACK = {"Content-Type": "application/msgpack"}

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL (conftest.py)

Rewrite = Callable[[bytes], bytes]


class Proxy:
    """Records every request, forwards it, and lets `rewrite` replace the hub's enrolment answer."""

    def __init__(self, upstream: str, *, rewrite: Rewrite | None = None, withhold_proof: bool = False) -> None:
        self.upstream = upstream
        self.rewrite = rewrite
        self.withhold_proof = withhold_proof
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[tuple[str, bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.path, body))
        if self.withhold_proof and request.path == "/v1/enroll":
            return web.Response(status=502, text="upstream unavailable")
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers={"Content-Type": request.headers.get("Content-Type", "application/octet-stream")},
            ) as resp,
        ):
            data, status, ctype = await resp.read(), resp.status, resp.content_type
        if request.path == "/v1/enroll" and status == 200 and self.rewrite is not None:
            data = self.rewrite(data)
        return web.Response(body=data, status=status, content_type=ctype)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Proxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def served(hub: Hub) -> Iterator[Hub]:
    hub.enroll(TOWNSHIP, tier="township")
    hub.start()
    yield hub


def rogue_pieces(tmp_path: Path) -> tuple[bytes, dict[str, object], str]:
    """A rogue hub with the same district code: its enrolment document for our station, its key
    history, and a token it issued itself (so it can MAC with a token of its own)."""
    rogue = HubLib.create(tmp_path / "rogue", district=DISTRICT, name="假冒区局", catalogue=None)
    try:
        enrolment.register(rogue, station=TOWNSHIP, name="假冒镇", tier="township")
        own = enrolment.register(rogue, station=STATION, name="假冒村", tier="village", parent=TOWNSHIP)
        return enrolment.enrolment_document(rogue, STATION), keyring.bundle(rogue), own
    finally:
        rogue.close()


def secrets_of(token: str) -> list[bytes]:
    tok = parse_token(token)
    return [token.encode(), tok.secret.encode(), tok.secret.lower().encode(), token_key(tok)]


def assert_nothing_leaked(proxy: Proxy, token: str) -> None:
    assert [p for p, _ in proxy.seen][:2] == ["/v1/enroll/challenge", "/v1/enroll"]
    for _, body in proxy.seen:
        for secret in secrets_of(token):
            assert secret not in body, "the token (or its key) crossed the wire"


def proxy_enrols_itself(hub: Hub, proxy: Proxy) -> tuple[int, bytes]:
    """The proxy takes the challenge and proof it saw and tries to pin keys of its own at the real hub."""
    seen = unpack(dict(proxy.seen)["/v1/enroll"])
    assert isinstance(seen, dict)
    sign, seal = signing_key_from_seed(bytes([66]) * 32), sealing_key_from_seed(bytes([67]) * 32)
    forged = dict(seen, sign_pub=public_bytes(sign), seal_pub=public_bytes(seal))
    return http("POST", hub.url + "/v1/enroll", pack(forged), MSGPACK)


ROGUES = ["rogue_everything", "rogue_document_real_keys", "rogue_mac_with_own_token"]


# The three rogue answers differ only in what the station is shown; the hub's side (a challenge, the
# token left unused, the proxy's own enrolment refused) is the same, so PostgreSQL runs one of them.
@pytest.mark.parametrize(
    ("hub_backend", "how"), [*(("sqlite", how) for how in ROGUES), ("postgres", "rogue_everything")]
)
def test_a_rogue_answer_through_a_proxy_is_refused_and_nothing_pinned(served: Hub, tmp_path: Path, how: str) -> None:
    issued = ok(
        "hub",
        "enroll",
        served.dir,
        "--station",
        STATION,
        "--name",
        "四十一村",
        "--tier",
        "village",
        "--parent",
        TOWNSHIP,
    )
    token = str(issued["token"])
    rogue_doc, rogue_keys, rogue_token = rogue_pieces(tmp_path)

    def rewrite(data: bytes) -> bytes:
        answer = unpack(data)
        assert isinstance(answer, dict)
        answer["enrollment"] = rogue_doc
        if how != "rogue_document_real_keys":
            answer["keys"] = rogue_keys
        if how == "rogue_mac_with_own_token":
            # The attack MACed the rogue answer with the station's token; the proxy never sees
            # that token now, so the best it has is a token the rogue issued itself.
            answer["mac"] = answer_mac(token_key(parse_token(rogue_token)), b"", rogue_doc)
        return pack(answer)

    node_dir = tmp_path / "node"
    with Proxy(served.url, rewrite=rewrite) as proxy:
        res = run_sanji("node", "init", node_dir, "--hub", proxy.url, "--token", token)
    assert res.code == 2, res
    assert "拒绝" in res.stderr and ("指纹" in res.stderr or "令牌不符" in res.stderr), res.stderr
    assert not node_dir.exists(), "a refused enrolment pins nothing and leaves no folder"
    assert_nothing_leaked(proxy, token)
    # The real hub took the station's own keys (the proof was genuine); the proxy cannot replace them.
    status, body = proxy_enrols_itself(served, proxy)
    assert status == 403 and b"enrolment_refused" in body, body


def test_a_proxy_that_keeps_the_proof_cannot_use_it_and_the_token_still_works(served: Hub, tmp_path: Path) -> None:
    issued = ok(
        "hub",
        "enroll",
        served.dir,
        "--station",
        STATION,
        "--name",
        "四十一村",
        "--tier",
        "village",
        "--parent",
        TOWNSHIP,
    )
    token, fingerprint = str(issued["token"]), str(issued["fingerprint"])
    assert fingerprint.replace("-", "") in token.replace("-", ""), "the token carries the root fingerprint"
    with Proxy(served.url, withhold_proof=True) as proxy:
        res = run_sanji("node", "init", tmp_path / "first", "--hub", proxy.url, "--token", token)
    assert res.code == 2 and not (tmp_path / "first").exists()
    assert_nothing_leaked(proxy, token)
    status, body = proxy_enrols_itself(served, proxy)
    assert status == 403 and b"proof does not match" in body, body
    assert served.count_readonly("SELECT COUNT(*) FROM tokens WHERE used_ms IS NOT NULL") == 0, "nothing consumed"
    assert served.count_readonly(f"SELECT COUNT(*) FROM stations WHERE code='{STATION}' AND sign_pub IS NULL") == 1
    # The genuine station, straight to the hub, still enrols with the same token and shows the fingerprint.
    doc = ok("node", "init", tmp_path / "real", "--hub", served.url, "--token", token)
    assert doc["station"] == STATION and doc["hub_fingerprint"] == fingerprint
    assert ok("node", "status", tmp_path / "real")["hub_fingerprint"] == fingerprint


def test_enroll_prints_the_fingerprint_and_a_qr_code_for_the_slip(hub: Hub, tmp_path: Path) -> None:
    hub.enroll(TOWNSHIP, tier="township")
    out = tmp_path / "slip" / "v.sje"
    out.parent.mkdir()
    doc = ok(
        "hub",
        "enroll",
        hub.dir,
        "--station",
        STATION,
        "--name",
        "四十一村",
        "--tier",
        "village",
        "--parent",
        TOWNSHIP,
        "--out",
        out,
    )
    assert len(str(doc["fingerprint"])) == 14 and str(doc["token"]).startswith("SJT-")
    assert len(str(doc["token"])) <= 40, "short enough to read aloud"
    qr = Path(str(doc["qr"]))
    assert qr.is_file() and qr.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert str(doc["token"]).encode() not in out.read_bytes(), "the enrolment file does not carry its token"
    # Typed from the slip in lower case with spaces, the token still works (offline, with the file).
    typed = str(doc["token"]).lower().replace("-", " ")
    node = ok("node", "init", tmp_path / "node", "--enrollment", out, "--token", typed)
    assert node["hub_fingerprint"] == doc["fingerprint"]
    alone = run_sanji("node", "init", tmp_path / "alone", "--enrollment", out)
    assert alone.code == 2 and "令牌" in alone.stderr
