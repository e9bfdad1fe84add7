"""The station's side of anti-entropy: compare Merkle digests with the hub and repair both sides.

The station initiates (it is often behind NAT). Bytes exchanged grow with the differences, not with
the data: only differing subtrees are descended into, and only differing records' changes travel.
See hub/reconcile.py for the hub's side and the steps of the conversation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from node import blobs, client, hub_answer
from node.epoch import start_new_epoch
from node.station import Station
from protocol.document import open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.limits import ERROR_BODY_MAX_BYTES
from replica.errors import Refused
from replica.scope import CHANGE_COLS, Row, digests, row_to_wire, select_records
from sync.change import change_from_wire
from sync.merkle import MerkleTree, ReconcileSession, depth_for
from sync.model import ModelError
from sync.scope import leaves, record_key

SCOPE_SQL = f"SELECT {CHANGE_COLS} FROM changes c WHERE 1=1"
KEYS_PER_REQUEST = 200


@dataclass
class Outcome:
    buckets_compared: int
    divergent: int
    repaired: int
    bytes: int
    summary_match: bool | None
    repaired_here: int = 0
    repaired_there: int = 0
    held_there: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "buckets_compared": self.buckets_compared,
            "divergent": self.divergent,
            "repaired": self.repaired,
            "bytes": self.bytes,
            "summary_match": self.summary_match,
            "repaired_here": self.repaired_here,
            "repaired_there": self.repaired_there,
            "held_there": self.held_there,
        }


class Conversation:
    def __init__(self, st: Station, session: aiohttp.ClientSession, url: str) -> None:
        self.st = st
        self.session = session
        self.url = url
        self.bytes = 0

    async def ask(self, body: dict[str, object]) -> dict[str, object]:
        st = self.st
        req = sign_document(
            "reconcile-request",
            {**body, "at_ms": st.clock()},
            signer=st.code,
            recipient=st.hub_id,
            signing_key=st.keys.sign,
        )
        async with self.session.post(
            f"{self.url}/v1/reconcile", data=req, headers={"Content-Type": "application/vnd.sanji.document"}
        ) as resp:
            if resp.status != 200:
                data = await hub_answer.read_body(resp, what="区局的对账说明", cap=ERROR_BODY_MAX_BYTES)
                raise Refused(f"the hub refused reconciliation: {data[:300].decode(errors='replace')}")
            data = await hub_answer.read_body(resp, what="区局的对账应答")
            self.bytes += len(req) + len(data)
        try:
            doc = open_document(
                data,
                kind="reconcile",
                recipient=st.code,
                verify_key=st.hub_key,
                unseal_key=lambda k: st.keys.seal if k == st.keys.seal_key_id else None,
            )
        except RemoteProtocolError as exc:
            raise Refused(f"the hub's reconciliation answer does not verify: {exc}") from exc
        if not isinstance(doc.body, dict):
            raise Refused("the hub's reconciliation answer is malformed")
        return doc.body


def _own_repairable(st: Station, rows: list[Row], held: set[tuple[str, int, int]]) -> tuple[list[Row], list[Row]]:
    """Split what we hold and the hub lacks into our own (batched) changes and other origins'."""
    epoch, batched = st.meta.int("epoch", 1), st.meta.int("batched_seq")
    own, foreign = [], []
    for r in rows:
        if (r[0], r[1], r[2]) in held:
            continue
        if r[0] == st.code:
            # Unbatched changes go up through the normal push; repair only what the hub once had.
            if r[1] < epoch or r[2] <= batched:
                own.append(r)
        else:
            foreign.append(r)
    return own, foreign


