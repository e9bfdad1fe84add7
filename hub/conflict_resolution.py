"""An operator settles a conflict: confirm what the merge chose, or override it with the other value.

A conflict record keeps both sides of a concurrent edit and the rule that decided (see
``sync/fold.py``). Confirming changes no data; it only closes the record. Overriding is itself a hub
change, written like any other (``Hub.write``: logged, merged, fanned out to the stations that see the
record), with ``base`` = the version the operator was looking at, so every replica folds it the same
way and nobody's later edit is mistaken for a concurrent one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from present.webui import status_label
from protocol.codec import unpack
from replica.errors import Refused
from replica.ids import iso_from_ms

if TYPE_CHECKING:
    from hub.service import Hub


@dataclass(frozen=True)
class OpenConflict:
    id: str
    entity: str
    record: str
    field: str
    kept: object
    kept_origin: str
    other: object
    other_origin: str
    resolved: bool


def load(hub: Hub, conflict_id: str) -> OpenConflict:
    row = hub.store.conflict(conflict_id)
    if row is None:
        raise Refused(f"没有编号为 {conflict_id} 的冲突记录 (no such conflict)")
    winner, loser = unpack(row.winner), unpack(row.loser)
    assert isinstance(winner, list) and isinstance(loser, list)
    return OpenConflict(
        conflict_id, row.entity, row.record, row.field, winner[2], str(winner[1]), loser[2], str(loser[1]), row.resolved
    )


def _shown(field: str, value: object) -> str:
    if field == "status":
        return status_label(value)
    if isinstance(value, list) and value:
        return "、".join(str(v) for v in value if v != "")
    return str(value)


def _close(hub: Hub, conflict_id: str, resolution: str) -> None:
    hub.store.close_conflict(conflict_id, resolution)


def confirm(hub: Hub, conflict_id: str, *, by: str) -> dict[str, object]:
    """Keep what the merge chose. Call outside a transaction."""
    c = load(hub, conflict_id)
    if c.resolved:
        raise Refused("该冲突已处理 (already resolved)")
    resolution = f"确认保留「{_shown(c.field, c.kept)}」（{by}，{iso_from_ms(hub.clock())}）"
    with hub.store.transaction():
        _close(hub, conflict_id, resolution)
    return {"id": conflict_id, "resolved": True, "resolution": resolution}


def override(hub: Hub, conflict_id: str, *, by: str) -> dict[str, object]:
    """Set the field to the value the merge discarded, as a hub change. Call outside a transaction."""
    c = load(hub, conflict_id)
    if c.resolved:
        raise Refused("该冲突已处理 (already resolved)")
    record = hub.records.load(c.entity, c.record)
    if c.field not in record:
        raise Refused("记录中没有该字段，无法改判 (the record no longer has this field)")
    current = record[c.field]
    resolution = f"改为「{_shown(c.field, c.other)}」（{by}，{iso_from_ms(hub.clock())}）"
    with hub.store.transaction():
        hub.write(c.entity, c.record, {c.field: c.other}, {c.field: current[0]}, check=False)
        after = hub.records.load(c.entity, c.record)[c.field]
        if after[2] != c.other:
            # The status merges by workflow stage before anything else, so no write, not even the hub's,
            # can take an application back to an earlier stage. Raising rolls the write back.
            raise Refused(
                f"状态按办理流程顺序合并，不能从「{_shown(c.field, current[2])}」改回「{_shown(c.field, c.other)}」；"
                "如需退回，请在办件中按流程操作（如要求补正）"
            )
        _close(hub, conflict_id, resolution)
    return {"id": conflict_id, "resolved": True, "resolution": resolution}
