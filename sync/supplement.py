"""补交材料: admission of a material written after acceptance (``sync/admission.py`` asks this).

A material deferred at acceptance (容缺, ``["deferred", due date]``) is later recorded as received:
``["supplemented", received date]``. Each material is its own last-writer-wins field (``m.<name>``,
``sync/model.py``), so a station and the hub recording different materials concurrently both survive
the fold. The rules, the same at the hub and at every station:

- only the accepting station and the district record a receipt (the citizen brings the document to the
  window that holds the file, or to the district hall);
- only for a material that was deferred (an already supplemented one may be recorded again: two
  windows may have taken the same document while offline; the later date simply wins);
- the received date is a real day, not before the acceptance and not after the day the change was
  written (one day of slack for a clock at the edge of midnight); the resubmit after 补正 writes its
  materials with the status move and may leave the date empty, as it always has;
- not once the file is closed (不予受理, 撤回, 办结, 送达: ``sync.workflow.TERMINAL``): nothing is owed
  then, and the morning report no longer asks for it. A receipt written before the closing, but
  arriving after it, is still admitted: it happened while the file was open.

After acceptance a material may otherwise only be marked missing (缺失) by the deciding tier during
review; no command writes ``submitted`` or ``deferred`` again.
"""

from __future__ import annotations

from datetime import date, timedelta

from sync.change import Change
from sync.hlc import wall_ms
from sync.model import MATERIAL_PREFIX
from sync.verdict import Admission, Facts, refused, status_word
from sync.workflow import TERMINAL, Status

SUPPLEMENTED = "supplemented"
DEFERRED = "deferred"
CHINA_OFFSET_MS = 8 * 3600 * 1000  # the district's wall clock is China time (UTC+8, no summer time)
EPOCH_DAY = date(1970, 1, 1)


def written_on(change: Change) -> date:
    """The China-time day on which ``change`` was stamped."""
    return EPOCH_DAY + timedelta(days=(wall_ms(change.hlc) + CHINA_OFFSET_MS) // 86_400_000)


def material_writes(change: Change, roles: frozenset[str], facts: Facts) -> Admission | None:
    """``None`` when every material the change writes to an existing application is admissible."""
    names = [n for n in change.fields if n.startswith(MATERIAL_PREFIX)]
    for name in names:
        value = change.fields[name]
        if not isinstance(value, list) or len(value) != 2:  # the model checked the shape; be total anyway
            return refused(change, "bad_supplement", f"材料「{name[2:]}」的值无效 (malformed material value)")
        state, day = str(value[0]), str(value[1])
        if state != SUPPLEMENTED:
            if "hub" in roles or (state == "missing" and "decider" in roles):
                continue
            return refused(
                change,
                "not_a_command",
                f"受理后材料「{name[2:]}」只能登记为已补交 (after acceptance a material is only recorded as received)",
            )
        problem = _supplement(change, roles, facts, name, day)
        if problem is not None:
            return problem
    if names and "status" not in change.fields:
        return _closed(change, facts)
    return None


def _supplement(change: Change, roles: frozenset[str], facts: Facts, name: str, day: str) -> Admission | None:
    material = name[len(MATERIAL_PREFIX) :]
    if not roles & {"station", "hub"}:
        return refused(
            change,
            "not_authorised",
            f"只有受理站点或区局可以登记补交材料「{material}」 "
            "(only the accepting station or the district records a supplemented material)",
        )
    cell = facts.current.get(name)
    held = cell[2] if cell is not None else None
    if not (isinstance(held, list) and held and held[0] in (DEFERRED, SUPPLEMENTED)):
        return refused(
            change,
            "not_deferred",
            f"材料「{material}」受理时不是容缺材料，无需补交 (only a material deferred at acceptance is supplemented)",
        )
    if not day:
        if "status" in change.fields:  # the resubmit after 补正 (node/commands.py) writes no date
            return None
        return refused(
            change, "bad_supplement_date", f"补交材料「{material}」须登记收到日期 (a received date is required)"
        )
    try:
        received = date.fromisoformat(day)
    except ValueError:
        return refused(change, "bad_supplement_date", f"收到日期 {day!r} 格式不对 (not a YYYY-MM-DD date)")
    accepted = str(facts.current.get("accepted_at", (0, "", "", 0))[2])[:10]
    if accepted and day < accepted:
        return refused(
            change,
            "bad_supplement_date",
            f"收到日期 {day} 早于受理日期 {accepted} (the received date is before the acceptance)",
        )
    if received > written_on(change) + timedelta(days=1):
        return refused(
            change,
            "bad_supplement_date",
            f"收到日期 {day} 晚于登记当天 {written_on(change).isoformat()} (the received date is in the future)",
        )
    return None


def _closed(change: Change, facts: Facts) -> Admission | None:
    cell = facts.current.get("status")
    if cell is None:
        return None
    try:
        status = Status(str(cell[2]))
    except ValueError:
        return None
    if status in TERMINAL and cell[0] < change.hlc:
        return refused(
            change,
            "application_closed",
            f"办件已「{status_word(status.value)}」，不再登记补交材料 "
            "(the application is closed; nothing is owed any more)",
        )
    return None
