"""The station's side of the feed: verify one page with the pinned hub key and apply it, moving the
feed cursor as sync/feed_cursor.py's table says (refused when it starts past the cursor, restarted when
the hub was restored). The staff accounts the hub made for this station ride on the page and land in
its transaction (node/staff_grants.py); one the station refuses is handed back for the feed
quarantine and costs nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field

from node import relay_address, relay_alert, staff_grants
from node.staff_grants import FeedAccount
from node.station import Station
from protocol.codec import pack
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.feed import FeedPage, StaffEntry
from replica.errors import Refused
from sync import feed_cursor as feed
from sync.catalogue import CatalogueError
from sync.change import change_from_wire
from sync.feed_cursor import CursorAction, FeedCursor, PageVerdict
from sync.model import ModelError


def feed_cursor(st: Station) -> FeedCursor:
    return FeedCursor(st.meta.text("hub_generation"), st.meta.int("feed_cursor"))


class FeedGap(Refused):
    """A feed page that starts after what this station has applied: not a bad page, an early one."""

    default_code = "feed_gap"


@dataclass
class FeedResult:
    pulled: int
    next: int
    more: bool
    catalogue: str
    hub_ms: int = 0  # the hub's time when it made the page
    # Staff account entries the page carried that this station refused: (the entry packed, why). The
    # page applied without them; node/feed_quarantine.py holds each with its reason.
    held: list[tuple[bytes, str]] = field(default_factory=list)
    staff: int = 0  # staff account entries the page applied (a new account, a disable, a password reset)


def _staff_entries(raw: tuple[dict[str, object], ...]) -> tuple[list[FeedAccount], list[tuple[bytes, str]], int]:
    """The page's staff accounts this station takes, the ones it refuses with the reason, and the
    highest version seen among both (refused ones are not asked for again; the hub's next change to
    the account sends it anew)."""
    taken, held, newest = [], [], 0
    for entry in raw:
        try:
            account = StaffEntry.from_wire(entry)
            newest = max(newest, account.version)
            staff_grants.check(account)
        except (RemoteProtocolError, Refused) as exc:
            user = entry.get("user") if isinstance(entry, dict) else None
            held.append((pack(entry), f"区局下发的工作人员账户 {user!s} 未予采用，本页其余内容照常应用：{exc}"))
            continue
        taken.append(account)
    return taken, held, newest


def apply_feed(st: Station, data: bytes) -> FeedResult:
    """Verify one feed page with the pinned hub key and apply it in one transaction."""
    try:
        doc = open_document(
            data,
            kind=FeedPage.KIND,
            recipient=st.code,
            verify_key=st.hub_key,
            unseal_key=lambda k: st.keys.seal if k == st.keys.seal_key_id else None,
        )
    except RemoteProtocolError as exc:
        raise Refused(
            f"区局发来的数据页核验未通过，未采用：请重新同步，仍不行请联系区局 (feed refused: {exc})"
        ) from exc
    try:
        page = FeedPage.from_wire(doc.body)
    except RemoteProtocolError as exc:
        raise Refused(f"区局发来的数据页格式不对，未采用：请重新同步，仍不行请联系区局 (malformed: {exc})") from exc
    changes = []
    for raw in page.changes:
        try:
            changes.append(change_from_wire(raw))
        except ModelError as exc:
            raise Refused(f"区局发来的数据页中有无效变更，未采用：请联系区局 (invalid change: {exc})") from exc
    outcome = ""
    cursor = feed_cursor(st)
    verdict = feed.judge(cursor, after=page.after, generation=page.generation)
    if verdict is PageVerdict.EARLY:
        # Applying it would move the cursor past pages we never applied (a damaged file on the stick):
        # refuse, so the missing pages are asked for again.
        raise FeedGap(
            f"区局数据页从变更 {page.after} 之后开始，但本站只应用到 {cursor.position}：请先导入更早的数据页，"
            "或联网同步 (feed page starts after a change this station has not applied)"
        )
    followed = feed.follow(cursor, verdict, page.generation)
    if followed != cursor:
        with st.transaction():
            st.meta.set("hub_generation", followed.generation)
            st.meta.set("feed_cursor", followed.position)
            if verdict is PageVerdict.NEW_GENERATION:
                st.meta.set("horizon", [])  # positions in the old generation's feed mean nothing now
                st.meta.set("staff_version", 0)  # ask the restored hub for every account again
        cursor = followed
    if feed.TRANSITIONS[verdict] is CursorAction.RESTART:
        # The hub was restored from a backup: its change numbering restarted, so our cursor meant
        # nothing there any more. The feed starts over; changes we already hold are skipped.
        return FeedResult(0, 0, True, "")
    accounts, held, newest = _staff_entries(page.staff)
    with st.transaction():
        if doc.header.get("recipient_key") == st.keys.seal_key_id:
            # Sealed to this station's own key: the hub holds its keys, by whatever path the page came.
            st.meta.set("enrolled", True)
        staff = 0
        for account in accounts:  # the hub's word on its accounts lands with the page (node/staff_grants.py)
            staff += int(staff_grants.record(st.conn, account, st.clock()))
        if newest > st.meta.int("staff_version"):
            st.meta.set("staff_version", newest)  # the next pull asks only for accounts changed since
        if page.origins:
            st.remember_origins(page.origins)
        if page.catalogue is not None:
            try:
                _, outcome = st.store_catalogue(page.catalogue)
            except (Refused, CatalogueError) as exc:
                # A release this station cannot use must not cost it the page's changes: they apply,
                # the station keeps its current release, and staff see why (`node status`).
                outcome = "refused"
                st.meta.set(
                    "catalogue_warning",
                    f"区局发来的事项目录未通过校验，已拒收，继续使用当前目录"
                    f"（{exc}）；请联系区局 (catalogue release refused)",
                )
        if page.field_devices is not None:
            st.meta.set("field_devices", sorted(page.field_devices))
        result = st.records.apply(changes)
        for c in changes:
            st.observe(c.hlc)
        nxt = page.next
        if (moved := feed.advance(cursor, nxt)) != cursor:
            st.meta.set("feed_cursor", moved.position)
            # What we have now seen, as of the changes we have written so far: every batch says it, so
            # the hub can tell a concurrent write of ours from one made after we received a decision.
            st.meta.set("horizon", [st.meta.int("epoch", 1), st.meta.int("seq"), nxt])
        if page.hub_ms > st.meta.int("hub_time"):
            st.meta.set("hub_time", page.hub_ms)  # the newest genuine hub time (status shows it)
        relay_address.learn(st, page.relay_url, page.relay_version)  # the township's relay, if newer
        relay_alert.echoed(st, page.relay_report)  # the hub has recorded our report of the relay: said
    return FeedResult(result.applied, nxt, page.more, outcome, page.hub_ms, held, staff)
