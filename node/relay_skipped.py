"""A relay that carried a later pull request ahead of an earlier batch (keeping the batch back, or
forwarding out of order): caught at once, for certain.

The facts the decision needs (sync/relay_evidence.py decides) are kept here, in meta, so a restart
keeps them: how many pull requests this station has left at its relay (``relay_asked``), each
answerable request's place in that count (``relay_asked_at``, by nonce), and for each unsettled batch
the count when it was first left there (``relay_handed``). A batch with a lower count than a request
was left before it, and the relay forwards in order, so the hub's page answering the request must show
the batch's seqs taken, unless the hub answered the batch some other way (any ack changes its state).
No clock is involved: ``withheld`` (node/relay_withheld.py) stays for what only time can show.
"""

from __future__ import annotations

from node.station import Station
from protocol.errors import RemoteProtocolError
from protocol.feed import FeedPage, FeedSpan
from protocol.frame import verify_frame
from sync.outbox import BatchState
from sync.relay_evidence import ChainAt, Handed, skipped


def _counts(st: Station, key: str) -> dict[str, int]:
    kept = st.meta.get(key, {})
    if not isinstance(kept, dict):
        return {}
    return {str(k): v for k, v in kept.items() if isinstance(v, int)}


def keep_only(st: Station, unsettled: list[bytes]) -> None:
    """Forget the batches the hub has settled since (their place in the order no longer matters)."""
    kept, now = _counts(st, "relay_handed"), {h.hex() for h in unsettled}
    still = {k: v for k, v in kept.items() if k in now}
    if still != kept:
        with st.transaction():
            st.meta.set("relay_handed", still)


def left(st: Station, hashes: list[bytes]) -> None:
    """The relay took these batches: note, for those it had not held yet, how many requests went before."""
    kept = _counts(st, "relay_handed")
    mark = st.meta.int("relay_asked")
    new = {h.hex(): mark for h in hashes if h.hex() not in kept}
    if new:
        with st.transaction():
            st.meta.set("relay_handed", {**kept, **new})


def asking(st: Station, nonce: bytes, answerable: list[str]) -> None:
    """A pull request with ``nonce`` is being left at the relay (``answerable``: the nonces still kept)."""
    place = st.meta.int("relay_asked") + 1
    at = {k: v for k, v in _counts(st, "relay_asked_at").items() if k in answerable}
    with st.transaction():
        st.meta.set("relay_asked", place)
        st.meta.set("relay_asked_at", {**at, nonce.hex(): place})


def check(st: Station, page: bytes) -> tuple[str, str] | None:
    """For a page the hub signed, answering one of our requests left at the relay: ``("skipped",
    detail)`` when it proves the relay did not forward a batch left before that request ahead of it
    (kept back or out of order), else None."""
    try:
        header = verify_frame(page, recipient=st.code, verify_key=st.hub_key).header
        span = FeedSpan.from_wire(header) if header.get("kind") == FeedPage.KIND else None
    except RemoteProtocolError:
        return None
    asked = _counts(st, "relay_asked_at").get(span.nonce.hex()) if span is not None and span.nonce else None
    if span is None or asked is None or not span.chain_epoch:
        return None
    handed = _counts(st, "relay_handed")
    rows = st.conn.execute(
        "SELECT hash, epoch, first_seq, last_seq FROM outbox WHERE state=? AND epoch=? AND first_seq<=?"
        " AND last_seq>=?",
        (BatchState.PENDING.value, span.chain_epoch, span.chain_next, span.chain_next),
    ).fetchall()
    waiting = [
        Handed(int(e), int(a), int(b), handed[bytes(h).hex()]) for h, e, a, b in rows if bytes(h).hex() in handed
    ]
    batch = skipped(ChainAt(span.chain_epoch, span.chain_next, asked), waiting)
    if batch is None:
        return None
    return (
        "skipped",
        f"本站第 {batch.first_seq}–{batch.last_seq} 条变更的批次在之后的取数请求前交给它，"
        f"区局签名的应答表明区局仍在等第 {span.chain_next} 条",
    )
