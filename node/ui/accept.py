"""Accepting at the window: choose an item (or a theme, 一件事), fill in the applicant, tick the
materials, submit, print the receipt (受理通知书).

The browser checks the ID number and phone as they are typed (``static/station.js``), but the server
is the source of truth: every field is checked again here and each problem is shown next to its field.
Submitting writes only to the station's own database (``node.commands.accept``), so it works the same
with the hub down. A theme bundles several items; accepting it accepts each item, with the theme code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from node import commands
from node.station import Station
from node.ui import initials as picker_initials
from node.ui.initials import INITIALS
from node.ui.keys import STATION
from node.ui.page import form_post, page, refuse, station_of, today
from node.ui.receipt import receipt_view
from node.ui.signin import author_of
from present.webui import read_form
from replica.errors import Refused
from sync import catalogue_view
from sync.acceptance import AcceptanceError, check_acceptance, deferred_due_date, due_date
from sync.catalogue import Item
from sync.identity import InvalidIdentity, check_id_number, check_phone

STATES = ("submitted", "deferred", "none")


@dataclass(frozen=True)
class Choice:
    """What the staff member is accepting: one item, or every item of a theme."""

    kind: str  # "item" | "theme"
    code: str
    name: str
    items: tuple[Item, ...]
    promised_days: int | None = None


def _choices(st: Station) -> tuple[list[Item], list[Choice]]:
    cat = st.catalogue().catalogue
    items = list(cat.items_for_tier(st.tier))
    themes = [
        Choice("theme", t.code, t.name, tuple(cat.items[c] for c in t.items), t.promised_days)
        for t in cat.themes.values()
        if all(st.tier in cat.items[c].accepted_at for c in t.items)
    ]
    return items, themes


def _picker_names(st: Station) -> list[str]:
    """The names the picker finds by their pinyin initials: its items' and its themes'."""
    items, themes = _choices(st)
    return [i.name for i in items] + [t.name for t in themes]


def warm_initials(app: web.Application) -> None:
    """The real server's picker initials, worked out once it has started (node/ui/initials.py)."""
    picker_initials.warm(app, lambda: _picker_names(app[STATION]))


def _choice(st: Station, kind: str, code: str) -> Choice | None:
    cat = st.catalogue().catalogue
    if kind == "item":
        item = cat.items.get(code)
        if item is None or st.tier not in item.accepted_at:
            return None
        return Choice("item", item.code, item.name, (item,))
    theme = cat.themes.get(code)
    if theme is None or not all(st.tier in cat.items[c].accepted_at for c in theme.items):
        return None
    return Choice("theme", theme.code, theme.name, tuple(cat.items[c] for c in theme.items), theme.promised_days)


