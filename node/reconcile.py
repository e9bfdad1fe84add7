"""The station's side of anti-entropy: compare Merkle digests with the hub and repair both sides.

The station initiates (it is often behind NAT). Bytes exchanged grow with the differences, not with
the data: only differing subtrees are descended into, and only differing records' changes travel.
See hub/reconcile.py for the hub's side and the steps of the conversation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from node import blobs, client, conversation, hub_answer, scope_leaves
from node.conversation import drive_async
from node.epoch import start_new_epoch
from node.station import Station
from protocol.codec import unpack
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.reconciliation import MerkleAnswer, RecordsAnswer, RepairAnswer, Summary, SummaryAnswer
from replica.errors import Refused
from replica.scope import CHANGE_COLS, Row, row_to_wire, select_records
from sync.change import change_from_wire
from sync.merkle import MerkleTree, ReconcileSession
from sync.model import ModelError

# hub_seal: changes whose personal values are sealed at rest carry them sealed to the hub
# (protocol/hub_seal.py), in a repair as in a batch: our own, other origins' we re-send (the hub holds
# those for review, seal intact), and ours minimised to masks (node/at_rest_minimise.py).
SCOPE_SQL = f"SELECT {CHANGE_COLS}, c.hub_seal FROM changes c WHERE 1=1"
KEYS_PER_REQUEST = 200
A = TypeVar("A")


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
    """One reconciliation step at a time over HTTP (kept for tests that send a step of their own)."""

    def __init__(self, st: Station, session: aiohttp.ClientSession, url: str) -> None:
        self.st = st
        self.session = session
        self.url = url
        self.talk = conversation.Talk()

    @property
    def bytes(self) -> int:
        return self.talk.bytes

    async def ask(self, read: Callable[[object], A], op: str, **fields: Any) -> A:
        """One step: the request ``op`` with its ``fields``, and the hub's answer as ``read`` reads it."""
        step = conversation.ask(self.st, read, op, self.talk, **fields)
        return await drive_async(step, client.carrier(self.session, self.url))


def repair_wire(r: Row) -> list[object]:
    """A scope row as a repair re-sends it: with its hub seal as the tenth element when it has one."""
    wire = row_to_wire(r[:9])  # type: ignore[arg-type]
    seal = r[9] if len(r) > 9 else None  # type: ignore[misc]
    if not seal:
        return wire
    return [*wire[:8], r[8], unpack(bytes(seal))]  # type: ignore[arg-type]


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


def session(st: Station, *, max_count: int = 64) -> conversation.Conversation[Outcome]:
    """The nightly session, sans I/O (node/conversation.py): push what is pending, compare Merkle
    digests, repair both sides, then compare the hub's signed count of our applications."""
    yield from conversation.push(st, max_count=max_count)  # what is merely pending goes the normal way first
    talk = conversation.Talk()
    tree = scope_tree(st)
    merkle = ReconcileSession(tree)
    request: dict[str, object] | None = merkle.first_request()
    while request is not None:
        answer = yield from conversation.ask(st, MerkleAnswer.from_wire, "merkle", talk, request=request)
        request = merkle.receive(answer.response)
    result = merkle.result()
    keys = sorted(set(result.missing_here) | set(result.missing_there) | set(result.differing))
    outcome = Outcome(result.buckets_compared, len(keys), 0, 0, None)
    for i in range(0, len(keys), KEYS_PER_REQUEST):
        part = keys[i : i + KEYS_PER_REQUEST]
        records = yield from conversation.ask(st, RecordsAnswer.from_wire, "records", talk, keys=tuple(part))
        outcome.repaired_here += _apply_theirs(st, list(records.changes))
        own, foreign = _own_repairable(st, select_records(st.conn, SCOPE_SQL, (), part), set(records.held))
        if own or foreign:
            chain = {
                "epoch": st.meta.int("epoch", 1),
                "batched_seq": st.meta.int("batched_seq"),
                "hash": st.meta.bytes("chain", bytes(32)),
            }
            got = yield from conversation.ask(
                st,
                RepairAnswer.from_wire,
                "repair",
                talk,
                changes=tuple(repair_wire(r) for r in own),
                foreign=tuple(repair_wire(r) for r in foreign),
                chain=chain,
            )
            outcome.repaired_there += got.applied
            outcome.held_there += got.held
    outcome.repaired = outcome.repaired_here + outcome.repaired_there
    summary = yield from conversation.ask(st, SummaryAnswer.from_wire, "summary", talk)
    outcome.summary_match = _check_summary(st, summary.summary)
    yield from conversation.ask(st, SummaryAnswer.from_wire, "done", talk, **{**outcome.to_dict(), "bytes": talk.bytes})
    outcome.bytes = talk.bytes
    return outcome


async def run(st: Station, url: str) -> Outcome:
    async with aiohttp.ClientSession(timeout=client.TIMEOUT) as http:
        return await drive_async(session(st), client.carrier(http, url))


def scope_tree(st: Station) -> MerkleTree:
    """Our scope's tree from the leaves kept since the last reconciliation (node/scope_leaves.py).
    Tasks purged here count with the leaf they had before their details were cut."""
    blobs.store_of(st)  # makes sure the purge bookkeeping exists on a station that never had a task
    with st.transaction():
        return scope_leaves.tree(st.conn)


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


def _check_summary(st: Station, raw: bytes) -> bool | None:
    """Compare the hub's signed count of our applications by status with our own."""
    try:
        doc = open_document(raw, kind=Summary.KIND, recipient=st.code, verify_key=st.hub_key)
        body = Summary.from_wire(doc.body)
    except RemoteProtocolError:
        return False
    ours = dict(
        st.conn.execute(
            "SELECT status, COUNT(*) FROM applications WHERE station=? GROUP BY status", (st.code,)
        ).fetchall()
    )
    match = {str(k): int(v) for k, v in ours.items()} == body.by_status
    if not match:
        with st.transaction():
            st.meta.set(
                "last_error", "夜间核对：区局统计的本站办件数与本站不符，请运行 sanji node reconcile，仍不符请联系区局"
            )
    return match


def reconcile(st: Station, url: str | None = None) -> Outcome:
    url = (url or st.meta.text("hub_url")).rstrip("/")
    if not url:
        raise Refused(
            "本站没有区局地址（只用U盘交换），对账须联网：通网后用 sanji node set-hub 设置地址再对账 (no hub address)"
        )
    try:
        return asyncio.run(run(st, url))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise hub_answer.unreachable(url, exc, "本次未对账，稍后或夜间任务会再试") from exc
