"""Per-station downstream feeds: who receives which change, and the signed pages they pull.

A station sees only its own scope: its own applications' records, its villages' items that it
decides (for a township or street centre), and its inspection tasks (for a field device). Nobody
receives another station's citizens' data. Fan-out happens once, when a change is logged, so a pull
is a single indexed range scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from protocol.document import sign_document
from protocol.keys import key_id, load_seal_public
from sync.change import Change

if TYPE_CHECKING:
    from hub.service import Hub

PAGE_LIMIT = 2000


def recipients(hub: Hub, change: Change, application: str) -> set[str]:
    row = hub.store.conn.execute(
        "SELECT station, item FROM applications WHERE id=?", (application,)
    ).fetchone()
    if row is None:
        return set()
    station_code, item = str(row[0]), str(row[1])
    out: set[str] = set()
    if change.entity in ("task", "report"):
        task_id = change.id if change.entity == "task" else str(change.fields.get("task", change.id))
        inspector = hub.records.values("task", task_id).get("inspector")
        if isinstance(inspector, str):
            out.add(inspector)
    out.add(station_code)
    station = hub.store.station(station_code)
    if station is not None and station.parent and hub.decided_at(item) in ("township", "street"):
        out.add(station.parent)
    out.discard(change.origin)
    out.discard(hub.hub_id)
    return out


def fan_out(hub: Hub, logged: Iterable[tuple[int, Change, str]]) -> None:
    """Add newly logged changes to the feeds of the stations that may see them."""
    for rowid, change, application in logged:
        for station in recipients(hub, change, application):
            hub.store.add_to_feed(station, rowid)


def feed_page(hub: Hub, station_code: str, *, after: int, catalogue_version: int, limit: int = PAGE_LIMIT) -> bytes:
    """One signed page of a station's feed, sealed to the station's key when it has one."""
    station = hub.store.station(station_code)
    if station is None:
        raise KeyError(station_code)
    rows = hub.store.feed_page(station_code, after, limit)
    changes = [wire for _, wire in rows]
    nxt = rows[-1][0] if rows else after
    tiers = hub.tiers()
    origins = {str(w[0]): tiers.get(str(w[0]), "field") for w in changes}
    release = hub.store.latest_release()
    body: dict[str, object] = {
        "station": station_code,
        "after": after,
        "next": nxt,
        "more": len(rows) == limit,
        "changes": changes,
        "origins": origins,
        "catalogue": release[1] if release is not None and release[0] > catalogue_version else None,
        "revoked": [s.code for s in hub.store.stations() if s.revoked],
        "hub_ms": hub.clock(),
    }
    seal_pub = station.seal_pub
    return sign_document(
        "feed", body, signer=hub.hub_id, recipient=station_code, signing_key=hub.keys.sign,
        seal_to=load_seal_public(seal_pub) if seal_pub else None,
        recipient_key=key_id(seal_pub) if seal_pub else "",
        extra_header={"next": nxt, "more": len(rows) == limit},
    )
