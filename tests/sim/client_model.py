"""The station's conversations with the hub (node/client.py and node/reconcile.py), as generators.

A conversation yields each request it wants sent and is resumed with the answer, so the world can
put any fault between the two: loss, delay past the timeout, duplication, a crash on either side. An
exception out of the generator is the round failing, exactly where the real client would raise. The
round's commits so far stay; nothing else happens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator
from dataclasses import dataclass

from protocol.codec import pack, unpack
from protocol.document import open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from sync.change import change_from_wire
from sync.merkle import MerkleTree, ReconcileSession, depth_for
from sync.model import ModelError
from sync.scope import change_digest, leaves, record_key
from sync.session import AckResult, PushRound
from tests.sim.node_model import Refused, SimNode
from tests.sim.uplink_model import (
    adopt_keys,
    apply_feed,
    build_outbox,
    check_keys,
    mark_refused,
    pull_request,
    read_acks,
    unsettled,
)

KEYS_PER_REQUEST = 200
Row = tuple[str, int, int, int, str, str, bytes, bytes]


@dataclass(frozen=True)
class Request:
    kind: str  # "push" | "pull" | "reconcile"
    frames: tuple[bytes, ...] = ()
    doc: bytes = b""
    summary: str = ""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    summary: str = ""


Conversation = Generator[Request, Answer, None]


def sync_round(node: SimNode, *, max_batch: int, max_push: int) -> Conversation:
    """One sync round: the hub's key changes, push every unsettled batch, then pull the feed until it
    says there is no more."""
    build_outbox(node, max_batch)
    if node.follows_keys:
        # node/client.py asks `GET /v1/keys` first in every round. While the hub never rotates, its answer
        # is "nothing new" and changes nothing, so the request stays off the wire in runs that draw no
        # rotation: their random draws per message, and so every kept regression seed, stay as they were.
        yield from refresh_keys(node)
    check_keys(node)
    yield from push(node, max_push=max_push)
    yield from pull(node)


def refresh_keys(node: SimNode) -> Conversation:
    """hubkeys.refresh: ask for the key history after the list held, and follow it."""
    version = node.store.hub_keys_version
    answer = yield Request("keys", doc=pack({"after": version}), summary=f"after={version}")
    if answer.status != 200:
        raise Refused(f"the hub refused to send its key history: HTTP {answer.status}")
    try:
        bundle = unpack(answer.body)
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's key history is malformed: {exc}") from exc
    if isinstance(bundle, dict) and bundle.get("docs"):
        adopt_keys(node, bundle)


def push(node: SimNode, *, max_push: int) -> Conversation:
    for _attempt in range(2):  # a second pass only when a gap asked us to resend older batches
        batches = unsettled(node)
        if not batches:
            return
        frames = {o.batch_hash: f for o, f in batches}
        ranges = {o.batch_hash: f"{o.epoch}:{o.first_seq}-{o.last_seq}" for o, _ in batches}
        rnd = PushRound([o for o, _ in batches], max_count=max_push)
        gap = False
        while (request := rnd.next_request()) is not None:
            answer = yield Request(
                "push", frames=tuple(frames[h] for h in request), summary=",".join(ranges[h] for h in request)
            )
            if answer.status != 200:
                mark_refused(node, request, answer.body.decode(errors="replace"))
                continue
            acks = read_acks(node, answer.body)
            rnd.receive(acks)
            gap = gap or any(a.batch_hash not in rnd.settled and a.result is AckResult.GAP for a in acks)
        if not gap:
            return


def pull(node: SimNode) -> Conversation:
    """node/client.py ``pull``: every pull carries a nonce the page's signed header must answer; a page
    that does not (a replay by someone on the path) is refused, and a round that reached the hub without
    one answered page counts in ``stale_rounds`` (node/freshness.py: "区局数据可能已停更")."""
    reached = fresh = False
    try:
        for _ in range(1000):
            node.pulls += 1  # os.urandom(16) in the client; derived here so a seed stays deterministic
            nonce = hashlib.sha256(f"sim-nonce:{node.code}:{node.pulls}".encode()).digest()[:16]
            answer = yield Request(
                "pull", doc=pull_request(node, node.store.feed_cursor, nonce), summary=f"after={node.store.feed_cursor}"
            )
            reached = True
            if answer.status != 200:
                raise Refused(f"the hub refused the pull: {answer.body[:200].decode(errors='replace')}")
            if unanswered(answer.body, nonce):
                raise Refused(REPLAYED)
            page = apply_feed(node, answer.body)
            fresh = True  # a page that answered this pull was taken
            if not page.more:
                return
    finally:
        if reached:  # something claiming to be the hub answered: did the feed advance?
            node.store.stale_rounds = 0 if fresh else node.store.stale_rounds + 1


REPLAYED = "the page does not answer this pull's nonce (a replay?): the hub's data may be frozen"


def unanswered(page: bytes, nonce: bytes) -> bool:
    """node/client.py ``_unanswered``: the page's signed header lacks this pull's nonce. A page too
    damaged to read is left to apply_feed, which refuses it with the decoder's reason."""
    try:
        return peek_header(page).get("nonce") != nonce
    except RemoteProtocolError:
        return False