async def choose(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    try:
        items, themes = _choices(st)
    except Refused as exc:
        return await refuse(request, 409, str(exc))
    # What each choice is found by (name, code, abbreviations such as 低保, pinyin initials such as zdshbz):
    # the server filters on it for ?q=, and the page carries it so station.js filters the same way. The
    # initials come from a child process the first time a name is seen (node/ui/initials.py).
    initials = await request.app[INITIALS].of([i.name for i in items] + [t.name for t in themes])
    terms = {i.code: catalogue_view.item_terms(i, initials) for i in items}
    # A theme is found by its own terms and by what its items are called, but not by their codes: typing
    # an item's code means that item.
    theme_terms = {
        t.code: catalogue_view.search_terms(t.name, t.code, "", initials)
        + [w for i in t.items for w in terms[i.code] if w not in (i.code, i.category)]
        for t in themes
    }
    q = request.query.get("q", "").strip()[:40]
    if q:
        items = [i for i in items if catalogue_view.matches(terms[i.code], q)]
        themes = [t for t in themes if catalogue_view.matches(theme_terms[t.code], q)]
    categories: dict[str, list[Item]] = {}
    for item in items:
        categories.setdefault(item.category, []).append(item)
    search = {code: " ".join(words) for code, words in (terms | theme_terms).items()}
    return await page(
        request, "accept_choose.html", q=q, categories=categories, themes=themes, count=len(items), search=search
    )


def _dates(st: Station, choice: Choice) -> dict[str, dict[str, str]]:
    cal = st.catalogue().catalogue.calendar
    day = today(st)
    return {
        i.code: {"due": due_date(i, day, cal).isoformat(), "defer_due": deferred_due_date(i, day, cal).isoformat()}
        for i in choice.items
    }


async def _form(
    request: web.Request,
    choice: Choice,
    *,
    values: dict[str, str] | None = None,
    states: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    general: str = "",
    bad_materials: set[str] | None = None,
    status: int = 200,
) -> web.Response:
    st = station_of(request)
    return await page(
        request,
        "accept_form.html",
        status=status,
        choice=choice,
        dates=_dates(st, choice),
        values=values or {"name": "", "id_number": "", "phone": "", "address": "", "note": ""},
        states=states or {},
        errors=errors or {},
        general=general,
        bad=bad_materials or set(),
        today=today(st).isoformat(),
    )


async def _chosen(request: web.Request) -> Any:
    """The item or theme the URL names, or the refusal page to answer with instead."""
    try:
        choice = _choice(station_of(request), request.match_info["kind"], request.match_info["code"])
    except Refused as exc:
        return await refuse(request, 409, str(exc))
    if choice is None:
        return await refuse(request, 404, "本站不能受理该事项，或该事项不在现行目录中。")
    return choice


async def form_page(request: web.Request) -> web.StreamResponse:
    choice = await _chosen(request)
    if isinstance(choice, web.StreamResponse):
        return choice
    return await _form(request, choice)


def _validate(
    st: Station, choice: Choice, form: Any
) -> tuple[dict[str, str], dict[str, str], dict[str, str], set[str]]:
    """(values, material states, errors by field, materials to mark). Mirrors what accept() checks, so
    staff see every problem at once and next to its field rather than one refusal at a time."""
    values = {k: str(form.get(k, "")).strip() for k in ("name", "id_number", "phone", "address", "note")}
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "请填写申请人姓名"
    elif len(values["name"]) > 50:
        errors["name"] = "姓名过长（最多 50 字）"
    try:
        check_id_number(values["id_number"], today=today(st))
    except InvalidIdentity as exc:
        errors["id_number"] = exc.message if values["id_number"] else "请填写身份证号码"
    try:
        check_phone(values["phone"])
    except InvalidIdentity as exc:
        errors["phone"] = exc.message if values["phone"] else "请填写手机号码"
    if len(values["address"]) > 200:
        errors["address"] = "地址过长（最多 200 字）"
    elif not values["address"] and any(item.inspection_required for item in choice.items):
        errors["address"] = "该事项需现场踏勘，请填写地址（踏勘地点）"
    states: dict[str, str] = {}
    bad: set[str] = set()
    for i, item in enumerate(choice.items):
        submitted, deferred = [], []
        for j, m in enumerate(item.materials):
            key = f"m{i}_{j}"
            state = str(form.get(key, "none"))
            state = state if state in STATES else "none"
            if state == "deferred" and not m.deferrable:
                state = "none"
            states[key] = state
            (submitted if state == "submitted" else deferred if state == "deferred" else []).append(m.name)
        try:
            check_acceptance(item, tier=st.tier, submitted=submitted, deferred=deferred)
        except AcceptanceError as exc:
            errors[f"item{i}"] = exc.message
            bad |= {f"m{i}_{j}" for j, m in enumerate(item.materials) if m.name in exc.materials}
    return values, states, errors, bad


@form_post
async def submit(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    choice = await _chosen(request)
    if isinstance(choice, web.StreamResponse):
        return choice
    form = await read_form(request)
    values, states, errors, bad = _validate(st, choice, form)
    if errors:
        return await _form(
            request,
            choice,
            values=values,
            states=states,
            errors=errors,
            bad_materials=bad,
            status=400,
            general="请按提示修改后再提交，本次未受理。",
        )
    numbers: list[str] = []
    for i, item in enumerate(choice.items):
        submitted = [m.name for j, m in enumerate(item.materials) if states[f"m{i}_{j}"] == "submitted"]
        deferred = [m.name for j, m in enumerate(item.materials) if states[f"m{i}_{j}"] == "deferred"]
        try:
            out = commands.accept(
                st,
                commands.Application(
                    item=item.code,
                    name=values["name"],
                    id_number=values["id_number"],
                    phone=values["phone"],
                    address=values["address"],
                    submitted=submitted,
                    deferred=deferred,
                    note=values["note"],
                    theme=choice.code if choice.kind == "theme" else "",
                ),
                author=author_of(request),
            )
        except Refused as exc:
            done = f"（已受理：{'、'.join(numbers)}）" if numbers else "，本次未受理"
            return await _form(
                request,
                choice,
                values=values,
                states=states,
                status=400,
                general=f"「{item.name}」未能受理：{exc}{done}",
            )
        numbers.append(str(out["number"]))
    query = "&".join(f"n={n}" for n in numbers)
    return web.Response(status=303, headers={"Location": f"/receipt?{query}&new=1"})


async def receipt(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    numbers = request.query.getall("n", [])[:10]
    if not numbers:
        return await refuse(request, 400, "请指定办件编号。")
    try:
        view = receipt_view(st, numbers)
    except Refused as exc:
        return await refuse(request, 404, str(exc))
    return await page(request, "receipt.html", r=view, new=request.query.get("new") == "1")


def setup(app: web.Application) -> None:
    app.router.add_get("/accept", choose)
    app.router.add_get(r"/accept/{kind:item|theme}/{code}", form_page)
    app.router.add_post(r"/accept/{kind:item|theme}/{code}", submit)
    app.router.add_get("/receipt", receipt)
