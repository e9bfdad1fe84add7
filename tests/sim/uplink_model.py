"""The station's side of sync, in memory: node/uplink.py's outbox, acknowledgements and feed pages.

Batches are built once and kept byte for byte, so a retry is a duplicate the hub recognises. A hub
answer is trusted only after ``open_document`` has checked it against the hub key pinned at enrolment.
Every function here is one transaction of the real station: it validates before it mutates, so a
refusal leaves the store as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from protocol.batch import build_batch
from protocol.codec import unpack
from protocol.document import Document, open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.frame import MAGIC, peek_header
from protocol.hubkeys import KeyChainError, KeyList, check_current, follow
from sync.batching import plan_batches
from sync.change import Change, change_from_wire
from sync.hlc import tick
from sync.model import ModelError
from sync.session import SETTLED, Ack, AckResult, Outgoing
from tests.sim.node_model import OutboxRow, Refused, SimNode
from tests.sim.replica_model import NumberTaken

MAX_BATCH_BYTES = 1024 * 1024


def build_outbox(node: SimNode, max_count: int) -> int:
    """Put every own change not yet batched into signed (and, if so configured, sealed) batches."""
    s = node.store
    rows = sorted(
        (
            e
            for e in s.records.changes.values()
            if e.change.origin == node.code and e.change.epoch == s.epoch and e.change.seq > s.batched_seq
        ),
        key=lambda e: e.change.seq,
    )
    if not rows:
        return 0
    sizes = [len(e.fields_packed) + len(e.base_packed) + 48 for e in rows]
    chain = s.chain
    made: list[OutboxRow] = []
    for rng in plan_batches(sizes, max_count=max_count, max_bytes=MAX_BATCH_BYTES):
        part = [e.wire() for e in rows[rng.start : rng.stop]]
        first = rows[rng.start].change.seq
        frame = build_batch(
            origin=node.code,
            epoch=s.epoch,
            first_seq=first,
            changes=list(part),
            prev=chain,
            recipient=node.hub_id,
            hlc=s.hlc,
            signing_key=node.sign,
            seal_to=node.hub_seal if node.sealed else None,
            recipient_key=node.hub_seal_key_id if node.sealed else "",
        )
        chain = batch_id(frame)
        made.append(OutboxRow(chain, s.epoch, first, first + len(part) - 1, frame))
    s.outbox.extend(made)
    s.chain = chain
    s.batched_seq = rows[-1].change.seq
    return len(made)


def batch_id(frame: bytes) -> bytes:
    """A batch's id, SHA-256 of its signed header bytes (node/uplink.py verifies its own frame to read
    it; the simulator reads it directly, which is the same bytes without a second signature check)."""
    parts = unpack(frame[len(MAGIC) :])
    assert isinstance(parts, list) and isinstance(parts[0], bytes)
    return hashlib.sha256(parts[0]).digest()


def unsettled(node: SimNode) -> list[tuple[Outgoing, bytes]]:
    rows = sorted(
        (r for r in node.store.outbox if r.state in ("pending", "rejected")), key=lambda r: (r.epoch, r.first_seq)
    )
    return [(Outgoing(r.epoch, r.first_seq, r.last_seq, r.hash, len(r.frame)), r.frame) for r in rows]


def _row(node: SimNode, bhash: bytes) -> OutboxRow | None:
    return next((r for r in node.store.outbox if r.hash == bhash), None)


def mark_refused(node: SimNode, hashes: list[bytes], reason: str) -> None:
    """A push the hub refused as a whole (HTTP error): every batch in it is marked rejected."""
    for h in hashes:
        row = _row(node, h)
        if row is not None:
            row.state, row.reason = "rejected", reason


def read_acks(node: SimNode, data: bytes) -> list[Ack]:
    try:
        doc = open_document(data, kind="acks", recipient=node.code, verify_key=node.hub_key)
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's answer could not be verified: {exc}") from exc
    if node.hooks.took is not None:
        node.hooks.took(node.code, "acks", data, node.store.hub_keys_version)
    return record_acks(node, doc)


def record_acks(node: SimNode, doc: Document) -> list[Ack]:
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("acks"), list):
        raise Refused("the hub's answer has no acknowledgements")
    acks: list[Ack] = []
    for raw in body["acks"]:
        if not isinstance(raw, dict):
            continue
        try:
            result = AckResult(str(raw.get("result")))
        except ValueError:
            continue
        bhash = raw.get("batch")
        if not isinstance(bhash, bytes):
            continue
        ack = Ack(bhash, result, int(raw.get("expected") or 0), str(raw.get("reason") or ""))
        acks.append(ack)
        receipt = raw.get("receipt") if isinstance(raw.get("receipt"), bytes) else None
        row = _row(node, bhash)
        if result in SETTLED:
            if row is not None:
                row.state = "quarantined" if result is AckResult.QUARANTINED else "receipted"
                row.reason = ack.reason
                row.receipt = receipt or row.receipt
        elif result is AckResult.GAP:
            if row is not None:
                row.reason = ack.reason
                _requeue_from(node, row.epoch, ack.expected_seq)
        elif result is AckResult.FORK:
            if row is not None and (row.state != "superseded" or "fork_ack_requeues_superseded" in node.as_is):
                row.state, row.reason = "rejected", f"fork: {ack.reason}"
            n = reissue_after_fork(node, bhash)
            node.store.last_error = f"fork: {n} change(s) re-issued under epoch {node.store.epoch}"
        elif row is not None:
            row.state, row.reason = "rejected", f"{result.value}: {ack.reason}"
    return acks


def _requeue_from(node: SimNode, epoch: int, expected: int) -> None:
    """The hub lacks seqs we thought it held: send them again."""
    for r in node.store.outbox:
        if r.epoch == epoch and r.last_seq >= expected and r.state in ("receipted", "quarantined"):
            r.state = "pending"


def reissue_after_fork(node: SimNode, forked_hash: bytes) -> int:
    """node/epoch.py: re-issue, under a new epoch, the changes from the forked batch on."""
    s = node.store
    old = s.epoch
    row = _row(node, forked_hash)
    if row is None or row.epoch != old:
        return 0
    first = row.first_seq
    mine = sorted(
        (e for k, e in s.records.changes.items() if k[0] == node.code and k[1] == old and k[2] >= first),
        key=lambda e: e.change.seq,
    )
    for r in s.outbox:
        if r.epoch == old and r.last_seq >= first and r.state != "receipted":
            r.state = "superseded"
    for e in mine:
        del s.records.changes[e.change.key]
    epoch = node.start_new_epoch()
    hlc = s.hlc
    reissued = []
    restamped: dict[int, int] = {}
    for i, e in enumerate(mine, start=1):
        hlc = tick(hlc, node.now())
        c = e.change
        restamped[c.hlc] = hlc
        base = {name: restamped.get(seen, seen) for name, seen in c.base.items()}
        reissued.append(Change(node.code, epoch, i, hlc, c.entity, c.id, dict(c.fields), base))
        if node.hooks.wrote is not None:
            node.hooks.wrote(reissued[-1])
    s.records.apply(reissued, node.authority, node.hooks.watch)
    if node.hooks.stamped is not None and reissued:
        node.hooks.stamped(node.code, s.hlc, hlc)
    s.seq = len(reissued)
    s.hlc = hlc
    return len(reissued)


def pull_request(node: SimNode, after: int, nonce: bytes = b"") -> bytes:
    """The signed request that proves a pull comes from this station (fresh: it carries the time), with
    the nonce the page must answer (node/uplink.py)."""
    body: dict[str, object] = {
        "after": after,
        "catalogue_version": node.catalogue_version,
        "pending": pending_changes(node),
        "at_ms": node.now(),
    }
    if nonce:
        body["nonce"] = nonce
    return sign_document("pull", body, signer=node.code, recipient=node.hub_id, signing_key=node.sign)


def pending_changes(node: SimNode) -> int:
    s = node.store
    unbatched = s.seq - s.batched_seq
    queued = sum(r.last_seq - r.first_seq + 1 for r in s.outbox if r.state in ("pending", "rejected"))
    return max(unbatched, 0) + queued


@dataclass
class FeedResult:
    pulled: int
    next: int
    more: bool
    catalogue: str


def apply_feed(node: SimNode, data: bytes) -> FeedResult:
    """Verify one feed page with the pinned hub key and apply it as one transaction."""
    try:
        doc = open_document(data, kind="feed", recipient=node.code, verify_key=node.hub_key, unseal_key=node.unseal)
    except RemoteProtocolError as exc:
        raise Refused(f"feed refused: {exc}") from exc
    if node.hooks.took is not None:
        node.hooks.took(node.code, "feed", data, node.store.hub_keys_version)
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("changes"), list):
        raise Refused("feed page has no changes list")
    changes = []
    for raw in body["changes"]:
        try:
            changes.append(change_from_wire(raw))
        except ModelError as exc:
            raise Refused(f"feed page carries an invalid change: {exc}") from exc
    s = node.store
    as_is = "feed_page_skips_ahead" in node.as_is
    generation = body.get("generation")
    restarted = False
    if isinstance(generation, str) and generation != s.hub_generation:
        known = s.hub_generation
        s.hub_generation = generation
        if known:
            s.feed_cursor = 0
            restarted = True
            if as_is:
                return FeedResult(0, 0, True, "")
    outcome = ""
    saved = (dict(s.catalogues), dict(s.origins), s.catalogue_warning)
    try:
        if isinstance(body.get("catalogue"), bytes):
            _, outcome = node.store_catalogue(body["catalogue"])
        origins = body.get("origins")
        if isinstance(origins, dict):
            for code, tier in origins.items():
                if str(tier) in ("district", "township", "street", "village", "community", "field"):
                    s.origins[str(code)] = str(tier)
        result = s.records.apply(changes, node.authority, node.hooks.watch)
    except (Refused, NumberTaken):
        s.catalogues, s.origins, s.catalogue_warning = saved  # one transaction: all or nothing
        raise
    for c in changes:
        node.observe(c.hlc)
    nxt = int(body.get("next") or 0)
    # A page that starts past our cursor (asked for before the cursor went back: the hub's new
    # generation, or our own restore) may not move it: the entries in between were never pulled.
    if nxt > s.feed_cursor and (as_is or int(body.get("after") or 0) <= s.feed_cursor):
        s.feed_cursor = nxt
    return FeedResult(result.applied, nxt, bool(body.get("more")) or restarted, outcome)


def import_file(node: SimNode, data: bytes) -> str:
    """A hub file carried by hand (node/uplink.py ``import_files``): feed page, release or acks."""
    try:
        kind = str(peek_header(data).get("kind", ""))
        if kind == "feed":
            apply_feed(node, data)
        elif kind == "catalogue":
            _, outcome = node.store_catalogue(data)
            if outcome == "rollback_refused":
                raise Refused("older than the catalogue this station already has (rollback refused)")
        elif kind == "acks":
            read_acks(node, data)
        else:
            raise Refused(f"not a hub file for this station (kind {kind!r})")
    except (Refused, RemoteProtocolError) as exc:
        return f"refused: {exc}"
    return "accepted"


# -- the hub's keys (node/hubkeys.py) ------------------------------------------------------------------


def check_keys(node: SimNode) -> None:
    """hubkeys.check: nothing is taken from the hub while the key list held is past its expiry."""
    s = node.store
    if not s.hub_keys_expires:
        return
    try:
        check_current(
            KeyList(s.hub_root_pub, s.hub_keys_version, s.hub_sign_pub, b"", 0, s.hub_keys_expires), node.now()
        )
    except KeyChainError as exc:
        raise Refused(str(exc)) from exc


def adopt_keys(node: SimNode, bundle: object) -> bool:
    """hubkeys.adopt: follow the hub's key history from the root pinned, then keep the re-signed release.
    One transaction: a release refused leaves the keys as they were. True when a new list was pinned."""
    if not isinstance(bundle, dict) or not isinstance(bundle.get("docs"), list):
        raise Refused("the hub's key history is malformed")
    s = node.store
    docs = [d for d in bundle["docs"] if isinstance(d, bytes)]
    anchor = s.hub_root_pub or s.hub_sign_pub
    try:
        root, keys = follow(docs, hub_id=node.hub_id, anchor=anchor, version=s.hub_keys_version)
        if keys is not None:
            check_current(keys, node.now())
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's key history does not verify from the root this station pinned: {exc}") from exc
    saved = (s.hub_root_pub, s.hub_sign_pub, s.hub_keys_version, s.hub_keys_expires)
    if keys is not None:
        node.pin(keys)
    elif root != anchor:
        s.hub_root_pub = root
    release = bundle.get("release")
    if isinstance(release, bytes):
        try:
            version, outcome = node.store_catalogue(release)
        except Refused:  # store_catalogue refuses before it writes anything
            s.hub_root_pub, s.hub_sign_pub, s.hub_keys_version, s.hub_keys_expires = saved
            node.pin(KeyList(saved[0], saved[2], saved[1], b"", 0, saved[3]))
            raise
        if outcome == "unchanged":  # the same release signed again by the new key: keep that copy
            s.catalogues[version] = release
    return keys is not None
