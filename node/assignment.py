"""A township or street centre assigns on-site inspections (现场踏勘) of the items it decides.

The same rules as the hub's (``replica/inspection.py``): only during review, only for items whose
catalogue entry requires an inspection, one open task at a time, and the move to ``inspecting``
pauses the time limit in the same transaction. The centre works offline, so it checks the inspector
against the list of field devices its last feed page carried; the hub checks again when the task
arrives (a device revoked in between gets the task quarantined with that reason, not lost).
"""

from __future__ import annotations

from node.commands import find, roles_here
from node.station import Station
from replica import inspection as shared
from replica.errors import Refused
from sync.fold import values


def _check_inspector(st: Station, inspector: str) -> None:
    known = st.meta.get("field_devices")
    if not isinstance(known, list) or not known:
        raise Refused(
            "本站还不知道本区有哪些踏勘设备：请先联网同步（sanji node sync）"
            "或导入区局带来的文件（sanji node import）后重试"
            " (no field devices known yet)"
        )
    if inspector not in known:
        raise Refused(
            f"{inspector} 不是本区的踏勘设备（已知：{'、'.join(map(str, known))}）：请从中选一个；"
            f"新设备由区局登记（sanji hub enroll … --tier field） (not a field device of this district)"
        )


def assign(st: Station, number: str, inspector: str, due: str | None = None, *, author: str = "") -> dict[str, object]:
    """Assign an inspection of application ``number`` to ``inspector``. Raises Refused, writing nothing.
    ``author`` is the signed-in staff member's user name, ``""`` at a station without accounts."""
    app_id = find(st, number)
    vals = values(st.records.load("application", app_id))
    if "decider" not in roles_here(st, str(vals.get("station")), str(vals.get("item"))):
        raise Refused(
            f"办件 {number}：本站不决定事项 {vals.get('item')}，不能安排踏勘；"
            "由决定层级安排（或区局用 sanji hub inspect）"
            " (this station does not decide the item)"
        )
    _check_inspector(st, inspector)
    job = shared.plan(
        st.conn,
        st.records,
        st.catalogue().catalogue,
        app_id=app_id,
        number=number,
        inspector=inspector,
        due=due,
        now_ms=st.clock(),
    )
    # The inspector's copy of the address and phone: plaintext opened through the session at a station
    # that seals at rest (the task's write seals them again, for the task's own cell).
    shown = st.shown_values("application", app_id)
    job.task["address"] = str(shown.get("address") or "")
    job.task["phone"] = str(shown.get("applicant_phone") or "")
    with st.transaction():
        st.write("task", job.task_id, job.task, {}, author=author)
        if job.application:
            st.write("application", app_id, job.application, job.base, author=author)
    return job.summary()
