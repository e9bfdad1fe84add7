"""What staff read of the catalogue: the items their tier may accept, and the nearest items to a code
or name that matched none (issue 14 item 6).

The README's own example accept was refused for missing materials, and a mistyped item code got no
hint: staff had no way to see the catalogue short of reading its JSON. `sanji node catalogue` and
`sanji hub catalogue` print :func:`listing`; a refused item code names :func:`suggest`'s matches.
"""

from __future__ import annotations

import difflib

from sync.catalogue import Catalogue, Item

KIND_WORDS = {"immediate": "即办件", "promised": "承诺件"}


def item_entry(item: Item) -> dict[str, object]:
    """One item as `catalogue --json` prints it: what a counter clerk needs to accept it."""
    return {
        "code": item.code,
        "name": item.name,
        "category": item.category,
        "kind": item.kind,
        "promised_days": item.promised_days,
        "decided_at": item.decided_at,
        "inspection_required": item.inspection_required,
        "materials": [{"name": m.name, "required": m.required, "deferrable": m.deferrable} for m in item.materials],
    }


def listing(catalogue: Catalogue, version: int, tier: str) -> dict[str, object]:
    """``{"version", "tier", "items": [...]}``: the items a station of ``tier`` may accept, in order."""
    return {
        "version": version,
        "tier": tier,
        "items": [item_entry(item) for item in catalogue.items_for_tier(tier)],
    }


def suggest(catalogue: Catalogue, text: str, tier: str, *, limit: int = 3) -> list[Item]:
    """The items of this tier nearest to ``text``, as a code or as (part of) a name; best first."""
    items = catalogue.items_for_tier(tier)
    text = text.strip()
    if not text or not items:
        return []
    by_code = {item.code: item for item in items}
    by_name = {item.name: item for item in items}
    found: list[Item] = []
    # A name fragment ("养老") is the commonest way staff remember an item.
    found += [item for item in items if text in item.name]
    found += [by_code[c] for c in difflib.get_close_matches(text, list(by_code), n=limit, cutoff=0.6)]
    found += [by_name[n] for n in difflib.get_close_matches(text, list(by_name), n=limit, cutoff=0.4)]
    unique: list[Item] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique[:limit]


def suggestion_text(items: list[Item]) -> str:
    """``是否要找：360802-0004 城乡居民最低生活保障；…`` or a pointer to the full list."""
    if not items:
        return "可用 sanji node catalogue 查看本站可受理的事项"
    return "是否要找：" + "；".join(f"{item.code} {item.name}" for item in items)
