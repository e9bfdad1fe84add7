"""Admission of a new application: exactly what ``sanji node accept`` writes (``sync/admission.py``
asks these rules of a change that creates an application record)."""

from __future__ import annotations

from datetime import date

from sync.acceptance import AcceptanceError, check_acceptance, deferred_due_date, due_date
from sync.catalogue import Catalogue, Item
from sync.change import Change
from sync.identity import InvalidIdentity, check_id_number, check_phone
from sync.model import MATERIAL_PREFIX, Actor
from sync.numbering import parse_application_number
from sync.tracking import creation_problem
from sync.verdict import Admission, Facts, refused, status_word
from sync.workflow import Status

# Fields the accept command writes on every new application, and the ones it writes when given.
CREATION_FIELDS = frozenset(
    {
        "number",
        "station",
        "item",
        "catalogue_version",
        "kind",
        "applicant_name",
        "applicant_id",
        "applicant_phone",
        "address",
        "accepted_at",
        "due_date",
        "status",
    }
)
CREATION_OPTIONAL = frozenset({"note", "theme", "tracking"})


def creation(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    f = change.fields
    if "hub" in roles:
        # The district hall vouches for what it writes (an operator releasing a held application), but
        # an application still starts as accepted and under a number nobody else holds.
        if f.get("status") != Status.ACCEPTED.value or not isinstance(f.get("number"), str):
            return refused(
                change, "illegal_move", "新办件只能以「受理」状态建立 (a new application starts as accepted)"
            )
        holder = facts.number_holder(str(f["number"]))
        if holder is not None and holder != change.id:
            return refused(
                change,
                "duplicate_number",
                f"办件编号 {f['number']} 已被另一件办件使用 (the number is already held by another application)",
            )
        return Admission(change, "")
    names = set(f)
    extra = sorted(n for n in names - CREATION_FIELDS - CREATION_OPTIONAL if not n.startswith(MATERIAL_PREFIX))
    missing = sorted(CREATION_FIELDS - names)
    if extra or missing or any(change.base.values()):
        what = f"多出字段 {extra}" if extra else (f"缺少字段 {missing}" if missing else "新办件不应有 base")
        return refused(
            change,
            "bad_creation",
            f"新办件的内容与受理命令写出的不符：{what} (not the shape the accept command writes)",
        )
    tracking = creation_problem(f)
    if tracking is not None:
        return refused(change, "bad_tracking", tracking)
    if f["station"] != actor.code:
        return refused(
            change,
            "foreign_station",
            f"办件所属站点 {f['station']} 与发送站点 {actor.code} 不符 "
            "(a station may only accept applications as itself)",
        )
    if f["status"] != Status.ACCEPTED.value:
        return refused(
            change,
            "illegal_move",
            f"新办件只能以「受理」状态建立，不能直接是「{status_word(f['status'])}」 "
            f"(a new application starts as accepted, not {f['status']})",
        )
    return _number(change, facts) or _content(change, actor, facts) or Admission(change, "")


def _number(change: Change, facts: Facts) -> Admission | None:
    number, accepted_at = str(change.fields["number"]), str(change.fields["accepted_at"])
    try:
        parsed = parse_application_number(number)
    except ValueError:
        return refused(change, "foreign_number", f"办件编号 {number} 格式不对 (not an application number)")
    # A station that re-issues an application after a fork does so in a later epoch, under the number
    # the citizen already holds; a number from a later epoch than the change's cannot be its own yet.
    if parsed.station != change.origin or parsed.epoch > change.epoch:
        return refused(
            change,
            "foreign_number",
            f"办件编号 {number} 不在 {change.origin} 的编号范围内 "
            f"(the number is outside the sending station's own namespace)",
        )
    if parsed.day.isoformat() != accepted_at[:10]:
        return refused(
            change,
            "foreign_number",
            f"办件编号 {number} 的日期与受理时间 {accepted_at} 不符 "
            "(the number's date differs from the acceptance date)",
        )
    # A number already held here can only be the station's own (the namespace check above): a station
    # whose database was copied back by hand hands numbers out again before it notices, and those are
    # real citizens' applications. They are applied and the morning report flags the pair; only the
    # hub itself is held to unique numbers (an operator releasing a held application, see _creation).
    return None


def _content(change: Change, actor: Actor, facts: Facts) -> Admission | None:
    f = change.fields
    version = f["catalogue_version"]
    cat = facts.catalogue(version) if isinstance(version, int) else None
    exact = cat is not None
    if cat is None and isinstance(version, int):
        # Published, then lost with a restore from backup: the item is judged against the newest
        # release still held; its calendar may differ, so the dates are not compared.
        latest = facts.latest_catalogue()
        if latest is not None and 0 < version <= facts.published_up_to():
            cat = latest[1]
    if cat is None:
        return refused(
            change,
            "unknown_catalogue",
            f"目录版本 {version} 区局没有发布过 (catalogue release {version} was never published)",
        )
    item = cat.items.get(str(f["item"]))
    if item is None:
        return refused(
            change,
            "unknown_item",
            f"事项 {f['item']} 不在目录第 {version} 版中 (item not in catalogue release {version})",
        )
    submitted = [
        n[len(MATERIAL_PREFIX) :]
        for n, v in f.items()
        if n.startswith(MATERIAL_PREFIX) and isinstance(v, list) and v[0] == "submitted"
    ]
    deferred = [
        n[len(MATERIAL_PREFIX) :]
        for n, v in f.items()
        if n.startswith(MATERIAL_PREFIX) and isinstance(v, list) and v[0] == "deferred"
    ]
    if len(submitted) + len(deferred) != sum(1 for n in f if n.startswith(MATERIAL_PREFIX)):
        return refused(change, "bad_creation", "新办件的材料只能是已提交或容缺 (materials start submitted or deferred)")
    try:
        check_acceptance(item, tier=actor.tier, submitted=submitted, deferred=deferred)
    except AcceptanceError as exc:
        return refused(change, exc.code, f"{exc} ({exc.code})")
    accepted_at = str(f["accepted_at"])
    try:
        day = date.fromisoformat(accepted_at[:10])
    except ValueError:
        return refused(change, "bad_creation", f"受理时间 {accepted_at!r} 格式不对 (acceptance time is not ISO 8601)")
    try:
        if check_id_number(str(f["applicant_id"]), today=day) != f["applicant_id"]:
            raise InvalidIdentity("invalid_id", "身份证号码不是规范写法")
        if check_phone(str(f["applicant_phone"])) != f["applicant_phone"]:
            raise InvalidIdentity("invalid_phone", "电话号码不是规范写法")
    except InvalidIdentity as exc:
        return refused(change, exc.code, f"{exc} ({exc.code})")
    name = str(f["applicant_name"])
    if not name.strip() or len(name) > 50 or len(str(f["address"])) > 200 or len(str(f.get("theme", ""))) > 20:
        return refused(
            change, "bad_creation", "申请人姓名、地址或主题的长度不对 (name, address or theme out of bounds)"
        )
    if item.inspection_required and not str(f["address"]).strip():
        return refused(
            change,
            "address_required",
            f"「{item.name}」需现场踏勘，受理时必须登记地址 (an item needing on-site inspection needs an address)",
        )
    if f["kind"] != item.kind:
        return refused(change, "inconsistent", f"办件类型与目录第 {version} 版不符 (kind differs from the catalogue)")
    return _dates(change, item, day, cat) if exact else None


def _dates(change: Change, item: Item, day: date, cat: Catalogue) -> Admission | None:
    f, version, cal = change.fields, cat.version, cat.calendar
    deferred = [
        n[len(MATERIAL_PREFIX) :]
        for n, v in f.items()
        if n.startswith(MATERIAL_PREFIX) and isinstance(v, list) and v[0] == "deferred"
    ]
    submitted = [
        n[len(MATERIAL_PREFIX) :]
        for n, v in f.items()
        if n.startswith(MATERIAL_PREFIX) and isinstance(v, list) and v[0] == "submitted"
    ]
    if f["due_date"] != due_date(item, day, cal).isoformat():
        return refused(
            change,
            "inconsistent",
            f"办件类型或承诺期限与目录第 {version} 版不符 (kind or due date differs from what the catalogue gives)",
        )
    defer_due = deferred_due_date(item, day, cal).isoformat()
    if any(f[MATERIAL_PREFIX + m] != ["deferred", defer_due] for m in deferred) or any(
        f[MATERIAL_PREFIX + m] != ["submitted", ""] for m in submitted
    ):
        return refused(change, "inconsistent", "容缺材料的补齐期限与目录不符 (a deferred material's due date differs)")
    return None
