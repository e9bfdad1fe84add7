"""What staff read of the catalogue: the items their tier may accept, and the nearest items to a code
or name that matched none (issue 14 item 6).

The README's own example accept was refused for missing materials, and a mistyped item code got no
hint: staff had no way to see the catalogue short of reading its JSON. `sanji node catalogue` and
`sanji hub catalogue` print :func:`listing`; a refused item code names :func:`suggest`'s matches.

Staff search the way they speak (issue 19 item 10): "低保" for 最低生活保障申请, and pinyin initials typed
without switching input method ("zdshbz"). :func:`search_terms` gives an item's name, code, category, the
common abbreviations of :data:`ABBREVIATIONS` and its initials; :func:`find` matches a query against them.
The initials come from a function the caller hands in (present/pinyin.py, with pypinyin), so this module
stays pure; the abbreviations are a table here rather than a catalogue field, so a catalogue with them
is never refused by a station whose parser does not know the field yet.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

from sync.catalogue import TIER_LABELS, Catalogue, Item

# What a phrase in an item's name is called at the window. Any item whose name holds the phrase is found by
# the short forms too, in every district's catalogue.
ABBREVIATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("最低生活保障", ("低保",)),
    ("医疗保险", ("医保", "社保")),
    ("养老保险", ("社保", "养老金")),
    ("社会保险", ("社保",)),
    ("残疾人证", ("残疾证",)),
    ("特困人员", ("五保", "五保户")),
    ("危房改造", ("危改",)),
    ("计划生育家庭奖励扶助", ("计生奖扶",)),
    ("老年人优待证", ("老年证",)),
    ("高龄津贴", ("高龄补贴",)),
    ("个体工商户设立登记", ("营业执照", "办执照")),
    ("企业设立登记", ("营业执照", "办执照")),
    ("居民临时身份证明", ("临时身份证",)),
    ("宅基地", ("建房",)),
)

Initials = Callable[[str], str]


def search_terms(name: str, code: str, category: str, initials: Initials | None = None) -> list[str]:
    """Everything an item (or a theme) is found by: name, code, category, abbreviations, pinyin initials."""
    terms = [name, code, category]
    for phrase, short in ABBREVIATIONS:
        if phrase in name:
            terms += [s for s in short if s not in terms]
    if initials is not None:
        terms.append(initials(name).lower())
    return [t for t in terms if t]


def item_terms(item: Item, initials: Initials | None = None) -> list[str]:
    return search_terms(item.name, item.code, item.category, initials)


def matches(terms: Iterable[str], query: str) -> bool:
    """A query matches when it is part of one term; Latin letters in either case (ZDSHBZ as zdshbz)."""
    q = query.strip()
    if not q:
        return True
    folded = q.lower()
    return any(q in t or folded in t for t in terms)


def find(items: Iterable[Item], query: str, initials: Initials | None = None) -> list[Item]:
    """The items ``query`` finds by any of their search terms, in catalogue order."""
    return [item for item in items if matches(item_terms(item, initials), query)]


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


def listing(
    catalogue: Catalogue, version: int, tier: str, query: str = "", initials: Initials | None = None
) -> dict[str, object]:
    """``{"version", "tier", "items": [...]}``: the items a station of ``tier`` may accept, in order; with a
    ``query`` only those it finds (and ``"query"`` is echoed)."""
    items = catalogue.items_for_tier(tier)
    out: dict[str, object] = {"version": version, "tier": tier}
    if query.strip():
        items = tuple(find(items, query, initials))
        out["query"] = query.strip()
    out["items"] = [item_entry(item) for item in items]
    return out


def suggest(
    catalogue: Catalogue, text: str, tier: str, *, limit: int = 3, initials: Initials | None = None
) -> list[Item]:
    """The items of this tier nearest to ``text``, as a code, (part of) a name, an abbreviation or pinyin
    initials; best first."""
    items = catalogue.items_for_tier(tier)
    text = text.strip()
    if not text or not items:
        return []
    by_code = {item.code: item for item in items}
    by_name = {item.name: item for item in items}
    found: list[Item] = []
    # A name fragment ("养老") is the commonest way staff remember an item.
    found += [item for item in items if text in item.name]
    found += find(items, text, initials)  # 低保, zdshbz
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
    found = f"、与「{d['query']}」相符的" if d.get("query") else ""
    key = "必交材料 ●，可容缺后补 ○，选交 ·"
    lines = [f"事项目录 v{d.get('version')}：{tier}级可受理{found} {len(items)} 项（{key}）"]
    for e in items:
        days = "即办" if e["kind"] == "immediate" else f"承诺 {e['promised_days']} 个工作日"
        visit = "，需现场踏勘" if e["inspection_required"] else ""
        lines.append(f"{e['code']}  {e['name']}（{days}{visit}）")
        marks = [("○" if m["deferrable"] else "●" if m["required"] else "·") + str(m["name"]) for m in e["materials"]]
        lines.append("    " + "  ".join(marks))
    return "\n".join(lines)
