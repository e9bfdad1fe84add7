"""Admission: could this author have written this exact change with Sanji's own commands?

Theory of operation
-------------------
A batch's signature proves which station wrote a change. It does not prove that the change is one the
station's software would ever write: a station with its real keys and modified software can sign
anything. So every change that reaches the hub, by any path (push, USB import, reconciliation repair,
an operator's release), is asked one question here, and so is every change a station's own commands
are about to write (``node/station.py``): *from the record as the author says it saw it (the change's
``base``), could the author's tier have produced this change with Sanji's domain commands?*

The answer is a value, an :class:`Admission`: admitted, or refused with a stable ``code`` and a reason
in Chinese (English in brackets) that the dashboard and the quarantine listing show. A refused change
is quarantined by the caller, never dropped; the rest of its batch goes on.

What the question covers, entity by entity:

- a new application: the exact shape the accept command writes; the item in the catalogue release
  the change names, accepted at the author's tier with its required materials; the ID number and
  phone valid; kind and due dates as the release computes them; the number in the author's own
  namespace;
- a status: the move from the status the author saw (``base``) to the one it writes is in the
  workflow table, and the author's roles may make it. A write whose author had not seen the current
  status is a concurrent write and is admitted (the fold merges it, with a conflict record); a write
  whose author had seen the current status and contradicts it is refused;
- fixed fields never change; field ownership as ``sync/model.py`` tables it;
- tasks are written by the decider and bound to their inspector, who may only mark them done; a
  report's id is its task's, it answers only that task's application, only the task's inspector
  writes it, and once written it is final;
- events and ratings are written once, ratings only by the accepting station of a decided file.

The facts the question needs that are not in the change (the record now, its status history, the
catalogue release, who holds a number) come in through :class:`Facts`, whose lookups the caller
supplies, so this module stays pure and the hub and a station answer with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from sync.catalogue import AcceptanceError, Catalogue, Item, check_acceptance, deferred_due_date, due_date
from sync.change import Change
from sync.fold import Record
from sync.hlc import wall_ms
from sync.identity import InvalidIdentity, check_id_number, check_phone
from sync.inspection import TASK_ASSIGNED, TASK_DONE
from sync.model import (
    FIXED_FIELDS,
    MATERIAL_PREFIX,
    REPORT_RESULTS,
    Actor,
    RecordContext,
    authorize,
    roles_of,
)
from sync.numbering import parse_application_number
from sync.workflow import FINAL, MOVE_LABELS, STAGE, STATUS_LABELS, Status, TransitionError, may_move, move_to

# Fields the accept command writes on every new application, and the ones it writes when given.
CREATION_FIELDS = frozenset({
    "number", "station", "item", "catalogue_version", "kind", "applicant_name", "applicant_id",
    "applicant_phone", "address", "accepted_at", "due_date", "status",
})
CREATION_OPTIONAL = frozenset({"note", "theme"})
# Written by the accept command only: no station command changes them afterwards.
CREATION_ONLY = frozenset({"applicant_name", "applicant_id", "applicant_phone", "address", "theme"})
TASK_FIELDS = frozenset({"application", "inspector", "due", "status", "item", "address", "phone", "checklist",
                         "number"})
REPORT_REQUIRED = frozenset({"task", "application", "result", "findings", "recorded_at"})
# Fields fixed once written beyond the model's FIXED_FIELDS: a task's inspector and a report's task
# decide who may write the report, so moving either would hand one device's report to another.
BOUND_FIELDS = frozenset({"inspector", "task"})
# An acceptance may be entered up to ten minutes ahead of the author's own clock (node/commands.py).
ACCEPT_AHEAD_MS = 600_000
# 好差评 follows the outcome, whatever it is (a refusal is rated too), so a rating needs a decided or
# closed file; which outcome won a concurrent race does not matter.
RATEABLE = frozenset(s.value for s in FINAL)


@dataclass(frozen=True)
class Admission:
    change: Change | None  # None when the wire value could not even be read as a change
    reason: str  # "" when admitted
    code: str = ""  # a stable machine code for the refusal ("" when admitted)

    @property
    def admitted(self) -> bool:
        return self.change is not None and not self.reason


@dataclass(frozen=True)
class StatusVersion:
    """One status an application has held: written at ``hlc`` by ``origin``."""

    hlc: int
    origin: str
    value: str
    epoch: int = 1
    seq: int = 0
    rowid: int = 0  # where this replica's change log holds it (the hub's feeds point there)


def _none_catalogue(version: int) -> Catalogue | None:
    return None


def _no_holder(number: str) -> str | None:
    return None


def _no_versions() -> Sequence[StatusVersion]:
    return ()


def _no_latest() -> tuple[int, Catalogue] | None:
    return None


def _nothing_published() -> int:
    return 0


def _never() -> bool:
    return False


def _not_delivered(rowid: int) -> bool:
    return False


def _none_held(hlc: int) -> tuple[str, bool] | None:
    return None


def _no_authority(origin: str) -> int:
    return 0


@dataclass(frozen=True)
class Facts:
    """What the question needs beyond the change, as the replica asking knows it.

    The lookups are called only when the change needs them, so the common case (a change written on
    the latest version of its record) costs no extra reads."""

    context: RecordContext | None  # None when the change's application is unknown here
    current: Record = field(default_factory=dict)  # the record's merged cells now ({} when new)
    application: Mapping[str, object] = field(default_factory=dict)  # its application's values
    task: Mapping[str, object] = field(default_factory=dict)  # a report's task (same id), as held here
    status_versions: Callable[[], Sequence[StatusVersion]] = _no_versions  # the application's statuses
    catalogue: Callable[[int], Catalogue | None] = _none_catalogue  # a published release by version
    number_holder: Callable[[str], str | None] = _no_holder  # the application id holding a number
    # The newest release held, and the highest version ever published: after a restore from backup the
    # hub may no longer hold a release it published (and stations used), but it knows it published it.
    latest_catalogue: Callable[[], tuple[int, Catalogue] | None] = _no_latest
    published_up_to: Callable[[], int] = _nothing_published
    # Whether this replica holds the same origin's change with the same record and fields from an
    # earlier epoch (what a station re-issues after a fork).
    reissued: Callable[[], bool] = _never
    # Whether the logged change at this rowid had reached the author, through its feed, before it wrote
    # this change (the hub knows from the author's signed pulls; see hub/store.py horizons).
    delivered: Callable[[int], bool] = _not_delivered
    authority: Callable[[str], int] = _no_authority  # a tier's weight in the fold (sync/model.py AUTHORITY)
    # (status, released) of one of the author's own held changes to this record, written at an hlc
    held_status: Callable[[int], tuple[str, bool] | None] = _none_held


def refused(change: Change, code: str, reason: str) -> Admission:
    return Admission(change, reason, code)


def clock_check(change: Change, *, hub_wall_ms: int, max_ahead_ms: int) -> Admission | None:
    ahead = wall_ms(change.hlc) - hub_wall_ms
    if ahead > max_ahead_ms:
        return refused(change, "clock_ahead",
                       f"时钟超前：该变更的时间比区局晚 {ahead // 1000} 秒，上限 {max_ahead_ms // 1000} 秒 "
                       f"(clock ahead: change stamped {ahead // 1000} s after hub time, "
                       f"limit {max_ahead_ms // 1000} s)")
    return None


def judge(change: Change, actor: Actor, facts: Facts) -> Admission:
    """The admission question for one authentic change (the clock is checked separately)."""
    ctx = facts.context
    if ctx is None:
        return refused(change, "unknown_application",
                       f"该{_ENTITY_LABELS.get(change.entity, change.entity)}所属的办件本处没有记录 "
                       f"({change.entity} {change.id} refers to an application not held here)")
    bound = _bound_fields(change, facts.current)
    if bound is not None:
        return bound
    roles = roles_of(actor, ctx)
    reason = authorize(change.entity, change.fields, roles, ctx.fixed)
    if reason is not None:
        code = "fixed_field" if "fixed once written" in reason else "not_authorised"
        label = "字段写入后不可更改" if code == "fixed_field" else "超出站点权限"
        return refused(change, code, f"{label} (outside the station's rights: {reason})")
    if facts.reissued():
        # The same origin's own change, word for word, already admitted in an earlier epoch: a station
        # re-issuing after a fork. Its content was judged then; its new stamp is all that differs.
        return Admission(change, "")
    check = _CHECKS.get(change.entity)
    return check(change, actor, roles, facts) if check is not None else Admission(change, "")


def _bound_fields(change: Change, current: Record) -> Admission | None:
    for name in BOUND_FIELDS & change.fields.keys():
        cell = current.get(name)
        if cell is not None and cell[2] != change.fields[name] and name not in FIXED_FIELDS:
            return refused(change, "fixed_field",
                           f"「{name}」写入后不可更改 ({change.entity}.{name} is fixed once written "
                           f"({cell[2]!r}) and cannot become {change.fields[name]!r})")
    return None


# -- applications -----------------------------------------------------------------------------------


def _application(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    if not facts.current:
        return _creation(change, actor, roles, facts)
    if "hub" not in roles and "decider" not in roles and "due_date" in change.fields:
        return refused(change, "not_authorised",
                       "受理站点不能更改承诺期限，期限由受理时的目录计算，踏勘暂停由决定层级顺延 "
                       "(only the deciding tier moves a due date after acceptance)")
    if "hub" not in roles and CREATION_ONLY & change.fields.keys():
        return refused(change, "not_a_command",
                       f"申请人信息在受理后没有命令可以更改：{'、'.join(sorted(CREATION_ONLY & change.fields.keys()))} "
                       "(no station command changes the applicant's details after acceptance)")
    if "status" in change.fields:
        return _status(change, roles, facts)
    return Admission(change, "")


def _status(change: Change, roles: frozenset[str], facts: Facts) -> Admission:
    try:
        target = Status(str(change.fields["status"]))
    except ValueError:
        return refused(change, "illegal_move", f"未知的办件状态 {change.fields['status']!r} (unknown status)")
    base = change.base.get("status", 0)
    cell = facts.current.get("status")
    seen: str | None = None
    guessed = False
    if cell is not None and cell[0] == base:
        seen = str(cell[2])
    else:
        versions = facts.status_versions()
        seen_version = next((v for v in versions if v.hlc == base), None)
        seen = seen_version.value if seen_version is not None else None
        newer = _seen_newer(seen_version, versions, facts) if seen_version is not None else None
        if newer is not None:
            return refused(change, "seen_newer",
                           f"该站点写这一变更之前已收到「{_status_word(newer.value)}」（{newer.origin}），"
                           f"却声称依据更早的「{_status_word(seen)}」；这不是并发写入 (the author had received a newer "
                           "status before it wrote this change, so the change is not concurrent with it)")
        if seen is None:
            # One of the author's own changes held for review: what it builds on is not settled. It waits,
            # held, and is judged again when that change is released (hub/quarantine_review.py).
            held = facts.held_status(base)
            if held is not None and not held[1]:
                return refused(change, "builds_on_held",
                               f"该变更依据的是一条仍在隔离中的变更（「{_status_word(held[0])}」），"
                               "待那一条放行后自动复核 (it builds on a change still held for review; "
                               "it is judged again once that is released)")
            if held is not None:
                seen = held[0]
        if seen is None and cell is not None:
            # A version this replica does not hold (lost in a restore, or never sent): the author cannot
            # show it saw anything but what stands now, so the move is judged from the current status,
            # which is never more lenient than an honest base.
            seen, guessed = str(cell[2]), True
        if seen is None:
            return refused(change, "unknown_base",
                           "该变更所依据的状态版本本处没有记录，无法核实这一步流程 "
                           "(the status version this change was based on is not held here)")
    immediate = _immediate(facts)
    try:
        move = move_to(Status(seen), target, immediate=immediate)
    except (TransitionError, ValueError) as exc:
        if guessed:
            return refused(change, "unknown_base",
                           f"该变更所依据的状态版本本处没有记录（可能仍在隔离或尚未送达），按现状判断流程不允许：{exc} "
                           "(based on a status version not held here; release what it builds on first)")
        return refused(change, "illegal_move", f"流程不允许：{exc}")
    if not any(may_move(r, move, immediate=immediate) for r in roles & {"station", "decider", "hub"}):
        return refused(change, "move_not_permitted",
                       f"该站点无权「{MOVE_LABELS[move]}」，应由决定层级办理 "
                       f"(this station may not {move.value} this application)")
    return Admission(change, "")


def _immediate(facts: Facts) -> bool:
    kind = facts.current.get("kind")
    return kind is not None and kind[2] == "immediate"


def _seen_newer(seen: StatusVersion, versions: Sequence[StatusVersion], facts: Facts) -> StatusVersion | None:
    """A status the author had received before writing that would have replaced, in the author's own
    merge, the one it says it saw: then an honest author's base would have named that one instead."""
    def key(v: StatusVersion) -> tuple[int, int, int]:
        try:
            return (STAGE[Status(v.value)], facts.authority(v.origin), v.hlc)
        except ValueError:
            return (-1, 0, v.hlc)

    received = [v for v in versions if v.hlc > seen.hlc and key(v) > key(seen) and v.rowid and facts.delivered(v.rowid)]
    return max(received, key=key) if received else None  # the one the author's merge would show (named in the reason)


