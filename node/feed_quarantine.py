"""Feed pages a station set aside, with the reason, so that one bad page never blocks the rest of the feed.

Before this, a page that failed to open (a release over a decoder limit, an invalid change) was refused
whole at every sync, and the cursor never moved past it: one bad page stopped a station's downstream
sync for good (issue 21). Now every page that fails is recorded in ``feed_quarantine`` and shown by
``node status``, and what happens next depends on what the station can trust:

- **Genuine but unusable.** The page's signature checks out against the pinned hub key, and its signed
  header says where it starts (``after``, at or before our cursor) and where the next page starts
  (``next``). The page's bytes are kept here (sealed at rest at a station that seals its citizens'
  data, ``node/at_rest_held.py``) and the cursor moves to ``next``, so the following pages apply. Its
  changes are not lost: they stay at the hub, and the nightly reconciliation (Merkle digests) brings
  back what a station lacks.
- **Not verifiable** (tampered, truncated, from another hub, over the size cap, or a page without
  ``after`` in its signed header). Nothing in it can be trusted to move the cursor: the page is recorded
  (its SHA-256, not its bytes) and the cursor stays, so the genuine page is asked for or imported again.
  Without the hub's signing key nobody can make a station skip a page, and every skip is a row here.

A page that starts after our cursor (pages imported out of order) is not set aside: importing the
earlier pages first applies it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from node import at_rest_held, feed
from node.station import Station
from protocol.errors import RemoteProtocolError
from protocol.feed import FeedPage, FeedSpan
from protocol.frame import verify_frame
from replica.errors import Refused
from replica.ids import iso_from_ms
from sync import feed_cursor
from sync.catalogue import CatalogueError

KEEP_ROWS = 500  # a path that keeps sending junk updates rows (by SHA-256); this bounds the rest


def ensure(st: Station) -> None:
    """Nothing left to do: the table exists from the store's open (node/store.py). Kept for its callers."""


@dataclass
class PageOutcome:
    result: feed.FeedResult | None  # None: the page was not applied
    problem: str = ""  # why not, for the round's report ('' when applied)
    skipped: bool = False  # the cursor moved past a genuine page that could not be applied
    more: bool = False  # the hub has more pages after this one


def take_page(st: Station, data: bytes, *, source: str) -> PageOutcome:
    """Apply one feed page, or set it aside with its reason (see the module docstring for when the
    cursor moves past it)."""
    ensure(st)
    try:
        result = feed.apply_feed(st, data)
        for entry, why in result.held:  # a staff account the station refused; the page itself applied
            record(st, entry, source=source, reason=why)
        return PageOutcome(result, more=result.more)
    except feed.FeedGap as exc:
        return PageOutcome(None, str(exc))
    except (Refused, CatalogueError) as exc:
        reason = str(exc)
    cursor = feed.feed_cursor(st)
    span = _signed_span(st, data)
    past = None if span is None else feed_cursor.skip(cursor, after=span[0], nxt=span[1])
    if span is None or past is None:
        record(st, data, source=source, reason=reason)
        return PageOutcome(
            None,
            f"区局数据页未通过验证，已隔离，未跳过（{reason}）；"
            "将重新获取该页，若反复出现请联系区局重新导出或检查网络线路",
        )
    after, nxt, more = span
    with st.transaction():  # the note and the move of the cursor, together or not at all
        _insert(st, data, source=source, reason=reason, skipped=(cursor.position, nxt))
        st.meta.set("feed_cursor", past.position)
    return PageOutcome(
        None,
        f"区局数据页（变更 {after}–{nxt}）无法应用，已隔离并继续后续数据页（{reason}）；"
        "其中的变更将由夜间对账补回，如需核查请联系区局",
        skipped=True,
        more=more,
    )


def _signed_span(st: Station, data: bytes) -> tuple[int, int, bool] | None:
    """(after, next, more) from a page's signed header, when it verifies against the pinned hub key."""
    try:
        header = verify_frame(data, recipient=st.code, verify_key=st.hub_key).header
    except RemoteProtocolError:
        return None
    if header.get("kind") != FeedPage.KIND:
        return None
    try:
        span = FeedSpan.from_wire(header)
    except RemoteProtocolError:
        return None
    return (span.after, span.next, span.more) if span.next > span.after else None


def record(st: Station, data: bytes | None, *, source: str, reason: str) -> None:
    """Note one page set aside without moving the cursor (or an answer refused unread, ``data=None``).
    Call outside a transaction."""
    ensure(st)
    with st.transaction():
        _insert(st, data, source=source, reason=reason)


def _insert(
    st: Station, data: bytes | None, *, source: str, reason: str, skipped: tuple[int, int] | None = None
) -> None:
    digest = hashlib.sha256(data if data is not None else b"unread:" + reason.encode()).digest()
    now = st.clock()
    st.conn.execute(
        "INSERT INTO feed_quarantine (sha256, first_ms, last_ms, times, source, authentic, skipped_from,"
        " skipped_to, reason, frame) VALUES (?,?,?,1,?,?,?,?,?,?)"
        " ON CONFLICT(sha256) DO UPDATE SET last_ms=excluded.last_ms, times=times+1, source=excluded.source",
        (
            digest,
            now,
            now,
            source,
            int(skipped is not None),
            skipped[0] if skipped else None,
            skipped[1] if skipped else None,
            reason[:1000],
            # A genuine page carries applicants' values: kept sealed at rest (node/at_rest_held.py).
            at_rest_held.kept_form(st, digest, data) if skipped is not None and data is not None else None,
        ),
    )
    st.conn.execute(
        "DELETE FROM feed_quarantine WHERE sha256 NOT IN"
        " (SELECT sha256 FROM feed_quarantine ORDER BY last_ms DESC LIMIT ?)",
        (KEEP_ROWS,),
    )


def summary(st: Station) -> dict[str, object]:
    """For `node status`: how many pages were set aside, how many skipped, and the latest one."""
    ensure(st)
    count, skipped = st.conn.execute("SELECT COUNT(*), COALESCE(SUM(authentic), 0) FROM feed_quarantine").fetchone()
    row = st.conn.execute(
        "SELECT last_ms, source, authentic, skipped_from, skipped_to, reason, times FROM feed_quarantine"
        " ORDER BY last_ms DESC LIMIT 1"
    ).fetchone()
    latest = (
        None
        if row is None
        else {
            "at": iso_from_ms(int(row[0])),
            "source": row[1],
            "skipped": bool(row[2]),
            "skipped_from": row[3],
            "skipped_to": row[4],
            "reason": row[5],
            "times": row[6],
        }
    )
    return {"feed_quarantined": int(count), "feed_skipped": int(skipped), "feed_quarantine_latest": latest}
