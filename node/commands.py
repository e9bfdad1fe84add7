"""Domain commands at the station window: accept, back-entry, workflow steps, listings.

Each command validates first (item, tier, materials, ID number, phone), then writes the record and its
change in one transaction. A refusal raises :class:`Refused` with a reason staff can act on, and
writes nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from node.station import Station
from replica import approval
from replica.errors import Refused
from replica.ids import CHINA, iso_from_ms, parse_iso_ms, uuid7
from replica.inspection import resume_fields
from replica.listing import list_applications, parse_status
from sync import catalogue_view, tracking
from sync.acceptance import AcceptanceError, check_acceptance, deferred_due_date, due_date
from sync.catalogue import Catalogue
from sync.fold import versions
from sync.identity import InvalidIdentity, check_id_number, check_phone
from sync.model import MATERIAL_PREFIX, MAX_TEXT
from sync.numbering import application_number
from sync.workflow import MOVE_LABELS, Move, Status, TransitionError, may_move, move_to

BACK_ENTRY_CHUNK = 500
# 需现场踏勘: the inspector goes to this address (sync/application_rules.py refuses it at the hub too).
ADDRESS_REQUIRED = "「{item}」需现场踏勘，请填写地址（踏勘地点），例如 --address 兴桥镇岗塘村3组"


@dataclass
class Application:
    item: str
    name: str
    id_number: str
    phone: str
    address: str = ""
    submitted: Sequence[str] = ()
    deferred: Sequence[str] = ()
    note: str = ""
    theme: str = ""
    accepted_at: str | None = None  # ISO time for back-entry; None means now
    extra: dict[str, object] = field(default_factory=dict)


def _text(value: str, what: str, *, required: bool = False, limit: int = 200) -> str:
    value = value.strip()
    if required and not value:
        raise Refused(f"{what}不能为空 ({what} is required)")
    if len(value) > limit or "\x00" in value:
        raise Refused(f"{what}过长或含有非法字符 ({what} is too long or has invalid characters)")
    return value


def _prepare(st: Station, app: Application) -> tuple[str, dict[str, object]]:
    """Validate one application; return (id, fields) ready to write. Raises Refused."""
    cat = st.catalogue()
    item = cat.catalogue.items.get(app.item.strip())
    if item is None:
        from present.pinyin import initials  # pypinyin's tables load only when an item code is wrong

        near = catalogue_view.suggest(cat.catalogue, app.item, st.tier, initials=initials)
        raise Refused(
            f"未知事项 {app.item!r}：不在事项目录 v{cat.version} 中本站可受理的事项里。"
            f"{catalogue_view.suggestion_text(near)}",
            code="unknown_item",
        )
    try:
        check_acceptance(item, tier=st.tier, submitted=app.submitted, deferred=app.deferred)
    except AcceptanceError as exc:
        raise Refused(str(exc), code=exc.code) from exc
    if app.accepted_at:
        try:
            at_ms = parse_iso_ms(app.accepted_at)
        except ValueError as exc:
            raise Refused(
                f"受理时间格式错误 {app.accepted_at!r}; use ISO 8601 such as 2026-03-02T08:41:52+08:00"
            ) from exc
        if at_ms > st.clock() + 600_000:
            raise Refused(f"受理时间 {app.accepted_at} 在未来 (acceptance time is in the future)")
    else:
        at_ms = st.clock()
    day = datetime.fromtimestamp(at_ms / 1000, tz=CHINA).date()
    try:
        id_number = check_id_number(app.id_number, today=day)
        phone = check_phone(app.phone)
    except InvalidIdentity as exc:
        raise Refused(str(exc), code=exc.code) from exc
    name = _text(app.name, "申请人姓名", required=True, limit=50)
    address = _text(app.address, "地址", limit=200)
    if item.inspection_required and not address:
        raise Refused(ADDRESS_REQUIRED.format(item=item.name), code="address_required")
    note = _text(app.note, "备注", limit=MAX_TEXT)
    cal = cat.catalogue.calendar
    fields: dict[str, object] = {
        "station": st.code,
        "item": item.code,
        "catalogue_version": cat.version,
        "kind": item.kind,
        "applicant_name": name,
        "applicant_id": id_number,
        "applicant_phone": phone,
        "address": address,
        "accepted_at": iso_from_ms(at_ms),
        "due_date": due_date(item, day, cal).isoformat(),
        "status": Status.ACCEPTED.value,
    }
    if note:
        fields["note"] = note
    if app.theme:
        fields["theme"] = _text(app.theme, "主题", limit=20)
    defer_due = deferred_due_date(item, day, cal).isoformat()
    for m in app.submitted:
        fields[MATERIAL_PREFIX + m] = ["submitted", ""]
    for m in app.deferred:
        fields[MATERIAL_PREFIX + m] = ["deferred", defer_due]
    return uuid7(at_ms if app.accepted_at else None), fields


def _write_accepted(
    st: Station, app_id: str, fields: dict[str, object], day: date, *, track: bool = False, author: str = ""
) -> dict[str, object]:
    counter = st.meta.int("counter") + 1
    st.meta.set("counter", counter)
    number = application_number(st.code, day, st.meta.int("epoch", 1), counter)
    fields = {"number": number, **fields}
    if track:
        # The citizen's key to the public tracking page, drawn here and now, offline (sync/tracking.py).
        fields[tracking.FIELD] = tracking.draw(secrets.token_bytes(tracking.RANDOM_BYTES))
    st.write("application", app_id, fields, {}, author=author)
    out: dict[str, object] = {"id": app_id, "number": number, "status": fields["status"]}
    out["due_date"] = fields["due_date"]
    if track:
        out["tracking_code"] = fields[tracking.FIELD]
    return out


def accept(st: Station, app: Application, *, author: str = "") -> dict[str, object]:
    """Accept one application. Returns only after the commit: then, and only then, it is accepted.
    ``author`` is the signed-in staff member's user name, ``""`` at a station without accounts."""
    app_id, fields = _prepare(st, app)
    day = date.fromisoformat(str(fields["accepted_at"])[:10])
    with st.transaction():
        return _write_accepted(st, app_id, fields, day, track=True, author=author)


