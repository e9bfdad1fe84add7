"""A real hub served in-process, enrolled senders that sign real traffic, and the checks every case makes.

The hub is made with ``Hub.create`` in a temporary folder and served by ``hub.app.create_app`` on an
aiohttp ``TestServer`` running in an event loop this harness owns, so Hypothesis can drive it from
plain synchronous tests: ``served.request(...)`` runs one request to completion and returns the answer.

Stations are enrolled the way the hub enrols them (``hub.enrolment.register`` then ``redeem``) with
keys made from fixed seeds, so every signature is genuine: what is hostile is the content.

All applicant data is generated: ID numbers carry a correct GB 11643 check character (computed here,
not by the code under test) and name nobody.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import resource
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, Phase, settings

from hub import enrolment
from hub.app import HubConfig, create_app
from hub.appkeys import HUB, WRITER
from hub.operations import status
from hub.service import BUILTIN_CATALOGUE, Hub
from protocol import frame as frame_mod
from protocol.batch import build_batch, verify_batch
from protocol.codec import pack
from protocol.document import Document, open_document, sign_document
from protocol.keys import key_id, public_bytes, sealing_key_from_seed, signing_key_from_seed
from sync.acceptance import due_date
from sync.catalogue import Catalogue, parse_catalogue
from sync.numbering import application_number
from tests.applicants import id_check_char

HUB_ID = "360802"
TOWNSHIP = "360802-T01"
FRAMES = "application/vnd.sanji.frames+msgpack"
REQUEST_HEADER = "X-Sanji-Request"

# Generous: the whole pytest process (hub included) after thousands of hostile requests, some of them
# tens of megabytes. Unbounded buffering of a bomb or an oversize body would blow well past it.
MAX_RSS_BYTES = 1536 * 1024 * 1024

SQL_STRINGS = (
    "'; DROP TABLE applications; --",
    '"; DROP TABLE changes; --',
    "x' OR '1'='1",
    "1; DELETE FROM records WHERE 1=1; --",
    "'); INSERT INTO stations (code) VALUES ('evil'); --",
    "Robert'); DROP TABLE quarantine;--",
    "' UNION SELECT sign_pub, seal_pub FROM stations --",
    "%' AND 1=0 UNION ALL SELECT name FROM sqlite_master --",
    "\\'; ATTACH DATABASE '/tmp/pwn.db' AS pwn; --",
    "张三'); DROP TABLE applications; --",
)

TABLES = (
    "applications",
    "changes",
    "records",
    "batches",
    "quarantine",
    "conflicts",
    "cursors",
    "feed",
    "stations",
    "tokens",
    "alerts",
    "rejected",
    "releases",
)

# -- generated people ---------------------------------------------------------------------------------


def id_number(serial: int) -> str:
    born = date(1950, 1, 1) + timedelta(days=(serial * 7919) % (365 * 50))
    first17 = f"{HUB_ID}{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + id_check_char(first17)


# -- counting what the hub holds ---------------------------------------------------------------------


def counts(hub: Hub) -> dict[str, int]:
    conn = hub.store.conn
    return {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES}


def table_names(hub: Hub) -> set[str]:
    return {str(r[0]) for r in hub.store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def rss_peak_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def hostile(max_examples: int, *, shrink: bool = True) -> settings:
    """Hypothesis settings for these tests: no deadline (fsync and HPKE vary), no example database in
    the working tree, derandomized so a run is reproducible (SANJI_HOSTILE_RANDOM=1 explores afresh)."""
    phases = (Phase.explicit, Phase.reuse, Phase.generate) + ((Phase.shrink,) if shrink else ())
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=os.environ.get("SANJI_HOSTILE_RANDOM", "") != "1",
        suppress_health_check=list(HealthCheck),
        phases=phases,
        print_blob=True,
    )


# -- the case counter ---------------------------------------------------------------------------------


class Tally:
    """How many hostile cases each test tried; printed in the terminal summary."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_test: dict[str, int] = {}

    def add(self, test: str, n: int = 1) -> None:
        with self.lock:
            self.by_test[test] = self.by_test.get(test, 0) + n

    @property
    def total(self) -> int:
        return sum(self.by_test.values())


TALLY = Tally()


# -- senders: enrolled stations that sign for real ------------------------------------------------------


