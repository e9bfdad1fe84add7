"""What a citizen may see of an application, and nothing more: the public tracking page's facts.

Allowed, by issue 18: the item's name; the station that accepted it; the status in words with its
history (status and date only); the promised date and whether the clock is paused for an inspection;
which 容缺 materials are still due and by when; when the hub signed its receipt. Never the applicant's
name, ID number, phone or address, an inspection's findings, or who (which operator or staff member,
or which station's device) did anything. The view is built field by field from that list, so a field
added to the record later cannot leak through it (``tests/track/test_no_personal_data.py``).

It is read in the read model's thread (``hub/reads``), through the :class:`ReadHub` it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.reads import ReadHub
from replica.ids import CHINA
from sync.hlc import wall_ms
from sync.model import MATERIAL_PREFIX
from sync.verdict import status_word


@dataclass(frozen=True)
class Step:
    status: str  # in words
    date: str  # YYYY-MM-DD, China time


@dataclass(frozen=True)
class Owed:
    material: str
    due: str


@dataclass(frozen=True)
class CitizenView:
    item: str
    station: str
    status: str
    history: tuple[Step, ...]
    due_date: str
    paused: bool
    outstanding: tuple[Owed, ...]
    received_at: str  # "YYYY-MM-DD HH:MM", China time; "" while the hub has not signed for it

    def to_json(self) -> dict[str, object]:
        return {
            "item": self.item,
            "station": self.station,
            "status": self.status,
            "history": [{"status": s.status, "date": s.date} for s in self.history],
            "due_date": self.due_date,
            "paused": self.paused,
            "outstanding": [{"material": o.material, "due": o.due} for o in self.outstanding],
            "received_at": self.received_at,
        }


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).strftime("%Y-%m-%d")


def _minute(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).strftime("%Y-%m-%d %H:%M")


def history(hub: ReadHub, app_id: str) -> tuple[Step, ...]:
    """Statuses in the order they were written, a repeat of the same status folded into the first."""
    steps: list[Step] = []
    last = ""
    for v in sorted(hub.store.status_versions(app_id), key=lambda v: (v.hlc, v.origin)):
        if v.value != last:
            steps.append(Step(status_word(v.value), _day(wall_ms(v.hlc))))
            last = v.value
    return tuple(steps)


def received_at(hub: ReadHub, app_id: str) -> str:
    """When the hub signed for the batch that brought the application (its creation change)."""
    got = hub.reads.received_ms(app_id)
    return _minute(got) if got is not None else ""


def view(hub: ReadHub, app_id: str) -> CitizenView | None:
    values = hub.records.values("application", app_id)
    if not values:
        return None
    version = values.get("catalogue_version")
    cat = hub.catalogue_at(version) if isinstance(version, int) else None
    item = cat.items.get(str(values.get("item", ""))) if cat is not None else None
    station = hub.store.station(str(values.get("station", "")))
    owed = sorted(
        (Owed(name[len(MATERIAL_PREFIX) :], str(v[1])) for name, v in values.items() if _deferred(name, v)),
        key=lambda o: (o.due, o.material),
    )
    return CitizenView(
        item=item.name if item is not None else "",
        station=station.name if station is not None else "",
        status=status_word(values.get("status", "")),
        history=history(hub, app_id),
        due_date=str(values.get("due_date", "")),
        paused=values.get("paused") is True,
        outstanding=tuple(owed),
        received_at=received_at(hub, app_id),
    )


def _deferred(name: str, value: object) -> bool:
    return name.startswith(MATERIAL_PREFIX) and isinstance(value, list) and len(value) == 2 and value[0] == "deferred"
