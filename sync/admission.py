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

from collections.abc import Callable, Sequence

from sync.application_rules import creation
from sync.change import Change
from sync.fold import Record
from sync.hlc import wall_ms
from sync.inspection import TASK_ASSIGNED, TASK_DONE
from sync.model import FIXED_FIELDS, REPORT_RESULTS, Actor, authorize, roles_of
from sync.staff_change import STAFF_ENTITY, judge_staff
from sync.staff_user import author_problem
from sync.supplement import material_writes
from sync.verdict import Admission, Facts, StatusVersion, refused, status_word
from sync.workflow import FINAL, MOVE_LABELS, STAGE, Status, TransitionError, may_move, move_to

# The values live in sync/verdict.py so the rule modules can share them; callers import them from here.
__all__ = ["Admission", "Facts", "StatusVersion", "clock_check", "judge", "refused"]

# Written by the accept command only: no station command changes them afterwards.
CREATION_ONLY = frozenset({"applicant_name", "applicant_id", "applicant_phone", "address", "theme", "tracking"})
TASK_FIELDS = frozenset(
    {"application", "inspector", "due", "status", "item", "address", "phone", "checklist", "number"}
)
REPORT_REQUIRED = frozenset({"task", "application", "result", "findings", "recorded_at"})
# Fields fixed once written beyond the model's FIXED_FIELDS: a task's inspector and a report's task
# decide who may write the report, so moving either would hand one device's report to another.
BOUND_FIELDS = frozenset({"inspector", "task"})
# 好差评 follows the outcome, whatever it is (a refusal is rated too), so a rating needs a decided or
# closed file; which outcome won a concurrent race does not matter.
RATEABLE = frozenset(s.value for s in FINAL)


def clock_check(change: Change, *, hub_wall_ms: int, max_ahead_ms: int) -> Admission | None:
    ahead = wall_ms(change.hlc) - hub_wall_ms
    if ahead > max_ahead_ms:
        return refused(
            change,
            "clock_ahead",
            f"时钟超前：该变更的时间比区局晚 {ahead // 1000} 秒，上限 {max_ahead_ms // 1000} 秒 "
            f"(clock ahead: change stamped {ahead // 1000} s after hub time, "
            f"limit {max_ahead_ms // 1000} s)",
        )
    return None


def judge(change: Change, actor: Actor, facts: Facts) -> Admission:
    """The admission question for one authentic change (the clock is checked separately)."""
    # The author is the station's word, signed with its key: trusted as far as the station is, so
    # only its form is checked here (the hub does not keep the stations' accounts).
    bad_author = author_problem(change.author)
    if bad_author is not None:
        return refused(change, "bad_author", bad_author)
    if change.entity == STAFF_ENTITY:  # a password changed at a station: no application behind it
        return judge_staff(change, actor, facts.staff_account)
    ctx = facts.context
    if ctx is None:
        return refused(
            change,
            "unknown_application",
            f"该{_ENTITY_LABELS.get(change.entity, change.entity)}所属的办件本处没有记录 "
            f"({change.entity} {change.id} refers to an application not held here)",
        )
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
            return refused(
                change,
                "fixed_field",
                f"「{name}」写入后不可更改 ({change.entity}.{name} is fixed once written "
                f"({cell[2]!r}) and cannot become {change.fields[name]!r})",
            )
    return None


# -- applications -----------------------------------------------------------------------------------


