"""Per-station downstream feeds: who receives which change, and the signed pages they pull.

A station sees only its own scope: its own applications' records, its villages' items that it
decides (for a township or street centre), and its inspection tasks (for a field device). Nobody
receives another station's citizens' data. Fan-out happens once, when a change is logged, so a pull
is a single indexed range scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hub import relay_address, relay_reports
from protocol.errors import LocalProtocolError
from protocol.feed import FeedPage, FeedSpan, StaffEntry
from protocol.keys import key_id, load_seal_public
from protocol.limits import FEED_PAGE_CHANGES, RELEASE_FRAME_MAX_BYTES
from protocol.wire import sign_message
from sync.change import Change

if TYPE_CHECKING:
    from hub.state import HubState
    from hub.store import StaffAccount
    from hub.store import Station as StationRow
    from replica.records import Run

PAGE_LIMIT = FEED_PAGE_CHANGES


class Lookup:
    """What ingest and fan-out ask of the hub's records while a batch is applied: answered from the
    batch's :class:`~replica.records.Run` for records it has touched (so a later change sees what an
    earlier one did), else from the store. Station rows and deciding tiers are looked up once per
    batch. Use one per batch: it does not notice stations or catalogue releases changing under it."""

    def __init__(self, hub: HubState, run: Run | None = None) -> None:
        self.hub = hub
        self.run = run
        self._stations: dict[str, StationRow | None] = {}
        self._decided: dict[str, str] = {}
        self._owners: dict[str, tuple[str, str] | None] = {}

    def values(self, entity: str, rec_id: str) -> dict[str, object]:
        if self.run is not None:  # the run's cache: records it touched, prefetched, or loaded before
            return self.run.values(entity, rec_id)
        return self.hub.records.values(entity, rec_id)

    def owner(self, application: str) -> tuple[str, str] | None:
        """(station, item) of an application as the ``applications`` projection shows it, or None."""
        if self.run is not None and self.run.holds("application", application):
            vals = self.run.values("application", application)
            return str(vals.get("station")), str(vals.get("item"))
        if application in self._owners:
            return self._owners[application]
        return self.hub.store.application_owner(application)

    def prefetch_owners(self, applications: Iterable[str]) -> None:
        """Read the owners of these applications in a few queries (valid until the run touches them)."""
        ids = sorted(set(applications) - self._owners.keys())
        self._owners.update(dict.fromkeys(ids))  # known absent unless found below
        self._owners.update(self.hub.store.application_owners(ids))

    def station(self, code: str) -> StationRow | None:
        if code not in self._stations:
            self._stations[code] = self.hub.store.station(code)
        return self._stations[code]

    def decided_at(self, item: str) -> str:
        if item not in self._decided:
            self._decided[item] = self.hub.decided_at(item)
        return self._decided[item]


def recipients(hub: HubState, change: Change, application: str, lookup: Lookup | None = None) -> set[str]:
    look = lookup or Lookup(hub)
    found = look.owner(application)
    if found is None:
        return set()
    station_code, item = found
    out: set[str] = set()
    if change.entity in ("task", "report"):
        task_id = change.id if change.entity == "task" else str(change.fields.get("task", change.id))
        inspector = look.values("task", task_id).get("inspector")
        if isinstance(inspector, str):
            out.add(inspector)
    out.add(station_code)
    station = look.station(station_code)
    if station is not None and station.parent and look.decided_at(item) in ("township", "street"):
        out.add(station.parent)
    out.discard(change.origin)
    out.discard(hub.hub_id)
    return out


def fan_out(hub: HubState, logged: Iterable[tuple[int, Change, str]], lookup: Lookup | None = None) -> None:
    """Add newly logged changes to the feeds of the stations that may see them."""
    look = lookup or Lookup(hub)
    for rowid, change, application in logged:
        for station in recipients(hub, change, application, look):
            hub.store.add_to_feed(station, rowid)


def chain_at(hub: HubState, station: str, epoch: int | None) -> tuple[int, int]:
    """(epoch, next seq the hub expects) of a station's chain in the epoch its pull names, for the page's
    signed header: what lets a village prove its relay skipped a batch (sync/relay_evidence.py)."""
    if epoch is None or not 0 < epoch < 2**62:
        return (0, 0)
    return (epoch, hub.store.cursor(station, epoch).next_seq)


def feed_page(
    hub: HubState,
    station_code: str,
    *,
    after: int,
    catalogue_version: int,
    limit: int = PAGE_LIMIT,
    nonce: bytes = b"",
    staff_version: int = 0,
    chain: tuple[int, int] = (0, 0),
    report_asked: bool = False,
) -> bytes:
    """One signed page of a station's feed, sealed to the station's key when it has one.

    A page never exceeds the shared frame cap (protocol/limits.py): when ``limit`` changes would not
    fit, it carries half as many, down to none beside a new catalogue release (``more`` stays true, so
    the station asks again for the changes). A stored release over the release cap (published before
    the hub refused those) is left out: no station could open a page carrying it, and it would stop the
    whole feed.

    ``nonce`` (from the station's signed pull) is answered in the signed header: a page replayed by
    someone on the path cannot answer a new pull, so a station notices a feed that stopped advancing.

    The station's own staff accounts changed after ``staff_version`` ride along (all of them at 0, as
    on a stick, which answers no pull): a handful of short strings, never another station's.

    ``chain`` (epoch, next seq expected) is the hub's word on the station's own chain when it answered,
    signed beside the nonce; the page echoes the station's newest relay report the hub has recorded
    (``report_asked``: the pull carried one). Both in sync/relay_evidence.py."""
    station = hub.store.station(station_code)
    if station is None:
        raise KeyError(station_code)
    release = hub.store.latest_release()
    catalogue = (
        release[1]
        if release is not None and release[0] > catalogue_version and len(release[1]) <= RELEASE_FRAME_MAX_BYTES
        else None
    )
    # Hashes travel only sealed to the station: none for a station whose sealing key is not yet pinned.
    accounts = hub.store.staff_changed_after(station_code, staff_version) if station.seal_pub else []
    staff = tuple(_staff_entry(a) for a in accounts)
    report = relay_reports.echo(hub.store, station_code, asked=report_asked)
    span = FeedSpan(0, 0, False, nonce, *chain)
    while True:
        try:
            return _page(
                hub, station, after=after, limit=limit, catalogue=catalogue, span=span, staff=staff, report=report
            )
        except LocalProtocolError:  # over the payload or frame cap
            if limit == 0 or (limit == 1 and catalogue is None):
                raise
            limit //= 2


def _staff_entry(account: StaffAccount) -> dict[str, object]:
    return StaffEntry(
        account.user,
        account.name,
        account.role,
        account.enabled,
        account.password_hash,
        account.grant_key,
        account.version,
        account.password_version,
    ).to_wire()


def _page(
    hub: HubState,
    station: StationRow,
    *,
    after: int,
    limit: int,
    catalogue: bytes | None,
    span: FeedSpan,
    staff: tuple[dict[str, object], ...] = (),
    report: bytes | None = None,
) -> bytes:
    station_code = station.code
    rows = hub.store.feed_page(station_code, after, limit) if limit else []
    changes = [wire for _, wire in rows]
    nxt = rows[-1][0] if rows else after
    tiers = hub.tiers()
    origins = {str(w[0]): tiers.get(str(w[0]), "field") for w in changes}
    devices = None
    if station.tier in ("township", "street"):
        # A deciding centre assigns inspections of its items offline, so it needs to know which field
        # devices exist (codes only; nothing about the inspectors themselves).
        devices = tuple(hub.store.field_devices())
    page = FeedPage(
        station_code,
        after,
        nxt,
        len(rows) == limit,
        tuple(changes),
        origins,
        catalogue,
        tuple(hub.store.revoked_codes()),
        hub.clock(),
        str(hub.store.get_meta("generation", "")),
        devices,
        staff,
        *relay_address.for_station(hub.store, station),  # its township's relay, sealed to it like the rest
        report,
    )
    seal_pub = station.seal_pub
    return sign_message(
        page,
        signer=hub.hub_id,
        recipient=station_code,
        signing_key=hub.keys.sign,
        seal_to=load_seal_public(seal_pub) if seal_pub else None,
        recipient_key=key_id(seal_pub) if seal_pub else "",
        # `after` and `next` signed in the header: a station that cannot open the body can still tell,
        # from what only the hub can sign, exactly which span of its feed it sets aside.
        extra_header=dataclasses.replace(span, after=after, next=nxt, more=page.more).to_wire(),
    ).frame
