"""What the dashboard reads: the overview, the station tree, a station's sync history, application
search and an application's story. Plain dicts for the templates; no HTML here.

Every function here runs in the read model's thread over its read-only connection (``hub/reads``), and
reads through the :class:`ReadHub` it is given: its own queries (``hub.reads``), the store's read
methods, and the modules the CLI shares (``operations.show``, the listing). No SQL here.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any

from hub.dashboard.inspections import inspections
from hub.operations import find_application, show
from hub.quarantine_review import quarantine_rows
from hub.reads import ReadHub
from present.pinyin import initials
from present.webui import Due, describe, due_state, soon_until, status_label
from replica import listing
from replica.errors import Refused
from replica.ids import CHINA
from sync import catalogue_view
from sync.workflow import Status

ONLINE_MS = 15 * 60 * 1000  # a node syncs every 30 s while it can; 15 quiet minutes means it cannot
SKEW_WARN_MS = 60_000
HISTORY_DAYS = 14
LIST_LIMIT = 100  # rows a list page shows; pages go on by keyset (replica/listing.py)


def today(hub: ReadHub) -> date:
    return datetime.fromtimestamp(hub.clock() / 1000, tz=CHINA).date()


def names(hub: ReadHub) -> dict[str, str]:
    out = {s.code: s.name for s in hub.store.stations()}
    out[hub.hub_id] = f"{hub.name}行政审批局"
    return out


def _state(revoked: bool, enrolled: bool, seen: int | None, now: int, via: str = "") -> str:
    if revoked:
        return "revoked"
    if not enrolled:
        return "pending"
    if not seen:
        return "never"
    if via == "usb":
        return "usb"  # exchanges files by hand: "online" would be false, "offline" an alarm for nothing
    return "online" if now - seen <= ONLINE_MS else "offline"


def _skew(ms: int) -> str:
    # A pull's round trip makes tens of milliseconds of apparent skew; that is not worth a sign.
    return "0 秒" if abs(ms) < 500 else f"{ms / 1000:+.1f} 秒"


def stations(hub: ReadHub) -> list[dict[str, Any]]:
    now = hub.clock()
    counts = hub.store.application_counts()
    version, _ = hub.catalogue()
    out = []
    for s in hub.reads.station_rows():
        out.append(
            {
                "code": s.code,
                "name": s.name,
                "tier": s.tier,
                "parent": s.parent,
                "revoked": s.revoked,
                "enrolled": s.enrolled,
                "last_seen_ms": s.last_seen_ms,
                "backlog": s.backlog,
                "last_error": s.last_error,
                # A station tells us its catalogue version when it pulls; before that we do not know it.
                "catalogue_version": s.catalogue_version,
                "catalogue_behind": bool(s.last_seen_ms) and s.catalogue_version < version,
                "skew_ms": s.clock_skew_ms,
                "skew_warn": abs(s.clock_skew_ms) > SKEW_WARN_MS,
                "skew_text": _skew(s.clock_skew_ms),
                "applications": int(counts.get(s.code, 0)),
                "state": _state(s.revoked, s.enrolled, s.last_seen_ms, now, s.last_via),
                "last_via": s.last_via,
                # Its last contact came through its township's relay (issue 17): the township, else ''.
                "relay_via": s.last_via[len("relay:") :] if s.last_via.startswith("relay:") else "",
                "enrolled_ms": s.enrolled_ms,
                "registered_ms": s.registered_ms,
            }
        )
    return out


def tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """District → township/street → village/community, then field devices: rows with a ``level``."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_parent.setdefault(r["parent"], []).append(r)
    out: list[dict[str, Any]] = []
    placed: set[str] = set()
    for top in rows:
        if top["tier"] in ("township", "street"):
            out.append({**top, "level": 1})
            placed.add(top["code"])
            for child in by_parent.get(top["code"], []):
                if child["tier"] != "field":
                    out.append({**child, "level": 2})
                    placed.add(child["code"])
    # Field devices, and anything whose parent is missing, are listed under the district directly.
    for r in rows:
        if r["code"] not in placed and r["tier"] != "field":
            out.append({**r, "level": 1})
    out.extend({**r, "level": 1, "field_group": True} for r in rows if r["tier"] == "field")
    return out


def overview(hub: ReadHub) -> dict[str, Any]:
    rows = stations(hub)
    now = hub.clock()
    day = today(hub).isoformat()
    states = [r["state"] for r in rows]
    rejected_total, last_rejections = hub.store.rejections(8)
    version, cat = hub.catalogue()
    return {
        "stations": rows,
        "tree": tree(rows),
        "online": states.count("online"),
        "offline": states.count("offline"),
        "usb": states.count("usb"),
        "never": states.count("never") + states.count("pending"),
        "revoked": states.count("revoked"),
        "applications_today": hub.reads.applications_accepted(day, (today(hub) + timedelta(days=1)).isoformat()),
        "applications": hub.store.applications_held(),
        "conflicts": hub.store.open_conflicts(),
        "quarantined": hub.store.open_quarantine(),
        "rejected": rejected_total,
        "rejected_24h": hub.store.refusals_since(now - 86_400_000),
        "last_rejections": last_rejections,
        "alerts": [dict(a) for a in hub.store.alerts()[-8:]][::-1],
        "catalogue_version": version,
        "catalogue_expires_at": cat.expires_at,
        "today": day,
    }


# -- one station ------------------------------------------------------------------------------------


