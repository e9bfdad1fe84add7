"""The station's side of sync: build batches, push them, pull the feed, and the same by USB.

Batches are built once and kept byte for byte in the outbox, so a retry after a lost answer is a
duplicate the hub recognises, never a fork. Pushing offers every unsettled batch in order; one that is
refused is marked with the hub's reason and the rest still go. The hub's answers and feed pages are
opened only with the hub key pinned at enrolment.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from node.station import Station
from protocol.batch import batch_filename, build_batch, verify_batch
from protocol.codec import pack, unpack
from protocol.document import Document, open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.keys import load_seal_public
from replica.errors import Refused
from replica.ids import iso_from_ms
from sync.batching import plan_batches
from sync.change import change_from_wire
from sync.model import ModelError
from sync.session import SETTLED, Ack, AckResult, Outgoing

MAX_BATCH_CHANGES = 2000
MAX_BATCH_BYTES = 1024 * 1024
REQUEST_HEADER = "X-Sanji-Request"


def build_outbox(st: Station) -> int:
    """Put every own change not yet batched into signed, sealed batches. Returns batches made."""
    made = 0
    with st.transaction():
        epoch = st.meta.int("epoch", 1)
        done = st.meta.int("batched_seq")
        rows = st.conn.execute(
            "SELECT seq, hlc, entity, rid, fields, base FROM changes WHERE origin=? AND epoch=? AND seq>? ORDER BY seq",
            (st.code, epoch, done),
        ).fetchall()
        if not rows:
            return 0
        wires = [[st.code, epoch, r[0], r[1], r[2], r[3], unpack(r[4]), unpack(r[5])] for r in rows]
        sizes = [len(r[4]) + len(r[5]) + 48 for r in rows]
        chain = st.meta.bytes("chain", bytes(32))
        hub_seal = st.meta.bytes("hub_seal_pub")
        for rng in plan_batches(sizes, max_count=MAX_BATCH_CHANGES, max_bytes=MAX_BATCH_BYTES):
            part = wires[rng.start:rng.stop]
            first = int(str(part[0][2]))
            frame = build_batch(
                origin=st.code, epoch=epoch, first_seq=first, changes=list(part), prev=chain, recipient=st.hub_id,
                hlc=st.meta.int("hlc"), signing_key=st.keys.sign, seal_to=load_seal_public(hub_seal),
                recipient_key=st.meta.text("hub_seal_key_id"),
            )
            vb = verify_batch(frame, recipient=st.hub_id, verify_key=lambda s, k: st.keys.sign.public_key())
            chain = vb.frame.header_hash
            st.conn.execute(
                "INSERT INTO outbox (hash, epoch, first_seq, last_seq, frame, state, created_ms)"
                " VALUES (?,?,?,?,?,'pending',?)",
                (chain, epoch, first, first + len(part) - 1, frame, st.clock()),
            )
            made += 1
        st.meta.set("chain", chain)
        st.meta.set("batched_seq", int(str(wires[-1][2])))
    return made


def unsettled(st: Station) -> list[tuple[Outgoing, bytes]]:
    rows = st.conn.execute(
        "SELECT hash, epoch, first_seq, last_seq, frame FROM outbox WHERE state IN ('pending', 'rejected')"
        " ORDER BY epoch, first_seq"
    ).fetchall()
    return [(Outgoing(int(r[1]), int(r[2]), int(r[3]), bytes(r[0]), len(r[4])), bytes(r[4])) for r in rows]


def read_acks(st: Station, data: bytes) -> list[Ack]:
    """Open the hub's signed answer to a push and record every acknowledgement in the outbox."""
    try:
        doc = open_document(data, kind="acks", recipient=st.code, verify_key=st.hub_key)
    except RemoteProtocolError as exc:
        raise Refused(f"the hub's answer could not be verified: {exc}") from exc
    return record_acks(st, doc)


def record_acks(st: Station, doc: Document) -> list[Ack]:
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("acks"), list):
        raise Refused("the hub's answer has no acknowledgements")
    acks: list[Ack] = []
    with st.transaction():
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
            if result in SETTLED:
                st.conn.execute(
                    "UPDATE outbox SET state=?, reason=?, receipt=COALESCE(?, receipt),"
                    " receipted_ms=COALESCE(receipted_ms, ?) WHERE hash=?",
                    ("quarantined" if result is AckResult.QUARANTINED else "receipted", ack.reason,
                     receipt or None, st.clock(), bhash),
                )
            elif result is AckResult.GAP:
                st.conn.execute("UPDATE outbox SET reason=? WHERE hash=?", (ack.reason, bhash))
                _requeue_from(st, bhash, ack.expected_seq)
            else:
                st.conn.execute("UPDATE outbox SET state='rejected', reason=? WHERE hash=?",
                                (f"{result.value}: {ack.reason}", bhash))
    return acks


