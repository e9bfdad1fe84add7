"""补交材料 as a command, shared by the station (``node/supplement.py``) and the hub (``hub/supplement.py``).

Both sides hold the application record as merged cells; this module turns "the citizen brought these
deferred materials on this day" into the fields and bases of one change, refusing at the window what
staff can correct (a name that is not a deferred material of this file, a date that is not a date).
What only the admission question knows (who may write, a closed file, the date's bounds) is asked by
the write path itself (``sync/supplement.py`` through ``judge``), with the same reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from replica.errors import Refused
from replica.ids import CHINA
from sync.fold import Record
from sync.model import MATERIAL_PREFIX
from sync.supplement import DEFERRED, SUPPLEMENTED
from sync.verdict import status_word
from sync.workflow import TERMINAL

CLOSED = frozenset(s.value for s in TERMINAL)


@dataclass(frozen=True)
class Plan:
    fields: dict[str, object]
    base: dict[str, int]
    result: dict[str, object]


def today(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, tz=CHINA).date().isoformat()


def outstanding(values: dict[str, object]) -> list[dict[str, str]]:
    """The deferred materials still owed, with their due dates, soonest first."""
    owed = [
        {"name": k[len(MATERIAL_PREFIX) :], "due": str(v[1])}
        for k, v in values.items()
        if k.startswith(MATERIAL_PREFIX) and isinstance(v, list) and v and v[0] == DEFERRED
    ]
    return sorted(owed, key=lambda m: (m["due"], m["name"]))


def received(values: dict[str, object]) -> list[dict[str, str]]:
    """The deferred materials already brought, with the day each was received ("" after a 补正)."""
    got = [
        {"name": k[len(MATERIAL_PREFIX) :], "received": str(v[1])}
        for k, v in values.items()
        if k.startswith(MATERIAL_PREFIX) and isinstance(v, list) and v and v[0] == SUPPLEMENTED
    ]
    return sorted(got, key=lambda m: m["name"])


def plan(record: Record, number: str, materials: Sequence[str], day: str | None, now_ms: int) -> Plan:
    """The change that records ``materials`` as received on ``day`` (today when ``None``)."""
    values = {k: c[2] for k, c in record.items()}
    owed = {m["name"]: m["due"] for m in outstanding(values)}
    names = list(dict.fromkeys(m.strip() for m in materials if m.strip()))
    owed_text = "、".join(owed) or "无"
    if not names:
        raise Refused(f"{number}: 请用 --material 指明收到的容缺材料；待补材料：{owed_text}", code="bad_supplement")
    when = (day or "").strip() or today(now_ms)
    try:
        date.fromisoformat(when)
    except ValueError as exc:
        raise Refused(f"收到日期 {when!r} 格式不对，请写成 YYYY-MM-DD", code="bad_supplement_date") from exc
    if len(when) != 10:
        raise Refused(f"收到日期 {when!r} 格式不对，请写成 YYYY-MM-DD", code="bad_supplement_date")
    status = str(values.get("status", ""))
    if status in CLOSED:
        raise Refused(
            f"{number}: 办件已「{status_word(status)}」，不再登记补交材料；需要补交的请在办结前登记",
            code="application_closed",
        )
    accepted = str(values.get("accepted_at", ""))[:10]
    if accepted and when < accepted:
        raise Refused(f"收到日期 {when} 早于受理日期 {accepted}，请核对", code="bad_supplement_date")
    if when > today(now_ms):
        raise Refused(f"收到日期 {when} 还没有到，请核对（今天是 {today(now_ms)}）", code="bad_supplement_date")
    done = {m["name"]: m["received"] for m in received(values)}
    fields: dict[str, object] = {}
    base: dict[str, int] = {}
    late = []
    for name in names:
        if name in done:
            raise Refused(
                f"{number}: 材料「{name}」已于 {done[name] or '补正时'} 登记补交；待补材料：{owed_text}",
                code="already_supplemented",
            )
        if name not in owed:
            raise Refused(
                f"{number}: 材料「{name}」不是该办件的容缺材料；待补材料：{owed_text}（名称须与受理时一致）",
                code="not_deferred",
            )
        key = MATERIAL_PREFIX + name
        fields[key] = [SUPPLEMENTED, when]
        base[key] = record[key][0]
        if owed[name] and when > owed[name]:
            late.append(name)
    left = [m["name"] for m in outstanding(values) if m["name"] not in names]
    result: dict[str, object] = {
        "number": number,
        "materials": names,
        "outstanding": left,
        "received": when,
        "late": late,  # brought after the 容缺 due date: recorded all the same, and said so
    }
    return Plan(fields, base, result)


def material_view(value: list[object]) -> dict[str, object]:
    """One material for ``hub show`` and the dashboard: a deferred one's due date, a supplemented one's
    received date (the one date the register holds, see sync/supplement.py)."""
    state, day = str(value[0]), str(value[1])
    if state == SUPPLEMENTED:
        return {"state": state, "due": "", "received": day}
    return {"state": state, "due": day, "received": ""}


def text(d: dict[str, object]) -> str:
    """The CLI's line for a recorded supplement."""
    names = d["materials"]
    left = d["outstanding"]
    late = d["late"]
    assert isinstance(names, list) and isinstance(left, list) and isinstance(late, list)
    out = f"已登记补交 {d['number']}：{'、'.join(names)}（{d['received']} 收到）"
    if late:
        out += f"\n  逾期补交：{'、'.join(late)}（已过容缺补交期限，仍予登记）"
    out += f"\n  {'仍待补交：' + '、'.join(left) if left else '容缺材料已全部补齐'}"
    return out