def accept_lines(st: Station, lines: Iterable[str], *, author: str = "") -> dict[str, object]:
    """Back-entry: one JSON object a line. Refused lines are reported; the rest are kept."""
    accepted = 0
    refused: list[dict[str, object]] = []
    chunk: list[tuple[str, dict[str, object]]] = []

    def flush() -> None:
        nonlocal accepted
        if not chunk:
            return
        with st.transaction():
            for app_id, fields in chunk:
                day = date.fromisoformat(str(fields["accepted_at"])[:10])
                _write_accepted(st, app_id, fields, day, author=author)
        accepted += len(chunk)
        chunk.clear()

    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            chunk.append(_prepare(st, _from_json(line)))
        except Refused as exc:
            refused.append({"line": lineno, "reason": str(exc)})
        if len(chunk) >= BACK_ENTRY_CHUNK:
            flush()
    flush()
    return {"accepted": accepted, "refused": refused}


def _from_json(line: str) -> Application:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise Refused(f"这一行不是有效的 JSON（第 {exc.colno} 列）：请对照 README 的补录格式改正 ({exc.msg})") from exc
    if not isinstance(raw, dict):
        raise Refused("每行须是一个 JSON 对象 {…}：请对照 README 的补录格式改正 (each line must be a JSON object)")
    applicant = raw.get("applicant") or {}
    materials = raw.get("materials") or []
    if not isinstance(applicant, dict) or not isinstance(materials, list):
        raise Refused(
            "这一行的 applicant 须是对象、materials 须是列表：请对照 README 的补录格式改正"
            " (applicant must be an object and materials a list)"
        )
    submitted, deferred = [], []
    for m in materials:
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            raise Refused("每份材料都要有 name（材料名称）：请对照 README 的补录格式改正 (each material needs a name)")
        state = m.get("status", "submitted")
        if state == "submitted":
            submitted.append(m["name"])
        elif state == "deferred":
            deferred.append(m["name"])
        else:
            raise Refused(
                f"材料 {m['name']!r} 的状态 {state!r} 不对：请用 submitted（已收取）或 deferred（容缺）"
                " (unknown material status)"
            )
    return Application(
        item=str(raw.get("item", "")),
        name=str(applicant.get("name", "")),
        id_number=str(applicant.get("id_number", "")),
        phone=str(applicant.get("phone", "")),
        address=str(raw.get("address", "")),
        submitted=submitted,
        deferred=deferred,
        note=str(raw.get("note", "") or ""),
        theme=str(raw.get("theme", "") or ""),
        accepted_at=str(raw["accepted_at"]) if raw.get("accepted_at") else None,
    )


def accept_file(st: Station, path: Path, *, author: str = "") -> dict[str, object]:
    try:
        with path.open(encoding="utf-8") as fh:
            return accept_lines(st, fh, author=author)
    except OSError as exc:
        raise Refused(f"无法读取补录文件 {path}：请检查路径和权限 ({exc.strerror})") from exc