def _requeue_from(st: Station, bhash: bytes, expected: int) -> None:
    """The hub lacks seqs we thought it held (it was restored from a backup): send them again."""
    row = st.conn.execute("SELECT epoch FROM outbox WHERE hash=?", (bhash,)).fetchone()
    if row is None:
        return
    st.conn.execute(
        "UPDATE outbox SET state='pending' WHERE epoch=? AND last_seq>=? AND state IN ('receipted', 'quarantined')",
        (int(row[0]), expected),
    )


def pull_request(st: Station, after: int) -> str:
    """The signed header that proves a pull comes from this station (fresh: it carries the time)."""
    cat = st.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0
    doc = sign_document(
        "pull", {"after": after, "catalogue_version": int(cat), "pending": st.pending_changes(), "at_ms": st.clock()},
        signer=st.code, recipient=st.hub_id, signing_key=st.keys.sign,
    )
    return base64.b64encode(doc).decode()


@dataclass
class FeedResult:
    pulled: int
    next: int
    more: bool
    catalogue: str


def apply_feed(st: Station, data: bytes) -> FeedResult:
    """Verify one feed page with the pinned hub key and apply it in one transaction."""
    try:
        doc = open_document(data, kind="feed", recipient=st.code, verify_key=st.hub_key,
                            unseal_key=lambda k: st.keys.seal if k == st.keys.seal_key_id else None)
    except RemoteProtocolError as exc:
        raise Refused(f"feed refused: {exc}") from exc
    body = doc.body
    if not isinstance(body, dict) or not isinstance(body.get("changes"), list):
        raise Refused("feed page has no changes list")
    changes = []
    for raw in body["changes"]:
        try:
            changes.append(change_from_wire(raw))
        except ModelError as exc:
            raise Refused(f"feed page carries an invalid change: {exc}") from exc
    outcome = ""
    with st.transaction():
        origins = body.get("origins")
        if isinstance(origins, dict):
            st.remember_origins({str(k): str(v) for k, v in origins.items()})
        if isinstance(body.get("catalogue"), bytes):
            _, outcome = st.store_catalogue(body["catalogue"])
        result = st.records.apply(changes)
        for c in changes:
            st.observe(c.hlc)
        nxt = int(body.get("next") or 0)
        if nxt > st.meta.int("feed_cursor"):
            st.meta.set("feed_cursor", nxt)
    return FeedResult(result.applied, nxt, bool(body.get("more")), outcome)


# -- by hand ---------------------------------------------------------------------------------------


def claim_file(st: Station) -> bytes:
    return b"SJC1" + pack({"station": st.code, "sign_pub": st.keys.sign_pub, "seal_pub": st.keys.seal_pub,
                           "proof": st.meta.bytes("enrol_proof")})


def export(st: Station, out: Path) -> dict[str, object]:
    build_outbox(st)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    if not st.meta.get("enrolled", False):
        path = out / f"{st.code}_claim.sjc"
        path.write_bytes(claim_file(st))
        files.append(str(path))
    changes = 0
    for outgoing, frame in unsettled(st):
        vb = verify_batch(frame, recipient=st.hub_id, verify_key=lambda s, k: st.keys.sign.public_key())
        path = out / batch_filename(vb.header)
        path.write_bytes(frame)
        files.append(str(path))
        changes += outgoing.last_seq - outgoing.first_seq + 1
    return {"files": files, "changes": changes}


def import_files(st: Station, paths: list[Path]) -> dict[str, object]:
    """Apply hub files carried by hand: feed pages, catalogue releases, acknowledgements."""
    accepted = 0
    rejected: list[dict[str, str]] = []
    for path in _expand(paths):
        try:
            data = path.read_bytes()
            kind = str(peek_header(data).get("kind", ""))
            if kind == "feed":
                apply_feed(st, data)
            elif kind == "catalogue":
                with st.transaction():
                    _, outcome = st.store_catalogue(data)
                if outcome == "rollback_refused":
                    raise Refused("older than the catalogue this station already has (rollback refused)")
            elif kind == "acks":
                doc = open_document(data, kind="acks", recipient=st.code, verify_key=st.hub_key)
                record_acks(st, doc)
            else:
                raise Refused(f"not a hub file for this station (kind {kind!r})")
            accepted += 1
        except (Refused, RemoteProtocolError, OSError) as exc:
            rejected.append({"file": str(path), "reason": str(exc)})
    return {"accepted": accepted, "rejected": rejected}


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(x for x in p.iterdir() if x.is_file()))
        else:
            out.append(p)
    return out


def last_sync_text(st: Station) -> str | None:
    ms = st.meta.int("last_sync")
    return iso_from_ms(ms) if ms else None