async def run(st: Station, url: str) -> Outcome:
    async with aiohttp.ClientSession(timeout=client.TIMEOUT) as session:
        await client.push(st, session, url)  # what is merely pending goes the normal way first
        talk = Conversation(st, session, url)
        tree = scope_tree(st)
        merkle = ReconcileSession(tree)
        request: dict[str, object] | None = merkle.first_request()
        while request is not None:
            answer = await talk.ask({"op": "merkle", "request": request})
            request = merkle.receive(answer.get("response"))
        result = merkle.result()
        keys = sorted(set(result.missing_here) | set(result.missing_there) | set(result.differing))
        outcome = Outcome(result.buckets_compared, len(keys), 0, 0, None)
        for i in range(0, len(keys), KEYS_PER_REQUEST):
            part = keys[i : i + KEYS_PER_REQUEST]
            answer = await talk.ask({"op": "records", "keys": part})
            outcome.repaired_here += _apply_theirs(st, answer.get("changes"))
            held = {(str(h[0]), int(h[1]), int(h[2])) for h in answer.get("held", []) if isinstance(h, list)}
            own, foreign = _own_repairable(st, select_records(st.conn, SCOPE_SQL, (), part), held)
            if own or foreign:
                chain = {
                    "epoch": st.meta.int("epoch", 1),
                    "batched_seq": st.meta.int("batched_seq"),
                    "hash": st.meta.bytes("chain", bytes(32)),
                }
                got = await talk.ask(
                    {
                        "op": "repair",
                        "changes": [row_to_wire(r) for r in own],
                        "foreign": [row_to_wire(r) for r in foreign],
                        "chain": chain,
                    }
                )
                outcome.repaired_there += int(str(got.get("applied", 0)))
                outcome.held_there += int(str(got.get("held", 0)))
        outcome.repaired = outcome.repaired_here + outcome.repaired_there
        got = await talk.ask({"op": "summary"})
        outcome.summary_match = _check_summary(st, got.get("summary"))
        await talk.ask({"op": "done", **outcome.to_dict(), "bytes": talk.bytes})
        outcome.bytes = talk.bytes
        return outcome


def scope_tree(st: Station) -> MerkleTree:
    """Our scope's tree. Tasks purged here count with the leaf they had before their details were cut."""
    blobs.store_of(st)  # makes sure the purge bookkeeping exists on a station that never had a task
    kept = {
        record_key(str(e), str(i)): bytes(leaf)
        for e, i, leaf in st.conn.execute("SELECT entity, id, leaf FROM purged WHERE leaf IS NOT NULL")
    }
    rows: list[Row] = [r for r in st.conn.execute(SCOPE_SQL).fetchall() if record_key(r[4], r[5]) not in kept]
    pairs = sorted([*leaves(digests(rows)), *kept.items()])
    return MerkleTree.build(pairs, depth_for(len(pairs)))


def _apply_theirs(st: Station, raw: object) -> int:
    if not isinstance(raw, list):
        return 0
    changes = []
    for w in raw:
        try:
            changes.append(change_from_wire(w))
        except ModelError:
            continue
    if not changes:
        return 0
    with st.transaction():
        applied = st.records.apply(changes).applied
        for c in changes:
            st.observe(c.hlc)
        epoch, seq = st.meta.int("epoch", 1), st.meta.int("seq")
        if any(c.origin == st.code and (c.epoch > epoch or (c.epoch == epoch and c.seq > seq)) for c in changes):
            # The hub held changes of ours beyond our own counter: this database went back in time
            # (copied back by hand). Continue in a new epoch so the next write cannot reuse their keys.
            start_new_epoch(st)
    return applied


def _check_summary(st: Station, raw: object) -> bool | None:
    """Compare the hub's signed count of our applications by status with our own."""
    if not isinstance(raw, bytes):
        return None
    try:
        doc = open_document(raw, kind="summary", recipient=st.code, verify_key=st.hub_key)
    except RemoteProtocolError:
        return False
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("by_status"), dict):
        return False
    ours = dict(
        st.conn.execute(
            "SELECT status, COUNT(*) FROM applications WHERE station=? GROUP BY status", (st.code,)
        ).fetchall()
    )
    match = {str(k): int(v) for k, v in ours.items()} == {str(k): int(v) for k, v in body["by_status"].items()}
    if not match:
        with st.transaction():
            st.meta.set("last_error", "nightly check: the hub's count of our applications differs from ours")
    return match


def reconcile(st: Station, url: str | None = None) -> Outcome:
    url = (url or st.meta.text("hub_url")).rstrip("/")
    if not url:
        raise Refused("this station has no hub address; reconciliation needs the network")
    try:
        return asyncio.run(run(st, url))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise hub_answer.unreachable(url, exc, "本次未对账，稍后或夜间任务会再试") from exc
