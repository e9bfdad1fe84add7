"""The hub's one admission question, asked of every change by every path in.

Push and ``hub import`` (``hub/ingest.py``), reconciliation repair (``hub/reconcile.py``), an
operator's release from quarantine (``hub/quarantine_review.py``) and the hub's own commands
(``Hub.write``) all come here. This module only gathers what the hub knows (the record now, its
status history, the station register, published catalogue releases, numbers in use) and hands it to
the pure question in ``sync/admission.py``, which the stations' own commands ask too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from hub.feed import Lookup
from protocol.codec import unpack
from protocol.errors import RemoteProtocolError
from replica.admission_facts import build_facts
from sync.admission import Admission, clock_check, judge
from sync.change import Change
from sync.fold import Record
from sync.hlc import HUB_QUARANTINE_AHEAD_MS
from sync.model import Actor, RecordContext
from sync.staff_change import STAFF_ENTITY
from sync.verdict import StaffFact

if TYPE_CHECKING:
    from hub.state import HubState


@dataclass
class Gate:
    """Admission for one run of changes (a batch, a repair, a release): station rows, owners and the
    numbers taken so far are remembered across the run's changes."""

    hub: HubState
    look: Lookup
    numbers: dict[str, str] = field(default_factory=dict)

    def actor(self, origin: str) -> Actor:
        return Actor(origin, self.hub.tiers().get(origin, "field"))

    def ask(self, change: Change, actor: Actor, *, now_ms: int | None = None) -> Admission:
        """The whole question for one change; ``now_ms`` set means check its clock against the hub's."""
        if now_ms is not None:
            late = clock_check(change, hub_wall_ms=now_ms, max_ahead_ms=HUB_QUARANTINE_AHEAD_MS)
            if late is not None:
                return late
        verdict = judge(change, actor, self.facts(change))
        if verdict.admitted and change.entity == "application" and "number" in change.fields:
            self.numbers[str(change.fields["number"])] = change.id
        if verdict.admitted and actor.tier != "district":
            return _check_inspector(verdict, self.look)
        return verdict

    def facts(self, change: Change):  # type: ignore[no-untyped-def]
        found = build_facts(
            self.hub.store.replica_connection,
            change,
            current=self._record(change.entity, change.id),
            values=self.look.values,
            context=self._context,
            catalogue=self.hub.catalogue_at,
            latest_catalogue=self.hub.latest_catalogue,
            published_up_to=self.hub.published_up_to,
            numbers=self.numbers,
            delivered=functools.partial(self._delivered, change),
            authority=self.hub.authority,
            held_status=functools.partial(self._held_status, change),
        )
        # Only a password change asks about accounts; the common case keeps its facts as built.
        return replace(found, staff_account=self._staff_account) if change.entity == STAFF_ENTITY else found

    def _staff_account(self, station: str, user: str) -> StaffFact | None:
        """An account the hub made for ``station``: what a password changed there is checked against."""
        held = self.hub.store.staff_account(station, user)
        return None if held is None else StaffFact(held.role, held.enabled)

    def _delivered(self, change: Change, rowid: int) -> bool:
        """Whether the hub's logged change at ``rowid`` had reached ``change``'s author through its feed
        before the author wrote ``change`` (from the author's signed pulls)."""
        store = self.hub.store
        return rowid <= store.horizon(change.origin, change.epoch, change.seq) and store.delivered(change.origin, rowid)

    def _held_status(self, change: Change, hlc: int) -> tuple[str, bool] | None:
        """(status, released) of one of the author's own held changes to this application at ``hlc``."""
        for raw, state in self.hub.store.held_changes_of(change.origin):
            try:
                wire = unpack(raw)
            except RemoteProtocolError:
                continue
            if (
                isinstance(wire, list)
                and len(wire) in (8, 9)  # 9 with the author (sync/change.py)
                and wire[3] == hlc
                and wire[4] == "application"
                and wire[5] == change.id
                and isinstance(wire[6], dict)
                and isinstance(wire[6].get("status"), str)
            ):
                return str(wire[6]["status"]), state == "released"
        return None

    def _record(self, entity: str, rec_id: str) -> Record:
        run = self.look.run
        return run.record(entity, rec_id) if run is not None else self.hub.records.load(entity, rec_id)

    def _context(self, app_id: str, app: Mapping[str, object]) -> RecordContext | None:
        found = self.look.owner(app_id) if app_id else None
        if found is None and isinstance(app.get("station"), str) and app.get("station"):
            found = (str(app["station"]), str(app.get("item", "")))
        if found is None:
            return None
        station_code, item = found
        station = self.look.station(station_code)
        parent = station.parent if station is not None else None
        return RecordContext(station_code, parent or None, self.look.decided_at(item))


def _check_inspector(adm: Admission, look: Lookup) -> Admission:
    """A township's task must name a field device the hub has enrolled and not revoked; otherwise it
    would reach nobody. It is held for review with that reason (never dropped)."""
    change = adm.change
    if change is None or change.entity != "task" or "inspector" not in change.fields:
        return adm
    code = str(change.fields["inspector"])
    station = look.station(code)
    if station is None or station.tier != "field":
        return Admission(
            change,
            f"任务指派的 {code} 不是已接入的踏勘设备 (task names inspector {code!r}, "
            "which is not an enrolled field device)",
            "unknown_inspector",
        )
    if station.revoked:
        return Admission(
            change,
            f"任务指派的踏勘设备 {code} 已被吊销，请改派 (task names field device {code}, "
            "which has been revoked; assign another)",
            "revoked_inspector",
        )
    return adm