def _application(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    if not facts.current:
        return creation(change, actor, roles, facts)
    materials = material_writes(change, roles, facts)  # 补交材料 (sync/supplement.py)
    if materials is not None:
        return materials
    if "hub" not in roles and "decider" not in roles and "due_date" in change.fields:
        return refused(
            change,
            "not_authorised",
            "受理站点不能更改承诺期限，期限由受理时的目录计算，踏勘暂停由决定层级顺延 "
            "(only the deciding tier moves a due date after acceptance)",
        )
    if "hub" not in roles and CREATION_ONLY & change.fields.keys():
        return refused(
            change,
            "not_a_command",
            f"申请人信息在受理后没有命令可以更改：{'、'.join(sorted(CREATION_ONLY & change.fields.keys()))} "
            "(no station command changes the applicant's details after acceptance)",
        )
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
            return refused(
                change,
                "seen_newer",
                f"该站点写这一变更之前已收到「{status_word(newer.value)}」（{newer.origin}），"
                f"却声称依据更早的「{status_word(seen)}」；这不是并发写入 (the author had received a newer "
                "status before it wrote this change, so the change is not concurrent with it)",
            )
        if seen is None:
            # One of the author's own changes held for review: what it builds on is not settled. It waits,
            # held, and is judged again when that change is released (hub/quarantine_review.py).
            held = facts.held_status(base)
            if held is not None and not held[1]:
                return refused(
                    change,
                    "builds_on_held",
                    f"该变更依据的是一条仍在隔离中的变更（「{status_word(held[0])}」），"
                    "待那一条放行后自动复核 (it builds on a change still held for review; "
                    "it is judged again once that is released)",
                )
            if held is not None:
                seen = held[0]
        if seen is None and cell is not None:
            # A version this replica does not hold (lost in a restore, or never sent): the author cannot
            # show it saw anything but what stands now, so the move is judged from the current status,
            # which is never more lenient than an honest base.
            seen, guessed = str(cell[2]), True
        if seen is None:
            return refused(
                change,
                "unknown_base",
                "该变更所依据的状态版本本处没有记录，无法核实这一步流程 "
                "(the status version this change was based on is not held here)",
            )
    immediate = _immediate(facts)
    try:
        move = move_to(Status(seen), target, immediate=immediate)
    except (TransitionError, ValueError) as exc:
        if guessed:
            return refused(
                change,
                "unknown_base",
                f"该变更所依据的状态版本本处没有记录（可能仍在隔离或尚未送达），按现状判断流程不允许：{exc} "
                "(based on a status version not held here; release what it builds on first)",
            )
        return refused(change, "illegal_move", f"流程不允许：{exc}")
    if not any(may_move(r, move, immediate=immediate) for r in roles & {"station", "decider", "hub"}):
        return refused(
            change,
            "move_not_permitted",
            f"该站点无权「{MOVE_LABELS[move]}」，应由决定层级办理 (this station may not {move.value} this application)",
        )
    if target is Status.APPROVED and _inspection_item(facts) and not facts.inspected():
        return refused(
            change,
            "inspection_required",
            "该事项需现场踏勘，尚无踏勘报告，也没有说明理由的不经踏勘准予记录，不能准予许可 "
            "(an item marked for on-site inspection is approved only after a report, or on a recorded override)",
        )
    return Admission(change, "")


def _inspection_item(facts: Facts) -> bool:
    """Whether the application's item asks for on-site inspection, in the release it was accepted under
    (the newest held release when that one is not held here)."""
    app = facts.application
    version = app.get("catalogue_version")
    cat = facts.catalogue(version) if type(version) is int else None
    if cat is None:
        latest = facts.latest_catalogue()
        cat = latest[1] if latest is not None else None
    item = cat.items.get(str(app.get("item"))) if cat is not None else None
    return item is not None and item.inspection_required


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


# -- tasks, reports, events and ratings ---------------------------------------------------------------


def _task(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    if "hub" in roles:
        return Admission(change, "")
    if not facts.current:
        f = change.fields
        if set(f) != TASK_FIELDS or f["status"] != TASK_ASSIGNED:
            return refused(
                change, "bad_task", "踏勘任务的内容与安排踏勘命令写出的不符 (not the shape an assignment writes)"
            )
        app = facts.application
        if f["number"] != app.get("number") or f["item"] != app.get("item"):
            return refused(change, "bad_task", "踏勘任务的编号或事项与办件不符 (task names another application)")
        if "decider" not in roles:
            return refused(change, "not_authorised", "只有决定层级可以安排踏勘 (only the deciding tier assigns)")
        return Admission(change, "")
    if "decider" not in roles and dict(change.fields) != {"status": TASK_DONE}:
        return refused(
            change, "not_authorised", "踏勘设备只能把任务标为已完成 (an inspector may only mark its task done)"
        )
    return Admission(change, "")


def _report(change: Change, actor: Actor, roles: frozenset[str], facts: Facts) -> Admission:
    if "hub" in roles:
        return Admission(change, "")
    task = facts.task
    if not task:
        return refused(
            change, "unknown_task", f"报告 {change.id} 没有对应的踏勘任务 (a report answers the task with its own id)"
        )
    if task.get("inspector") != actor.code:
        return refused(
            change,
            "not_authorised",
            f"该任务指派给 {task.get('inspector')}，{actor.code} 不能提交它的报告 "
            "(only the assigned field device reports on a task)",
        )
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
        return refused(
            change,
            "write_once",
            f"{_ENTITY_LABELS[change.entity]}写入后不可改写 ({change.entity} records are written once)",
        )
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