def history(hub: ReadHub, code: str, days: int = HISTORY_DAYS) -> list[dict[str, Any]]:
    """Batches and changes received from a station per day (Beijing time), oldest first."""
    last = today(hub)
    first = last - timedelta(days=days - 1)
    start_ms = int(datetime(first.year, first.month, first.day, tzinfo=CHINA).timestamp() * 1000)
    buckets = {first + timedelta(days=i): [0, 0] for i in range(days)}
    for batch in hub.reads.batches_since(code, start_ms):
        d = datetime.fromtimestamp(batch.received_ms / 1000, tz=CHINA).date()
        if d in buckets:
            buckets[d][0] += 1
            buckets[d][1] += batch.changes
    return [{"day": d, "batches": b, "changes": c} for d, (b, c) in sorted(buckets.items())]


def station_detail(hub: ReadHub, code: str) -> dict[str, Any] | None:
    row = next((r for r in stations(hub) if r["code"] == code), None)
    if row is None:
        return None
    receipts = [{**asdict(r), "hash": r.hash.hex()} for r in hub.reads.receipts_of(code, 50)]
    rejected = [asdict(r) for r in hub.reads.refusals_of(code, 50)]
    parent = hub.store.station(row["parent"]) if row["parent"] else None
    children = [s for s in hub.store.stations() if s.parent == code]
    return {
        "station": row,
        "history": history(hub, code),
        "receipts": receipts,
        "rejected": rejected,
        "quarantine": quarantine_rows(hub, origin=code, include_closed=True),
        "alerts": [a for a in hub.store.alerts() if a["station"] == code][::-1],
        "parent": parent,
        "children": children,
        "batches_total": hub.store.batches_taken(code),
        # The station's staff accounts made here (hub/staff.py); never their hashes.
        "staff": [
            {"user": a.user, "name": a.name, "role": a.role, "enabled": a.enabled, "changed_ms": a.changed_ms}
            for a in hub.store.staff_accounts(code)
        ],
    }


# -- applications -------------------------------------------------------------------------------------

DUE_FILTERS = {"": "全部", "overdue": "已超期", "soon": "临近到期（3个工作日内）", "open": "在办"}


def search(
    hub: ReadHub,
    *,
    q: str = "",
    station: str = "",
    status: str = "",
    due: str = "",
    older_than: listing.Key | None = None,
    newer_than: listing.Key | None = None,
    size: int = LIST_LIMIT,
) -> listing.Page:
    """One page of the applications matching the filters, newest first, masked, with how many match in
    all. Filters are SQL on indexed columns (``replica/listing.py``); only the rows shown are judged
    against their due date, for the badge."""
    _, cat = hub.catalogue()
    day = today(hub)
    # Also by item: its name, an abbreviation (低保) or pinyin initials (zdshbz), as the station's picker.
    found_items = tuple(i.code for i in catalogue_view.find(cat.items.values(), q, initials)) if q else ()
    filters = listing.Filters(
        station=station,
        status=status,
        q=q,
        items=found_items,
        due=due,
        today=day.isoformat(),
        soon_until=soon_until(day, cat.calendar).isoformat(),
    )
    found = hub.store.application_page(filters, older_than=older_than, newer_than=newer_than, size=size)
    for r in found.rows:
        it = cat.items.get(str(r["item"]))
        r["item_name"] = it.name if it else r["item"]
        r["due"] = due_state(r["due_date"], r["status"], day, cat.calendar)
    return found


def status_now(hub: ReadHub, number: str) -> str | None:
    """The application's status now ("" before it has one); None if the hub holds no such number."""
    try:
        app_id = find_application(hub, number)
    except Refused:
        return None
    return str(hub.records.values("application", app_id).get("status") or "")


def held(hub: ReadHub, number: str) -> bool:
    return status_now(hub, number) is not None


def application(hub: ReadHub, number: str, *, reveal: bool = False) -> dict[str, Any]:
    """One application for the detail page: fields, materials with their deadlines, the history, the
    on-site inspections with their reports (``hub/dashboard/inspections.py``)."""
    shown = show(hub, number, reveal=reveal)
    fields = shown["fields"]
    assert isinstance(fields, dict)
    _, cat = hub.catalogue()
    day = today(hub)
    item = cat.items.get(str(fields.get("item", "")))
    who = names(hub)
    materials = []
    raw_materials = shown["materials"]
    assert isinstance(raw_materials, dict)
    for name, m in sorted(raw_materials.items()):
        late = m["state"] == "deferred" and bool(m["due"]) and str(m["due"]) < day.isoformat()
        materials.append({"name": name, "state": m["state"], "due": m["due"], "late": late, "received": m["received"]})
    events = []
    for e in shown["events"]:  # type: ignore[attr-defined]
        events.append(
            {
                "at": e["at"],
                "origin": e["origin"],
                "who": who.get(e["origin"], e["origin"]),
                "author": e.get("author", ""),
                "entity": e["entity"],
                "lines": describe(e["entity"], e["fields"]),
            }
        )
    status = str(shown["status"] or "")
    due: Due = due_state(fields.get("due_date"), status, day, cat.calendar)
    closed = status in {"not_accepted", "withdrawn", "completed", "delivered"}
    return {
        **shown,
        # 补交材料 (hub/dashboard_supplement.py): the deferred materials still owed on an open file
        "owed": [] if closed else [m for m in materials if m["state"] == "deferred"],
        "today": day.isoformat(),
        "item": item,
        "who": who,
        "materials": materials,
        "events": events,
        "due": due,
        "status": status,
        "reveal": reveal,
        "inspections": inspections(hub, str(shown["id"]), number, who),
    }


def status_choices() -> list[tuple[str, str]]:
    return [(s.value, status_label(s.value)) for s in Status]
