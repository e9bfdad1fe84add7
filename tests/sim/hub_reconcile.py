"""The hub's side of anti-entropy (hub/reconcile.py) and of quarantine review (hub/quarantine_review.py).

A station's scope at the hub is every change it authored that the hub holds (applied or held in
quarantine) plus every change in its feed. The Merkle comparison and the admission of re-sent
changes are the real ``sync.merkle`` and ``sync.ingest`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.codec import pack, unpack
from protocol.document import open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.keys import key_id, load_seal_public
from sync.change import change_from_wire
from sync.hlc import HUB_QUARANTINE_AHEAD_MS
from sync.ingest import admit
from sync.merkle import answer, request_depth
from sync.model import Actor, ModelError
from sync.scope import record_key
from sync.session import Cursor
from tests.sim.client_model import Row, build_tree, row_to_wire
from tests.sim.hub_model import PULL_WINDOW_MS, SimHub
from tests.sim.replica_model import Logged, NumberTaken

MAX_KEYS = 256
# The operator judges a held clock by looking at it, not by the hub's automatic limit.
OPERATOR_AHEAD_MS = 400 * 86_400_000


def _row(e: Logged) -> Row:
    c = e.change
    return (c.origin, c.epoch, c.seq, c.hlc, c.entity, c.id, e.fields_packed, e.base_packed)


def wire_rows(raws: Iterable[bytes]) -> list[Row]:
    out: list[Row] = []
    for raw in raws:
        try:
            w = unpack(raw)
        except RemoteProtocolError:
            continue
        if not (isinstance(w, list) and len(w) == 8 and isinstance(w[6], dict) and isinstance(w[7], dict)):
            continue
        origin, epoch, seq, hlc, entity, rid = w[:6]
        if (
            isinstance(origin, str)
            and isinstance(entity, str)
            and isinstance(rid, str)
            and all(isinstance(x, int) for x in (epoch, seq, hlc))
        ):
            assert isinstance(epoch, int) and isinstance(seq, int) and isinstance(hlc, int)
            out.append((origin, epoch, seq, hlc, entity, rid, pack(w[6]), pack(w[7])))
    return out


def scope_rows(hub: SimHub, station: str) -> list[Row]:
    s = hub.store
    fed = set(s.feeds.get(station, []))
    rows = [
        _row(e)
        for e in s.records.changes.values()
        if e.change.origin == station or (e.rowid in fed and e.change.origin != station)
    ]
    rows += wire_rows(
        q.raw for q in s.quarantine if q.origin == station and not q.whole_batch and q.state != "released"
    )
    return rows


def _held(hub: SimHub, origin: str, epoch: int, seq: int) -> bool:
    if hub.store.records.has(origin, epoch, seq):
        return True
    return any(
        q.origin == origin and q.epoch == epoch and q.seq == seq and not q.whole_batch for q in hub.store.quarantine
    )


def repair(hub: SimHub, station: str, body: dict[str, object]) -> dict[str, object]:
    """Own re-sent changes are admitted like any batch; foreign ones are held for review."""
    now = hub.clock()
    applied = held = skipped = 0
    own, foreign = body.get("changes", []), body.get("foreign", [])
    if not isinstance(own, list) or not isinstance(foreign, list):
        raise ValueError("repair needs lists of changes")
    actor = Actor(station, hub.tiers().get(station, "field"))
    for raw in own:
        try:
            change = change_from_wire(raw)
        except ModelError as exc:
            hub.hold(station, 0, 0, b"", pack(raw), f"repair: invalid change: {exc}")
            held += 1
            continue
        if change.origin != station:
            raise ValueError("a station may re-send only its own changes as its own")
        if _held(hub, change.origin, change.epoch, change.seq):
            skipped += 1
            continue
        adm = admit(
            change,
            actor=actor,
            context=hub.context(change),
            hub_wall_ms=now,
            max_ahead_ms=HUB_QUARANTINE_AHEAD_MS,
            facts=hub.facts(change),
        )
        if adm.admitted:
            if hub.hooks.admitted is not None:
                hub.hooks.admitted(change, now)
            hub.apply([change])
            hub.observe_hlc(change.hlc)
            applied += 1
        else:
            hub.hold(change.origin, change.epoch, change.seq, b"", pack(raw), f"repair: {adm.reason}")
            held += 1
    for raw in foreign:
        try:
            change = change_from_wire(raw)
        except ModelError:
            continue
        if _held(hub, change.origin, change.epoch, change.seq):
            skipped += 1
            continue
        hub.hold(
            change.origin,
            change.epoch,
            change.seq,
            b"",
            pack(raw),
            f"re-sent by {station} during reconciliation; only its origin can vouch for it",
        )
        held += 1
    _fast_forward(hub, station, body.get("chain"))
    return {"applied": applied, "held": held, "skipped": skipped}


def _fast_forward(hub: SimHub, station: str, chain: object) -> None:
    if not isinstance(chain, dict):
        return
    epoch, last, bhash = chain.get("epoch"), chain.get("batched_seq"), chain.get("hash")
    if not (isinstance(epoch, int) and isinstance(last, int) and isinstance(bhash, bytes) and len(bhash) == 32):
        return
    cursor = hub.store.cursors.get((station, epoch), Cursor())
    if last < cursor.next_seq:
        return
    seqs = {k[2] for k in hub.store.records.changes if k[0] == station and k[1] == epoch}
    seqs |= {q.seq for q in hub.store.quarantine if q.origin == station and q.epoch == epoch and not q.whole_batch}
    if all(n in seqs for n in range(cursor.next_seq, last + 1)):
        hub.store.cursors[(station, epoch)] = Cursor(last + 1, bhash)


def handle(hub: SimHub, request: bytes) -> tuple[int, bytes]:
    """One reconcile step from a station: verify it, answer it signed and (if configured) sealed."""
    try:
        station = str(peek_header(request).get("signer", ""))
        doc = open_document(request, kind="reconcile-request", recipient=hub.hub_id, verify_key=hub.verify_key)
    except RemoteProtocolError as exc:
        return exc.status, str(exc).encode()
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("at_ms"), int):
        return 400, b"reconcile request body is malformed"
    if abs(int(body["at_ms"]) - hub.clock()) > PULL_WINDOW_MS:
        return 403, b"stale: reconcile request is stale or from a clock far off"
    op = body.get("op")
    result: dict[str, object]
    if op == "merkle":
        req = body.get("request")
        tree = build_tree(scope_rows(hub, station), request_depth(req))
        result = {"response": answer(tree, req)}
    elif op == "records":
        keys = body.get("keys")
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            return 400, b"records needs at most 256 record keys"
        wanted = {str(k) for k in keys}
        rows = [r for r in scope_rows(hub, station) if record_key(r[4], r[5]) in wanted]
        result = {"changes": [row_to_wire(r) for r in rows], "held": sorted([r[0], r[1], r[2]] for r in rows)}
    elif op == "repair":
        saved = hub.store.savepoint()
        try:
            result = repair(hub, station, body)
        except (NumberTaken, ValueError) as exc:
            hub.store = saved
            return 500, f"repair failed: {exc}".encode()
    elif op == "done":
        result = {}
    else:
        return 400, b"unknown reconcile step"
    seal = hub.store.stations[station].seal_pub
    return 200, sign_document(
        "reconcile",
        result,
        signer=hub.hub_id,
        recipient=station,
        signing_key=hub.sign,
        seal_to=load_seal_public(seal) if hub.sealed else None,
        recipient_key=key_id(seal) if hub.sealed else "",
    )


# Refusals that another held change can lift (a rating waits for the completion it follows).
WAITS_FOR_ANOTHER = frozenset({"rating_too_early", "unknown_application", "unknown_base", "builds_on_held"})


def review_quarantine(hub: SimHub) -> tuple[int, int]:
    """The operator's review: release authentic changes held only for their clock or for arriving before
    their application, once field ownership checks out; reject the rest. Returns (released, rejected)."""
    released = rejected = 0
    progress = True
    while progress:
        progress = False
        for q in hub.store.quarantine:
            if q.state != "open" or q.whole_batch:
                continue
            try:
                change = change_from_wire(unpack(q.raw))
            except (ModelError, RemoteProtocolError):
                q.state = "rejected"
                rejected += 1
                continue
            if change.key != (q.origin, q.epoch, q.seq):
                q.state = "rejected"
                rejected += 1
                continue
            actor = Actor(change.origin, hub.tiers().get(change.origin, "field"))
            context = hub.context(change)
            if context is None:
                continue  # its application may still be released in this pass
            adm = admit(
                change,
                actor=actor,
                context=context,
                hub_wall_ms=hub.clock(),
                max_ahead_ms=OPERATOR_AHEAD_MS,
                facts=hub.facts(change),
            )
            if not adm.admitted and adm.code in WAITS_FOR_ANOTHER:
                continue  # what it builds on may be released later in this review
            if not adm.admitted:
                q.state = "rejected"
                rejected += 1
                continue
            try:
                hub.apply([change])
            except NumberTaken:
                continue  # the release fails on the unique index; the operator sees the error
            if (change.hlc >> 16) <= hub.clock() + HUB_QUARANTINE_AHEAD_MS:
                hub.observe_hlc(change.hlc)
            q.state = "released"
            released += 1
            progress = True
    return released, rejected