# -- anti-entropy (node/reconcile.py) ---------------------------------------------------------------


def node_rows(node: SimNode) -> list[Row]:
    return [
        (
            e.change.origin,
            e.change.epoch,
            e.change.seq,
            e.change.hlc,
            e.change.entity,
            e.change.id,
            e.fields_packed,
            e.base_packed,
        )
        for e in node.store.records.changes.values()
    ]


def build_tree(rows: list[Row], depth: int | None = None) -> MerkleTree:
    """replica/scope.py ``build_tree``: change digests grouped into record leaves, then the tree."""
    pairs = leaves((r[4], r[5], change_digest(*r)) for r in rows)
    return MerkleTree.build(pairs, depth if depth is not None else depth_for(len(pairs)))


def row_to_wire(r: Row) -> list[object]:
    return [r[0], r[1], r[2], r[3], r[4], r[5], unpack(r[6]), unpack(r[7])]


def ask(node: SimNode, body: dict[str, object]) -> Generator[Request, Answer, dict[str, object]]:
    req = sign_document(
        "reconcile-request",
        {**body, "at_ms": node.now()},
        signer=node.code,
        recipient=node.hub_id,
        signing_key=node.sign,
    )
    answer = yield Request("reconcile", doc=req, summary=str(body.get("op")))
    if answer.status != 200:
        raise Refused(f"the hub refused reconciliation: {answer.body[:200].decode(errors='replace')}")
    try:
        doc = open_document(
            answer.body, kind="reconcile", recipient=node.code, verify_key=node.hub_key, unseal_key=node.unseal
        )
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's reconciliation answer does not verify: {exc}") from exc
    if not isinstance(doc.body, dict):
        raise Refused("the hub's reconciliation answer is malformed")
    return doc.body


def _own_repairable(node: SimNode, rows: list[Row], held: set[tuple[str, int, int]]) -> tuple[list[Row], list[Row]]:
    epoch, batched = node.store.epoch, node.store.batched_seq
    own, foreign = [], []
    for r in rows:
        if (r[0], r[1], r[2]) in held:
            continue
        if r[0] == node.code:
            # Unbatched changes go up through the normal push; repair only what the hub once had.
            if r[1] < epoch or r[2] <= batched:
                own.append(r)
        else:
            foreign.append(r)
    return own, foreign


def _apply_theirs(node: SimNode, raw: object) -> int:
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
    s = node.store
    applied = s.records.apply(changes, node.authority, node.hooks.watch).applied
    for c in changes:
        node.observe(c.hlc)
    if "reconcile_returns_own_future_seqs" not in node.as_is and any(
        c.origin == node.code and c.epoch == s.epoch and c.seq > s.seq for c in changes
    ):
        # Our own change with a seq we have not written yet: this database was copied back without
        # anyone telling us. Move on to a new epoch so that none of those seqs is ever batched again.
        node.start_new_epoch()
    return applied


def reconcile_round(node: SimNode, *, max_batch: int, max_push: int) -> Conversation:
    """The nightly anti-entropy session: compare Merkle digests, then repair both sides."""
    build_outbox(node, max_batch)
    yield from push(node, max_push=max_push)
    rows = node_rows(node)
    merkle = ReconcileSession(build_tree(rows))
    request: dict[str, object] | None = merkle.first_request()
    while request is not None:
        answer = yield from ask(node, {"op": "merkle", "request": request})
        request = merkle.receive(answer.get("response"))
    result = merkle.result()
    keys = sorted(set(result.missing_here) | set(result.missing_there) | set(result.differing))
    for i in range(0, len(keys), KEYS_PER_REQUEST):
        part = keys[i : i + KEYS_PER_REQUEST]
        answer = yield from ask(node, {"op": "records", "keys": part})
        _apply_theirs(node, answer.get("changes"))
        held_raw = answer.get("held", [])
        held = (
            {(str(h[0]), int(h[1]), int(h[2])) for h in held_raw if isinstance(h, list)}
            if isinstance(held_raw, list)
            else set()
        )
        wanted = set(part)
        mine = [r for r in node_rows(node) if record_key(r[4], r[5]) in wanted]
        own, foreign = _own_repairable(node, mine, held)
        if own or foreign:
            s = node.store
            chain = {"epoch": s.epoch, "batched_seq": s.batched_seq, "hash": s.chain}
            yield from ask(
                node,
                {
                    "op": "repair",
                    "changes": [row_to_wire(r) for r in own],
                    "foreign": [row_to_wire(r) for r in foreign],
                    "chain": chain,
                },
            )
    yield from ask(node, {"op": "done"})