@dataclass(repr=False)
class Sender:
    code: str
    tier: str
    sign: Ed25519PrivateKey
    seal: X25519PrivateKey
    epoch: int = 1
    made: int = 0  # records this sender created, for fresh ids

    def __repr__(self) -> str:
        return f"Sender({self.code})"

    def fresh_id(self, kind: str = "app") -> str:
        self.made += 1
        return f"{self.code}-{kind}-{self.made:07d}"

    def verify_key(self, signer: str, key: str) -> Ed25519PublicKey | None:
        return self.sign.public_key() if signer == self.code else None


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass(repr=False)
class Served:
    """One hub folder served in-process; every call runs the loop until the request is answered."""

    folder: Path
    loop: asyncio.AbstractEventLoop
    client: TestClient
    hub: Hub
    writer: Hub  # the hub the group committer's thread takes batches in through (hub/app.py)
    senders: dict[str, Sender] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Served({self.folder})"

    @classmethod
    def start(cls, folder: Path) -> Served:
        Hub.create(folder, district=HUB_ID, name="测试区行政审批局", catalogue=None).close()
        loop = asyncio.new_event_loop()
        # Hostile content is tried both sealed and unsealed; refusing unsealed batches is tested on its own.
        app = create_app(HubConfig(folder=folder, allow_unsealed=True))

        async def up() -> TestClient:
            client = TestClient(TestServer(app))
            await client.start_server()
            return client

        client = loop.run_until_complete(up())
        return cls(folder, loop, client, app[HUB], app[WRITER])

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()

    # -- HTTP -----------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        no_content_type: bool = False,
    ) -> Reply:
        async def go() -> Reply:
            skip = ("Content-Type",) if no_content_type else ()
            async with self.client.request(
                method,
                path,
                data=data,
                headers=dict(headers or {}),
                params=params,
                skip_auto_headers=skip,
                allow_redirects=False,
            ) as resp:
                return Reply(resp.status, await resp.read(), resp.headers.get("Content-Type", ""))

        return self.loop.run_until_complete(go())

    def push(self, frames: list[bytes], *, content_type: str = FRAMES) -> Reply:
        return self.request("POST", "/v1/sync/push", data=pack(frames), headers={"Content-Type": content_type})

    def healthy(self) -> bool:
        reply = self.request("GET", "/healthz")
        return reply.status == 200 and reply.json().get("ok") is True

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    # -- stations -------------------------------------------------------------------------------------

    def enrol(self, code: str, tier: str, parent: str = "", *, seed: int) -> Sender:
        token = enrolment.register(self.hub, station=code, name=f"{code} 测试站", tier=tier, parent=parent)
        sign = signing_key_from_seed(hashlib.sha256(b"sign" + seed.to_bytes(4, "big")).digest())
        seal = sealing_key_from_seed(hashlib.sha256(b"seal" + seed.to_bytes(4, "big")).digest())
        enrolment.redeem(self.hub, token=token, sign_pub=public_bytes(sign), seal_pub=public_bytes(seal))
        sender = Sender(code, tier, sign, seal)
        self.senders[code] = sender
        return sender

    def position(self, sender: Sender) -> tuple[int, bytes]:
        """(next seq, chain hash) the hub expects from this sender: read from the hub, never assumed."""
        cursor = self.hub.store.cursor(sender.code, sender.epoch)
        return cursor.next_seq, cursor.last_hash

    def stamp(self, ahead_ms: int = 0) -> int:
        return (self.hub.clock() + ahead_ms) << 16

    def batch(
        self,
        sender: Sender,
        changes: list[object],
        *,
        first_seq: int | None = None,
        prev: bytes | None = None,
        sealed: bool = True,
    ) -> bytes:
        seq, chain = self.position(sender)
        return build_batch(
            origin=sender.code,
            epoch=sender.epoch,
            first_seq=seq if first_seq is None else first_seq,
            changes=changes,
            prev=chain if prev is None else prev,
            recipient=self.hub.hub_id,
            hlc=self.stamp(),
            signing_key=sender.sign,
            seal_to=self.hub.keys.seal.public_key() if sealed else None,
            recipient_key=self.hub.keys.seal_key_id if sealed else "",
        )

    def wire(
        self,
        sender: Sender,
        seq: int,
        entity: str,
        rec_id: str,
        fields: dict[str, object],
        base: dict[str, object] | None = None,
        *,
        hlc: int | None = None,
    ) -> list[object]:
        return [
            sender.code,
            sender.epoch,
            seq,
            self.stamp() + seq if hlc is None else hlc,
            entity,
            rec_id,
            fields,
            base or {},
        ]

    def signed(self, sender: Sender, kind: str, body: object) -> bytes:
        return sign_document(kind, body, signer=sender.code, recipient=self.hub.hub_id, signing_key=sender.sign)

    def signed_header(self, sender: Sender, kind: str, body: object) -> dict[str, str]:
        return {REQUEST_HEADER: base64.b64encode(self.signed(sender, kind, body)).decode()}

    def open_acks(self, sender: Sender, reply: Reply) -> list[dict[str, Any]]:
        doc: Document = open_document(reply.body, kind="acks", recipient=sender.code, verify_key=self._hub_key)
        assert isinstance(doc.body, dict)
        acks = doc.body["acks"]
        assert isinstance(acks, list)
        return acks

    def _hub_key(self, signer: str, key: str) -> Ed25519PublicKey | None:
        return self.hub.keys.sign.public_key() if signer == self.hub.hub_id else None

    def batch_hash(self, sender: Sender, frame: bytes) -> bytes:
        return verify_batch(frame, recipient=self.hub.hub_id, verify_key=sender.verify_key).batch_hash

    # -- what the operator sees -------------------------------------------------------------------------

    def rejections(self) -> tuple[int, list[dict[str, object]]]:
        s = status(self.hub)
        rejected = s["rejected_batches"]
        last = s["last_rejections"]
        assert isinstance(rejected, int) and isinstance(last, list)
        return rejected, last

    def quarantine_since(self, row_id: int) -> list[tuple[int, str, int, int, str]]:
        rows = self.hub.store.conn.execute(
            "SELECT id, origin, seq, whole_batch, reason FROM quarantine WHERE id>? ORDER BY id", (row_id,)
        ).fetchall()
        return [(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in rows]

    def last_quarantine_id(self) -> int:
        return int(self.hub.store.conn.execute("SELECT COALESCE(MAX(id), 0) FROM quarantine").fetchone()[0])

    def readonly_check(self) -> str:
        conn = sqlite3.connect(f"file:{self.folder / 'hub.db'}?mode=ro", uri=True, timeout=5)
        try:
            return "; ".join(str(r[0]) for r in conn.execute("PRAGMA quick_check"))
        finally:
            conn.close()


def forge_frame(header: dict[str, object], body: bytes, key: Ed25519PrivateKey, *, fix_digest: bool = True) -> bytes:
    """A frame assembled by hand around any body, signed for real (seal_frame's own checks bypassed)."""
    if fix_digest:
        header = {**header, "body_sha256": hashlib.sha256(body).digest()}
    header_bytes = pack(header)
    return frame_mod._encode_frame(header_bytes, body, frame_mod._sign_header(header_bytes, key))


def batch_header(
    sender: Sender, *, hub_id: str, seal_key_id: str, first_seq: int, count: int, prev: bytes, sealed: bool, hlc: int
) -> dict[str, object]:
    return {
        "v": 1,
        "kind": "batch",
        "codec": "zlib",
        "sealed": sealed,
        "body_sha256": bytes(32),
        "signer": sender.code,
        "signer_key": key_id(public_bytes(sender.sign)),
        "recipient": hub_id,
        "recipient_key": seal_key_id if sealed else "",
        "origin": sender.code,
        "epoch": sender.epoch,
        "first_seq": first_seq,
        "last_seq": first_seq + count - 1,
        "count": count,
        "prev": prev,
        "hlc": hlc,
    }


def seal_body(served: Served, body: bytes) -> bytes:
    info = frame_mod.seal_info(served.hub.hub_id, served.hub.keys.seal_key_id)
    return frame_mod._hpke_seal(body, served.hub.keys.seal.public_key(), info)


ACCEPTED_ON = date(2026, 3, 2)


def application_fields(
    sender: Sender, serial: int, *, text: str = "", item: str = "360802-0001", catalogue: Catalogue | None = None
) -> dict[str, object]:
    """A new application of the sender's own exactly as ``sanji node accept`` writes it (the hub admits
    nothing else), with `text` (if any) in its free-text fields: name, address, note and theme.

    Dates, kind and materials come from ``catalogue`` (the built-in sample, release 1, by default)."""
    cat = catalogue or _sample_catalogue()
    entry = cat.items[item]
    t = text or f"测试申请人{serial:05d}"
    name = t[:50] if t[:50].strip() else f"测试申请人{serial:05d}"
    fields: dict[str, object] = {
        "number": application_number(sender.code, ACCEPTED_ON, 1, serial),
        "station": sender.code,
        "item": item,
        "catalogue_version": 1,
        "kind": entry.kind,
        "applicant_name": name,
        "applicant_id": id_number(serial),
        "applicant_phone": f"139{serial:08d}",
        "address": t[:200],
        "accepted_at": f"{ACCEPTED_ON.isoformat()}T09:00:00+08:00",
        "due_date": due_date(entry, ACCEPTED_ON, cat.calendar).isoformat(),
        "status": "accepted",
        "note": t,
    }
    if text:
        fields["theme"] = t[:20]
    for m in entry.materials:
        if m.required:
            fields[f"m.{m.name}"] = ["submitted", ""]
    return fields


def _sample_catalogue() -> Catalogue:
    global _SAMPLE
    if _SAMPLE is None:
        doc = json.loads(BUILTIN_CATALOGUE.read_text(encoding="utf-8"))
        _SAMPLE = parse_catalogue({**doc, "version": 1})
    return _SAMPLE


_SAMPLE: Catalogue | None = None


def snapshot_unchanged(before: Mapping[str, int], after: Mapping[str, int], *, allow: Iterable[str] = ()) -> list[str]:
    """Tables whose count moved although nothing should have (`allow` names the ones that may)."""
    allowed = set(allow)
    return [f"{t}: {before[t]} -> {after[t]}" for t in before if t not in allowed and before[t] != after[t]]
