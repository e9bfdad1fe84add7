"""The hub's side of on-site inspections (现场踏勘): assigning them to field devices it has enrolled.

``sanji hub inspect`` writes one ``task`` record (a fresh UUIDv7) through :meth:`Hub.write`, so the
change is logged and fanned out like any other: to the field device named as inspector (``hub/feed.py``
sends it task and report changes only), to the station that accepted the application, and to the
township that decides the item. The task carries what the inspector needs to find the place and do
the job (application id and number, item, address, the applicant's phone, due date, checklist) and
nothing else about the citizen. The rules the hub shares with a township that assigns its own
inspections (refusals, the pause, the due date moving out) live in ``replica/inspection.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from replica import inspection as shared
from replica.errors import Refused
from sync.fold import Record

if TYPE_CHECKING:
    from hub.service import Hub


def _application(hub: Hub, number: str) -> str:
    row = hub.store.conn.execute("SELECT id FROM applications WHERE number=?", (number,)).fetchone()
    if row is None:
        raise Refused(f"no application numbered {number} at the hub")
    return str(row[0])


def tasks_of(hub: Hub, app_id: str) -> list[tuple[str, dict[str, object]]]:
    """(task id, task fields) of every task for an application, oldest first (ids are UUIDv7)."""
    return shared.tasks_of(hub.store.conn, hub.records, app_id)


def check_inspector(hub: Hub, inspector: str) -> None:
    """Refuse unless ``inspector`` is an enrolled, unrevoked field device."""
    station = hub.store.station(inspector)
    if station is None:
        raise Refused(
            f"no station {inspector} is registered; enrol the device first (`sanji hub enroll ... --tier field`)"
        )
    if station.tier != "field":
        raise Refused(
            f"{inspector} is a {station.tier} station, not a field device; "
            "inspections go to a device enrolled with --tier field"
        )
    if station.revoked:
        raise Refused(f"field device {inspector} has been revoked; re-enrol it or choose another inspector")


def assign(
    hub: Hub,
    number: str,
    inspector: str,
    due: str | None = None,
    also: Callable[[dict[str, object]], object] | None = None,
) -> dict[str, object]:
    """Assign an inspection of application ``number`` to field device ``inspector``. Raises Refused.
    ``also`` gets the summary inside the same transaction (the dashboard's audit row)."""
    app_id = _application(hub, number)
    check_inspector(hub, inspector)
    job = shared.plan(
        hub.store.conn,
        hub.records,
        hub.catalogue()[1],
        app_id=app_id,
        number=number,
        inspector=inspector,
        due=due,
        now_ms=hub.clock(),
    )
    with hub.store.transaction():
        hub.write("task", job.task_id, job.task, {})
        if job.application:
            hub.write("application", app_id, job.application, job.base)
        if also is not None:
            also(job.summary())
    return job.summary()


def resume_fields(hub: Hub, app_id: str, record: Record) -> tuple[dict[str, object], dict[str, int]]:
    """Fields (and their bases) that end an inspection's pause: ``paused`` off, ``due_date`` moved out."""
    return shared.resume_fields(
        hub.store.conn, hub.records, hub.catalogue()[1].calendar, app_id=app_id, record=record, now_ms=hub.clock()
    )