# -- workflow and listings ---------------------------------------------------------------------


def find(st: Station, number: str) -> str:
    row = st.conn.execute("SELECT id FROM applications WHERE number=?", (number,)).fetchone()
    if row is None:
        raise Refused(f"本站没有编号为 {number} 的办件 (no application with that number at this station)")
    return str(row[0])


def roles_here(st: Station, station_code: str, item_code: str) -> set[str]:
    roles = set()
    if station_code == st.code:
        roles.add("station")
    try:
        item = st.catalogue().catalogue.items.get(item_code)
    except Refused:
        item = None
    if st.tier in ("township", "street") and item is not None and item.decided_at in ("township", "street"):
        roles.add("decider")
    return roles


def transition(
    st: Station, number: str, to: str, note: str = "", *, override_reason: str = "", author: str = ""
) -> dict[str, object]:
    app_id = find(st, number)
    record = st.records.load("application", app_id)
    vals = {k: c[2] for k, c in record.items()}
    target = parse_status(to)
    immediate = vals.get("kind") == "immediate"
    try:
        move = move_to(Status(str(vals.get("status"))), target, immediate=immediate)
    except TransitionError as exc:
        raise Refused(f"办件 {number}：{exc}", code=exc.code) from exc
    roles = roles_here(st, str(vals.get("station")), str(vals.get("item")))
    if not any(may_move(r, move, immediate=immediate) for r in roles):
        raise Refused(
            f"办件 {number}：本站不能{MOVE_LABELS[move]}，这一步由决定层级办理"
            f" (this station may not {move.value} this application)"
        )
    if move is Move.INSPECT:
        raise Refused(
            f"办件 {number}：请安排踏勘（sanji node inspect DIR {number} --inspector 设备编码，"
            "或区局用 sanji hub inspect），"
            "状态会自动转为踏勘中 (assign an inspection instead)"
        )
    override = None
    if target is Status.APPROVED:  # 需现场踏勘: not before the report, unless overridden (replica/approval.py)
        override = approval.override_event(
            st.records,
            # The release the application was accepted under, as admission reads it (sync/admission.py).
            (_release_of(st, vals) or st.catalogue().catalogue).items.get(str(vals.get("item"))),
            app_id,
            number,
            current=str(vals.get("status")),
            override_reason=override_reason,
            actor=f"{st.meta.text('name') or st.code}（{st.code}）",
            how="请用 --override-reason 说明理由，或在办件页面的理由栏填写",
        )
    fields: dict[str, object] = {"status": target.value}
    base = {"status": versions(record).get("status", 0)}
    if note:
        fields["note"] = _text(note, "备注", limit=MAX_TEXT)
        base["note"] = versions(record).get("note", 0)
    if vals.get("status") == Status.INSPECTING.value and "decider" in roles:
        # Leaving an inspection: lift the pause and move the due date out by the days it took.
        more, more_base = resume_fields(
            st.conn, st.records, st.catalogue().catalogue.calendar, app_id=app_id, record=record, now_ms=st.clock()
        )
        fields.update(more)
        base.update(more_base)
    if move is Move.RESUBMIT:
        # Back from 补正: the deferred materials the citizen brought are now supplemented.
        for name, cell in record.items():
            if name.startswith(MATERIAL_PREFIX) and isinstance(cell[2], list) and cell[2][0] == "deferred":
                fields[name] = ["supplemented", ""]
                base[name] = cell[0]
    with st.transaction():
        if override is not None:  # first: admission of the approval looks for it (sync/admission.py)
            st.write("event", uuid7(), override, {}, author=author)
        st.write("application", app_id, fields, base, author=author)
    return {"number": number, "status": target.value}


def applications(st: Station, status: str | None = None, *, reveal: bool = False) -> list[dict[str, object]]:
    rows = list_applications(st.conn, status=status, reveal=reveal)
    return list(opened_rows(st, rows)) if reveal else rows


def opened_rows(st: Station, rows: Iterable[dict[str, object]]) -> Iterator[dict[str, object]]:
    """Listed applications revealed: a station that seals at rest lists masks, and revealing opens
    each row's personal values through the signed-in session (``Station.shown_values``)."""
    sealed = st.session is not None
    for row in rows:
        if sealed:
            opened = st.shown_values("application", str(row["id"]))
            row.update({k: opened.get(k) for k in ("applicant_name", "applicant_id", "applicant_phone", "address")})
        yield row


def _release_of(st: Station, vals: dict[str, object]) -> Catalogue | None:
    version = vals.get("catalogue_version")
    return st.catalogue_at(version) if type(version) is int else None
