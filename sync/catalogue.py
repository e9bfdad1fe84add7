"""The service catalogue (事项目录): its model, strict parsing, and the diff an operator sees before a
publish. The acceptance rules read from it are in ``sync/acceptance.py``.

A catalogue release is authored at the hub, signed, and carried to every station, where it decides
what the station may accept, which materials it must see, and when the citizen is told to come back.
Stations work for weeks on the release they last received, so parsing is strict: a malformed item
refused at publish time, with a message naming the item and the field, costs an operator a minute;
the same item accepted and then misread at a hundred offline stations costs a district weeks.

Applications record the release version they were accepted under, and a later release never
invalidates them; ``diff_catalogues`` lets the operator see what a publish will change first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from types import MappingProxyType
from typing import cast

from protocol.errors import SanjiError
from sync.calendar import CalendarError, WorkCalendar

TIERS: tuple[str, ...] = ("district", "township", "street", "village", "community")
# How staff name a tier in a sentence ("该事项不能在村级站点受理").
TIER_LABELS: dict[str, str] = {
    "district": "区",
    "township": "镇",
    "street": "街道",
    "village": "村",
    "community": "社区",
}
KINDS: tuple[str, ...] = ("immediate", "promised")


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class CatalogueError(SanjiError, ValueError):
    """A catalogue document that must not be published or loaded. ``where`` names the field."""

    default_code = "invalid_catalogue"

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class Material:
    name: str
    required: bool
    deferrable: bool


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    category: str
    kind: str  # "immediate" (即办件) | "promised" (承诺件)
    legal_days: int
    promised_days: int
    accepted_at: tuple[str, ...]
    decided_at: str
    inspection_required: bool
    materials: tuple[Material, ...]

    @property
    def immediate(self) -> bool:
        return self.kind == "immediate"

    def material(self, name: str) -> Material | None:
        return next((m for m in self.materials if m.name == name), None)


@dataclass(frozen=True)
class Theme:
    code: str
    name: str
    items: tuple[str, ...]
    promised_days: int


@dataclass(frozen=True)
class Catalogue:
    district_code: str
    district_name: str
    version: int
    items: Mapping[str, Item]
    themes: Mapping[str, Theme]
    calendar: WorkCalendar
    issued_at: str = ""
    expires_at: str = ""
    note: str = ""  # free text from the author; kept so a release round-trips unchanged

    def items_for_tier(self, tier: str) -> tuple[Item, ...]:
        """What a station of this tier may accept, in catalogue order."""
        return tuple(item for item in self.items.values() if tier in item.accepted_at)


# --- parsing -----------------------------------------------------------------------------------


class _Fields:
    """Typed access to one JSON object, with errors that say where they are."""

    def __init__(self, where: str, raw: object, allowed: set[str], optional: Iterable[str] = ()) -> None:
        if not isinstance(raw, Mapping):
            raise CatalogueError(where or "catalogue", f"must be an object, got {_kind(raw)}")
        self.where = where
        self.raw: Mapping[object, object] = raw
        known = allowed | set(optional)
        # Unknown fields are refused too: a misspelt optional field would otherwise vanish silently.
        unknown = sorted(str(k) for k in raw if k not in known)
        if unknown:
            raise CatalogueError(where, f"unknown field(s) {', '.join(unknown)}")
        missing = sorted(allowed - set(raw))
        if missing:
            raise CatalogueError(where, f"missing field(s) {', '.join(missing)}")

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def text(self, key: str, *, empty_ok: bool = False, default: str | None = None) -> str:
        if key not in self.raw and default is not None:
            return default
        value = self.raw[key]
        if not isinstance(value, str):
            raise CatalogueError(self.at(key), f"must be a string, got {_kind(value)}")
        if not empty_ok and not value.strip():
            raise CatalogueError(self.at(key), "must not be empty")
        if value != value.strip():
            raise CatalogueError(self.at(key), f"has leading or trailing spaces: {value!r}")
        return value

    def integer(self, key: str, *, minimum: int) -> int:
        value = self.raw[key]
        # bool is an int in Python but never a number of days in a catalogue.
        if isinstance(value, bool) or not isinstance(value, int):
            raise CatalogueError(self.at(key), f"must be an integer, got {_kind(value)}")
        if value < minimum:
            raise CatalogueError(self.at(key), f"must be at least {minimum}, got {value}")
        return value

    def flag(self, key: str) -> bool:
        value = self.raw[key]
        if not isinstance(value, bool):
            raise CatalogueError(self.at(key), f"must be true or false, got {_kind(value)}")
        return value

    def array(self, key: str) -> list[object]:
        value = self.raw[key]
        if not isinstance(value, list):
            raise CatalogueError(self.at(key), f"must be a list, got {_kind(value)}")
        return value

    def tier(self, value: object, where: str) -> str:
        if not isinstance(value, str) or value not in TIERS:
            raise CatalogueError(where, f"{value!r} is not a tier (one of {', '.join(TIERS)})")
        return value


def _kind(value: object) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:60]


def _timestamp(f: _Fields, key: str) -> str:
    value = f.text(key, empty_ok=True, default="")
    if value:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise CatalogueError(f.at(key), f"{value!r} is not an ISO 8601 date-time") from None
    return value


def _parse_material(raw: object, where: str) -> Material:
    f = _Fields(where, raw, {"name", "required", "deferrable"})
    return Material(f.text("name"), f.flag("required"), f.flag("deferrable"))


_ITEM_FIELDS = (
    "code",
    "name",
    "category",
    "kind",
    "legal_days",
    "promised_days",
    "accepted_at",
    "decided_at",
    "inspection_required",
    "materials",
)


def _where(raw: object, noun: str, index: int) -> str:
    """Name a record by its code when it has a usable one, else by its place in the list."""
    code = raw.get("code") if isinstance(raw, Mapping) else None
    return f"{noun} {code}" if isinstance(code, str) and code else f"{noun}s[{index}]"


def _parse_item(raw: object, index: int) -> Item:
    where = _where(raw, "item", index)
    f = _Fields(where, raw, set(_ITEM_FIELDS))
    code_text = f.text("code")
    kind = f.text("kind")
    if kind not in KINDS:
        raise CatalogueError(f.at("kind"), f"{kind!r} is not a kind (immediate or promised)")
    legal_days = f.integer("legal_days", minimum=0)
    promised_days = f.integer("promised_days", minimum=0)
    if kind == "immediate" and promised_days != 0:
        raise CatalogueError(f.at("promised_days"), f"must be 0 for an immediate item, got {promised_days}")
    if kind == "promised":
        if promised_days < 1:
            raise CatalogueError(f.at("promised_days"), "must be at least 1 for a promised item")
        if promised_days > legal_days:
            raise CatalogueError(
                f.at("promised_days"),
                f"{promised_days} exceeds legal_days {legal_days}; a promise cannot be longer than the law",
            )
    accepted_raw = f.array("accepted_at")
    if not accepted_raw:
        raise CatalogueError(f.at("accepted_at"), "must name at least one tier")
    accepted = tuple(f.tier(t, f.at(f"accepted_at[{i}]")) for i, t in enumerate(accepted_raw))
    if len(set(accepted)) != len(accepted):
        raise CatalogueError(f.at("accepted_at"), "lists a tier twice")
    materials = tuple(_parse_material(m, f.at(f"materials[{i}]")) for i, m in enumerate(f.array("materials")))
    names = [m.name for m in materials]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CatalogueError(f.at("materials"), f"material {dupes[0]!r} is listed twice")
    return Item(
        code=code_text,
        name=f.text("name"),
        category=f.text("category"),
        kind=kind,
        legal_days=legal_days,
        promised_days=promised_days,
        accepted_at=accepted,
        decided_at=f.tier(f.raw["decided_at"], f.at("decided_at")),
        inspection_required=f.flag("inspection_required"),
        materials=materials,
    )


def _parse_theme(raw: object, index: int, items: Mapping[str, Item]) -> Theme:
    where = _where(raw, "theme", index)
    f = _Fields(where, raw, {"code", "name", "items", "promised_days"})
    members: list[str] = []
    for i, member in enumerate(f.array("items")):
        if not isinstance(member, str):
            raise CatalogueError(f.at(f"items[{i}]"), f"must be an item code, got {_kind(member)}")
        if member not in items:
            raise CatalogueError(f.at(f"items[{i}]"), f"item {member} is not in the catalogue")
        if member in members:
            raise CatalogueError(f.at(f"items[{i}]"), f"item {member} is listed twice")
        members.append(member)
    if not members:
        raise CatalogueError(f.at("items"), "a theme must bundle at least one item")
    return Theme(f.text("code"), f.text("name"), tuple(members), f.integer("promised_days", minimum=0))


def parse_catalogue(doc: Mapping[str, object]) -> Catalogue:
    """Validate a catalogue document (parsed JSON) and build the model; raises CatalogueError."""
    top = _Fields("", doc, {"district", "version", "calendar", "items", "themes"}, {"issued_at", "expires_at", "note"})
    district = _Fields("district", doc["district"], {"code", "name"})
    district_code = district.text("code")
    if not (len(district_code) == 6 and district_code.isascii() and district_code.isdigit()):
        raise CatalogueError("district.code", f"{district_code!r} is not a 6-digit administrative code")
    version = top.integer("version", minimum=1)
    try:
        # from_catalogue checks every level's type itself; the cast only names what it expects.
        calendar = WorkCalendar.from_catalogue(cast(Mapping[str, Mapping[str, list[str]]], doc["calendar"]))
    except CalendarError as e:
        raise CatalogueError("calendar", str(e)) from None
    items: dict[str, Item] = {}
    for i, raw in enumerate(top.array("items")):
        item = _parse_item(raw, i)
        if item.code in items:
            raise CatalogueError(f"items[{i}].code", f"item code {item.code} is used twice")
        items[item.code] = item
    if not items:
        raise CatalogueError("items", "a catalogue must have at least one item")
    themes: dict[str, Theme] = {}
    for i, raw in enumerate(top.array("themes")):
        theme = _parse_theme(raw, i, items)
        if theme.code in themes:
            raise CatalogueError(f"themes[{i}].code", f"theme code {theme.code} is used twice")
        themes[theme.code] = theme
    issued_at, expires_at = _timestamp(top, "issued_at"), _timestamp(top, "expires_at")
    if issued_at and expires_at:
        start, end = datetime.fromisoformat(issued_at), datetime.fromisoformat(expires_at)
        # Only comparable when both carry an offset or neither does.
        if (start.tzinfo is None) == (end.tzinfo is None) and end <= start:
            raise CatalogueError("expires_at", f"{expires_at} is not after issued_at {issued_at}")
    return Catalogue(
        district_code=district_code,
        district_name=district.text("name"),
        version=version,
        items=MappingProxyType(items),
        themes=MappingProxyType(themes),
        calendar=calendar,
        issued_at=issued_at,
        expires_at=expires_at,
        note=top.text("note", empty_ok=True, default=""),
    )


def _to_doc(record: Item | Theme) -> dict[str, object]:
    # Field names are the document's keys; only tuples need turning back into JSON lists.
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(record).items()}


def catalogue_to_doc(cat: Catalogue) -> dict[str, object]:
    """The inverse of ``parse_catalogue``: ``parse_catalogue(catalogue_to_doc(c)) == c``.

    Optional fields are written only when set, so a document without them comes back as it was.
    """
    doc: dict[str, object] = {
        "district": {"code": cat.district_code, "name": cat.district_name},
        "version": cat.version,
        "calendar": cat.calendar.to_catalogue(),
        "items": [_to_doc(item) for item in cat.items.values()],
        "themes": [_to_doc(theme) for theme in cat.themes.values()],
    }
    for key, value in (("issued_at", cat.issued_at), ("expires_at", cat.expires_at), ("note", cat.note)):
        if value:
            doc[key] = value
    return doc


def diff_catalogues(old: Catalogue, new: Catalogue) -> dict[str, object]:
    """What publishing ``new`` over ``old`` changes, for the operator's publish screen.

    Codes are sorted; ``changed_fields`` names, per changed item, the fields that differ.
    """
    old_items, new_items = old.items, new.items
    changed = sorted(c for c in old_items.keys() & new_items.keys() if old_items[c] != new_items[c])
    changed_fields = {
        code: [f for f in _ITEM_FIELDS if getattr(old_items[code], f) != getattr(new_items[code], f)]
        for code in changed
    }
    return {
        "from_version": old.version,
        "to_version": new.version,
        "added": sorted(new_items.keys() - old_items.keys()),
        "removed": sorted(old_items.keys() - new_items.keys()),
        "changed": changed,
        "changed_fields": changed_fields,
        "themes_added": sorted(new.themes.keys() - old.themes.keys()),
        "themes_removed": sorted(old.themes.keys() - new.themes.keys()),
        "themes_changed": sorted(c for c in old.themes.keys() & new.themes.keys() if old.themes[c] != new.themes[c]),
        "calendar_changed": old.calendar != new.calendar,
    }
