"""The facts ``sync.admission`` needs, read from a replica's own store: shared by the hub and a station,
so both ask the admission question of the same data in the same way.

Only the parts both sides hold alike live here: the status history of an application (from the change
log), who holds an application number (from the projection), and a record's merged cells. Who owns a
record, who decides its item and which catalogue releases exist differ between hub and station, and
each side supplies them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from protocol.codec import pack_map, unpack
from sync.admission import Facts, StatusVersion
from sync.catalogue import Catalogue
from sync.change import Change
from sync.fold import Record
from sync.inspection import APPROVE_WITHOUT_INSPECTION
from sync.model import FIXED_FIELDS, RecordContext

T = TypeVar("T")


class _Once(Generic[T]):
    """A read done at most once, when first asked for. ``functools.cache`` around a fresh lambda did
    the same, but building its wrapper for every change cost about 4 % of a push's hub CPU (py-spy,
    ``bench sync``), most of it for reads a new application never asks for."""

    __slots__ = ("_done", "_read", "_value")

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._done = False

    def __call__(self) -> T:
        if not self._done:
            self._value = self._read()
            self._done = True
        return self._value


def status_versions(conn: sqlite3.Connection, app_id: str) -> list[StatusVersion]:
    """Every status the application has held here, from its logged changes."""
    out = []
    for rowid, hlc, origin, epoch, seq, fields in conn.execute(
        "SELECT rowid, hlc, origin, epoch, seq, fields FROM changes WHERE entity='application' AND rid=?", (app_id,)
    ):
        written = unpack(fields)
        if isinstance(written, dict) and isinstance(written.get("status"), str):
            out.append(StatusVersion(int(hlc), str(origin), str(written["status"]), int(epoch), int(seq), int(rowid)))
    return out


def reissued(conn: sqlite3.Connection, change: Change) -> bool:
    """Whether the same origin's change to the same record, with the same fields, is held from an
    earlier epoch: what a station re-issues, word for word, after a fork."""
    row = conn.execute(
        "SELECT 1 FROM changes WHERE entity=? AND rid=? AND origin=? AND epoch<? AND fields=? LIMIT 1",
        (change.entity, change.id, change.origin, change.epoch, pack_map(dict(change.fields))),
    ).fetchone()
    return row is not None


def inspected(conn: sqlite3.Connection, app_id: str) -> bool:
    """Whether the log holds a report on the application, or the approve-without-inspection event (both
    are logged as soon as a batch applies them, so an event earlier in the same batch counts)."""
    for entity, fields in conn.execute(
        "SELECT entity, fields FROM changes WHERE application=? AND entity IN ('report', 'event')", (app_id,)
    ):
        if entity == "report":
            return True
        written = unpack(fields)
        if isinstance(written, dict) and written.get("action") == APPROVE_WITHOUT_INSPECTION:
            return True
    return False


def number_holder(conn: sqlite3.Connection, number: str) -> str | None:
    row = conn.execute("SELECT id FROM applications WHERE number=? LIMIT 1", (number,)).fetchone()
    return None if row is None else str(row[0])


def application_id(change: Change, current: Mapping[str, object]) -> str:
    """The application a change belongs to: itself, the one it names, or the one its record names."""
    if change.entity == "application":
        return change.id
    named = change.fields.get("application", current.get("application"))
    return named if isinstance(named, str) else ""


def build_facts(
    conn: sqlite3.Connection,
    change: Change,
    *,
    current: Record,
    values: Callable[[str, str], Mapping[str, object]],
    context: Callable[[str, Mapping[str, object]], RecordContext | None],
    catalogue: Callable[[int], Catalogue | None],
    latest_catalogue: Callable[[], tuple[int, Catalogue] | None],
    published_up_to: Callable[[], int],
    numbers: Mapping[str, str] | None = None,
    delivered: Callable[[int], bool] | None = None,
    authority: Callable[[str], int] | None = None,
    held_status: Callable[[int], tuple[str, bool] | None] | None = None,
) -> Facts:
    """Facts for one change. ``values(entity, id)`` reads merged records (the caller's view, which may
    include a batch not yet written); ``context(app_id, app_values)`` says who owns the application;
    ``numbers`` holds the numbers taken earlier in the same run and not yet projected."""
    current_values = {k: c[2] for k, c in current.items()}
    app_id = application_id(change, current_values)
    app = current_values if change.entity == "application" else dict(values("application", app_id))
    if change.entity == "application" and not current:
        app = dict(change.fields)  # a new application: its owner is the one it names
    ctx = context(app_id, app)
    # A task's or report's rights come from the task with the record's own id; read it once.
    task = values("task", change.id) if change.entity in ("task", "report") else {}
    if ctx is not None:
        inspector = task.get("inspector")
        fixed = {k: v for k, v in current_values.items() if k in FIXED_FIELDS}
        ctx = RecordContext(
            ctx.station, ctx.station_parent, ctx.decided_at, inspector if isinstance(inspector, str) else None, fixed
        )
    taken = numbers or {}

    def holder(number: str) -> str | None:
        return taken.get(number) or number_holder(conn, number)

    return Facts(
        context=ctx,
        current=current,
        application=app,
        task=task if change.entity == "report" else {},
        status_versions=_Once(lambda: status_versions(conn, app_id)),
        catalogue=catalogue,
        number_holder=holder,
        latest_catalogue=latest_catalogue,
        published_up_to=published_up_to,
        reissued=lambda: change.epoch > 1 and reissued(conn, change),
        delivered=delivered or (lambda rowid: False),
        authority=authority or (lambda origin: 0),
        held_status=held_status or (lambda hlc: None),
        inspected=_Once(lambda: inspected(conn, app_id)),
    )