def _creation(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    f = change.fields
    if "hub" in roles:
        # The district hall vouches for what it writes (an operator releasing a held application), but
        # an application still starts as accepted and under a number nobody else holds.
        if f.get("status") != Status.ACCEPTED.value or not isinstance(f.get("number"), str):
            return refused(change, "illegal_move",
                           "新办件只能以「受理」状态建立 (a new application starts as accepted)")
        holder = facts.number_holder(str(f["number"]))
        if holder is not None and holder != change.id:
            return refused(change, "duplicate_number", f"办件编号 {f['number']} 已被另一件办件使用 "
                           "(the number is already held by another application)")
        return Admission(change, "")
    names = set(f)
    extra = sorted(n for n in names - CREATION_FIELDS - CREATION_OPTIONAL if not n.startswith(MATERIAL_PREFIX))
    missing = sorted(CREATION_FIELDS - names)
    if extra or missing or any(change.base.values()):
        what = f"多出字段 {extra}" if extra else (f"缺少字段 {missing}" if missing else "新办件不应有 base")
        return refused(change, "bad_creation",
                       f"新办件的内容与受理命令写出的不符：{what} (not the shape the accept command writes)")
    if f["station"] != actor.code:
        return refused(change, "foreign_station",
                       f"办件所属站点 {f['station']} 与发送站点 {actor.code} 不符 "
                       "(a station may only accept applications as itself)")
    if f["status"] != Status.ACCEPTED.value:
        return refused(change, "illegal_move",
                       f"新办件只能以「受理」状态建立，不能直接是「{_status_word(f['status'])}」 "
                       f"(a new application starts as accepted, not {f['status']})")
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
        return refused(change, "foreign_number",
                       f"办件编号 {number} 不在 {change.origin} 的编号范围内 "
                       f"(the number is outside the sending station's own namespace)")
    if parsed.day.isoformat() != accepted_at[:10]:
        return refused(change, "foreign_number", f"办件编号 {number} 的日期与受理时间 {accepted_at} 不符 "
                       "(the number's date differs from the acceptance date)")
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
        return refused(change, "unknown_catalogue",
                       f"目录版本 {version} 区局没有发布过 (catalogue release {version} was never published)")
    item = cat.items.get(str(f["item"]))
    if item is None:
        return refused(change, "unknown_item",
                       f"事项 {f['item']} 不在目录第 {version} 版中 (item not in catalogue release {version})")
    submitted = [n[len(MATERIAL_PREFIX):] for n, v in f.items() if n.startswith(MATERIAL_PREFIX)
                 and isinstance(v, list) and v[0] == "submitted"]
    deferred = [n[len(MATERIAL_PREFIX):] for n, v in f.items() if n.startswith(MATERIAL_PREFIX)
                and isinstance(v, list) and v[0] == "deferred"]
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
        return refused(change, "bad_creation",
                       "申请人姓名、地址或主题的长度不对 (name, address or theme out of bounds)")
    if f["kind"] != item.kind:
        return refused(change, "inconsistent", f"办件类型与目录第 {version} 版不符 (kind differs from the catalogue)")
    return _dates(change, item, day, cat) if exact else None


def _dates(change: Change, item: Item, day: date, cat: Catalogue) -> Admission | None:
    f, version, cal = change.fields, cat.version, cat.calendar
    deferred = [n[len(MATERIAL_PREFIX):] for n, v in f.items() if n.startswith(MATERIAL_PREFIX)
                and isinstance(v, list) and v[0] == "deferred"]
    submitted = [n[len(MATERIAL_PREFIX):] for n, v in f.items() if n.startswith(MATERIAL_PREFIX)
                 and isinstance(v, list) and v[0] == "submitted"]
    if f["due_date"] != due_date(item, day, cal).isoformat():
        return refused(change, "inconsistent",
                       f"办件类型或承诺期限与目录第 {version} 版不符 "
                       "(kind or due date differs from what the catalogue gives)")
    defer_due = deferred_due_date(item, day, cal).isoformat()
    if any(f[MATERIAL_PREFIX + m] != ["deferred", defer_due] for m in deferred) or any(
            f[MATERIAL_PREFIX + m] != ["submitted", ""] for m in submitted):
        return refused(change, "inconsistent", "容缺材料的补齐期限与目录不符 (a deferred material's due date differs)")
    return None


# -- tasks, reports, events and ratings ---------------------------------------------------------------


def _task(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    if "hub" in roles:
        return Admission(change, "")
    if not facts.current:
        f = change.fields
        if set(f) != TASK_FIELDS or f["status"] != TASK_ASSIGNED:
            return refused(change, "bad_task",
                           "踏勘任务的内容与安排踏勘命令写出的不符 (not the shape an assignment writes)")
        app = facts.application
        if f["number"] != app.get("number") or f["item"] != app.get("item"):
            return refused(change, "bad_task", "踏勘任务的编号或事项与办件不符 (task names another application)")
        if "decider" not in roles:
            return refused(change, "not_authorised", "只有决定层级可以安排踏勘 (only the deciding tier assigns)")
        return Admission(change, "")
    if "decider" not in roles and dict(change.fields) != {"status": TASK_DONE}:
        return refused(change, "not_authorised",
                       "踏勘设备只能把任务标为已完成 (an inspector may only mark its task done)")
    return Admission(change, "")


def _report(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    if "hub" in roles:
        return Admission(change, "")
    task = facts.task
    if not task:
        return refused(change, "unknown_task",
                       f"报告 {change.id} 没有对应的踏勘任务 (a report answers the task with its own id)")
    if task.get("inspector") != actor.code:
        return refused(change, "not_authorised",
                       f"该任务指派给 {task.get('inspector')}，{actor.code} 不能提交它的报告 "
                       "(only the assigned field device reports on a task)")
    if facts.current:
        return refused(change, "write_once", "踏勘报告已提交，不能改写 (a report is final once recorded)")
    f = change.fields
    if not f.keys() >= REPORT_REQUIRED or f["task"] != change.id or f["application"] != task.get("application"):
        return refused(change, "bad_report", "报告的任务或办件与所指派的任务不符 (the report does not answer its task)")
    if f["result"] not in REPORT_RESULTS:
        return refused(change, "bad_report", f"踏勘结果 {f['result']!r} 无效 (result must be pass, fail or rectify)")
    return Admission(change, "")


def _write_once(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    if "hub" in roles:
        return Admission(change, "")
    if facts.current:
        return refused(change, "write_once",
                       f"{_ENTITY_LABELS[change.entity]}写入后不可改写 ({change.entity} records are written once)")
    if change.entity == "rating" and facts.application.get("status") not in RATEABLE:
        return refused(change, "rating_too_early", "办件尚未作出结果，不能评价 (a rating follows the outcome)")
    return Admission(change, "")


_CHECKS: dict[str, Callable[[Change, Actor, frozenset[str], Facts], Admission]] = {
    "application": _application,
    "task": _task,
    "report": _report,
    "event": _write_once,
    "rating": _write_once,
}

_ENTITY_LABELS = {"application": "办件", "task": "踏勘任务", "report": "踏勘报告", "event": "事件", "rating": "好差评"}


def _status_word(value: object) -> str:
    try:
        return STATUS_LABELS[Status(str(value))]
    except ValueError:
        return str(value)
