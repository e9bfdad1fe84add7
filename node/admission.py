"""A station asks the hub's admission question of its own changes before it writes them.

``sync/admission.py`` is the one answer to "could this author have written this change with Sanji's
own commands?". The hub asks it of everything that arrives; the station asks it here, inside the
write path, so a station's commands and the hub can never disagree: a change the hub would hold in
quarantine is refused at the window instead, with the same reason, and nothing is written.

The station answers from what it holds: its own records and log, its catalogue releases, and its
place in the district (a township holds only its own villages' applications, so it is their parent;
a field device holds a task without its application).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any, Protocol

from node.staff_schema import HUB, account
from node.store import Meta
from replica.admission_facts import build_facts
from replica.errors import Refused
from replica.records import RecordStore
from sync.admission import judge
from sync.catalogue import Catalogue
from sync.change import Change
from sync.model import Actor, RecordContext
from sync.staff_change import STAFF_ENTITY
from sync.verdict import StaffFact


class Station(Protocol):
    """What the check reads of the station writing (``node.station.Station``, which calls it from its
    write path): named here as a protocol, so this module does not import its caller."""

    @property
    def code(self) -> str: ...
    @property
    def tier(self) -> str: ...

    conn: sqlite3.Connection
    meta: Meta
    records: RecordStore

    def catalogue(self) -> Any: ...  # node.station.CatalogueState
    def catalogue_at(self, version: int) -> Catalogue | None: ...


def check_write(st: Station, change: Change) -> None:
    """Raise :class:`Refused` with the admission's reason and code unless the change is admissible."""
    verdict = judge(change, Actor(st.code, st.tier), _facts(st, change))
    if not verdict.admitted:
        raise Refused(f"本站不能写入这一变更：{verdict.reason}", code=verdict.code)


def _facts(st: Station, change: Change):  # type: ignore[no-untyped-def]
    def context(app_id: str, app: Mapping[str, object]) -> RecordContext | None:
        station, item = app.get("station"), app.get("item")
        if not isinstance(station, str) or not station:
            # A field device holds its tasks but not their applications; its rights come from the task.
            return RecordContext("", None, "district") if change.entity in ("task", "report") else None
        parent = st.meta.text("parent") if station == st.code else st.code
        cat_item = None
        with suppress(Refused):  # no catalogue yet: the item is unknown, decided at the district
            cat_item = st.catalogue().catalogue.items.get(str(item))
        return RecordContext(station, parent or None, cat_item.decided_at if cat_item else "district")

    def staff_account(station: str, user: str) -> StaffFact | None:
        # Only accounts the hub made: a local one never travels, and the hub would not know it.
        found = account(st.conn, user) if station == st.code else None
        return StaffFact(found.role, found.enabled) if found is not None and found.source == HUB else None

    facts = build_facts(
        st.conn,
        change,
        current=st.records.load(change.entity, change.id),
        values=st.records.values,
        context=context,
        catalogue=st.catalogue_at,
        latest_catalogue=lambda: None,
        published_up_to=lambda: 0,
    )
    return replace(facts, staff_account=staff_account) if change.entity == STAFF_ENTITY else facts
