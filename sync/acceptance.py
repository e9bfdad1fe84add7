"""The acceptance rules a catalogue item sets: whether a station of a tier may accept it with the
materials seen and put off (容缺), and the dates promised to the citizen.

Both sides ask them: a station at its window (``node/commands.py``) and the hub's admission of a new
application (``sync/application_rules.py``), so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from protocol.errors import SanjiError
from sync.calendar import WorkCalendar
from sync.catalogue import TIER_LABELS, Item

# Deferred (容缺) materials must be supplied within this many working days, or within the promised
# time limit when that is shorter: the decision cannot wait for a material that is still missing.
DEFERRED_SUPPLEMENT_DAYS = 5


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class AcceptanceError(SanjiError, ValueError):
    """An application the station must not accept as entered; ``str(e)`` is for staff."""

    default_code = "not_acceptable"

    def __init__(self, code: str, message: str, materials: tuple[str, ...] = ()) -> None:
        super().__init__(message, code=code)
        self.message = message
        self.materials = materials


def check_acceptance(item: Item, *, tier: str, submitted: Iterable[str], deferred: Iterable[str]) -> None:
    """Refuse an application a station of ``tier`` must not accept as entered.

    Raises AcceptanceError with a message staff can act on; returns None when it may be accepted.
    Checks run from the most basic (wrong place) to the most specific (which material is missing),
    so staff fix the thing that makes the others moot first.
    """
    if tier not in TIER_LABELS:
        raise AcceptanceError("unknown_tier", f"站点层级「{tier}」无效")
    if tier not in item.accepted_at:
        raise AcceptanceError("tier_not_allowed", f"该事项不能在{TIER_LABELS[tier]}级站点受理")
    given, put_off = set(submitted), set(deferred)
    unknown = sorted(n for n in given | put_off if item.material(n) is None)
    if unknown:
        raise AcceptanceError("unknown_material", f"材料「{'、'.join(unknown)}」不在该事项的材料清单中", tuple(unknown))
    both = sorted(given & put_off)
    if both:
        raise AcceptanceError("material_conflict", f"材料「{'、'.join(both)}」不能既已提交又容缺", tuple(both))
    not_deferrable = [m.name for m in item.materials if m.name in put_off and not m.deferrable]
    if not_deferrable:
        raise AcceptanceError(
            "not_deferrable",
            f"材料「{'、'.join(not_deferrable)}」不允许容缺，请补齐后再受理",
            tuple(not_deferrable),
        )
    missing = [m for m in item.materials if m.required and m.name not in given | put_off]
    if missing:
        names = tuple(m.name for m in missing)
        hint = "请补齐或按容缺受理" if all(m.deferrable for m in missing) else "请补齐后再受理"
        raise AcceptanceError("missing_material", f"缺少必要材料「{'、'.join(names)}」，{hint}", names)


def deferred_due_date(item: Item, accepted: date, cal: WorkCalendar) -> date:
    """When a deferred (容缺) material must be supplied: 5 working days, or the promise if shorter."""
    days = DEFERRED_SUPPLEMENT_DAYS if item.immediate else min(DEFERRED_SUPPLEMENT_DAYS, item.promised_days)
    return cal.add_working_days(accepted, days)


def due_date(item: Item, accepted: date, cal: WorkCalendar) -> date:
    """The date promised to the citizen: acceptance day for immediate items, else the promised limit."""
    if item.immediate:
        return accepted
    return cal.add_working_days(accepted, item.promised_days)
