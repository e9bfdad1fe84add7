"""What staff read of the catalogue: the items their tier may accept, and the nearest items to a code
or name that matched none (issue 14 item 6).

The README's own example accept was refused for missing materials, and a mistyped item code got no
hint: staff had no way to see the catalogue short of reading its JSON. `sanji node catalogue` and
`sanji hub catalogue` print :func:`listing`; a refused item code names :func:`suggest`'s matches.
"""

from __future__ import annotations

import difflib

from sync.catalogue import TIER_LABELS, Catalogue, Item

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


def listing_text(d: dict[str, object]) -> str:
    """The listing as staff read it at a terminal: one item per block, materials marked."""
    items = d.get("items")
    assert isinstance(items, list)
    tier = TIER_LABELS.get(str(d.get("tier")), str(d.get("tier")))
    lines = [f"事项目录 v{d.get('version')}：{tier}级可受理 {len(items)} 项（必交材料 ●，可容缺后补 ○，选交 ·）"]
    for e in items:
        days = "即办" if e["kind"] == "immediate" else f"承诺 {e['promised_days']} 个工作日"
        visit = "，需现场踏勘" if e["inspection_required"] else ""
        lines.append(f"{e['code']}  {e['name']}（{days}{visit}）")
        marks = [("○" if m["deferrable"] else "●" if m["required"] else "·") + str(m["name"]) for m in e["materials"]]
        lines.append("    " + "  ".join(marks))
    return "\n".join(lines)
