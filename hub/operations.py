"""What hub operators ask for: the sync picture, applications, conflicts, workflow steps.

Each function returns plain dicts in the shape CONTRACT.md fixes for ``--json``; the CLI and the
dashboard render them. Personal data is masked unless the caller asks to reveal it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import blobindex, inspection, keyring
from present.webui import ALERT_WORDS, RULES, TIER_NAMES, field_label, value_text
from protocol.codec import unpack
from replica import approval
from replica.errors import Refused
from replica.ids import iso_from_ms, uuid7
from replica.listing import parse_status
from replica.supplement import material_view
from sync.catalogue import Item
from sync.fold import Record, values, versions
from sync.identity import mask_id, mask_phone
from sync.inspection import PAUSED_LABEL
from sync.workflow import STATUS_LABELS, Status, TransitionError, move_to

if TYPE_CHECKING:
    from hub.service import Hub


def applications(
    hub: Hub, *, station: str | None = None, status: str | None = None, reveal: bool = False
) -> list[dict[str, object]]:
    return hub.store.list_applications(station=station, status=status, reveal=reveal)


def find_application(hub: Hub, number: str) -> str:
    app_id = hub.store.application_id(number)
    if app_id is None:
        raise Refused(
            f"区局没有编号为 {number} 的办件：请核对办件编号（sanji hub applications 可列出） (no such application)"
        )
    return app_id


def status(hub: Hub) -> dict[str, object]:
    counts = hub.store.application_counts()  # kept by the projection (m103): no count of every row
    stations = [
        {
            "code": s.code,
            "name": s.name,
            "tier": s.tier,
            "parent": s.parent,
            "last_seen": iso_from_ms(s.last_seen_ms) if s.last_seen_ms else None,
            "last_seen_via": s.last_via or None,  # 'network', 'usb' or 'relay:TOWNSHIP' (through its relay)
            "applications": int(counts.get(s.code, 0)),
            "revoked": s.revoked,
            "enrolled": s.sign_pub is not None,
            "backlog": s.backlog,
            "catalogue_version": s.catalogue_version,
            "last_error": s.last_error,
        }
        for s in hub.store.stations()
    ]
    rejected_total, last_rejections = hub.store.rejections(5)
    version, _ = hub.catalogue()
    return {
        "hub_id": hub.hub_id,
        "name": hub.name,
        "catalogue_version": version,
        "hub_keys": keyring.summary(hub),  # root fingerprint, key list version and expiry (hub/keyring.py)
        "stations": stations,
        "applications": hub.store.applications_held(),
        "conflicts": hub.store.open_conflicts(),
        "missing_blobs": blobindex.missing_count(hub),  # photos named by reports that the hub still lacks
        "quarantined": hub.store.open_quarantine(),
        "rejected_batches": rejected_total,
        "last_rejections": [
            {
                "at": iso_from_ms(int(str(r["at_ms"]))),
                "source": r["source"],
                "origin": r["origin"],
                "reason": r["reason"],
                "count": r["count"],
            }
            for r in last_rejections
        ],
        "alerts": [
            {
                "at": iso_from_ms(int(str(a["at_ms"]))),
                "kind": a["kind"],
                "station": a["station"],
                "detail": a["detail"],
                "count": a["count"],
            }
            for a in hub.store.alerts()
        ],
    }


def conflicts(hub: Hub, *, include_resolved: bool = False) -> list[dict[str, object]]:
    return [conflict_row(*r) for r in hub.store.conflict_listing(include_resolved=include_resolved)]


def conflict_row(
    cid: str,
    entity: str,
    record: str,
    field: str,
    winner: bytes,
    loser: bytes,
    rule: str,
    resolved: int,
    resolution: str,
    number: str | None,
) -> dict[str, object]:
    """One conflict as ``sanji hub conflicts --json`` prints it (and the dashboard's list shows it)."""
    w, lo = unpack(winner), unpack(loser)
    assert isinstance(w, list) and isinstance(lo, list)
    return {
        "id": cid,
        "entity": entity,
        "record": record,
        "number": number,
        "field": field,
        "values": [
            {"value": w[2], "origin": w[1], "hlc": w[0], "won": True},
            {"value": lo[2], "origin": lo[1], "hlc": lo[0], "won": False},
        ],
        "rule": rule,
        "resolved": bool(resolved),
        "resolution": resolution,
    }


def transition(
    hub: Hub,
    number: str,
    to: str,
    note: str = "",
    also: Callable[[], object] | None = None,
    *,
    override_reason: str = "",
    actor: str = "区局",
) -> dict[str, object]:
    """A hub-side workflow step. The hub may make every move the workflow table allows. ``also`` runs
    inside the same transaction (the dashboard's audit row: a move is never without its record).
    Approving an item that needs on-site inspection before its report is in takes ``override_reason``
    (``replica/approval.py``), written as an event with the decision."""
    app_id = find_application(hub, number)
    record = hub.records.load("application", app_id)
    current = str(record["status"][2]) if "status" in record else ""
    target = parse_status(to)
    kind = str(record["kind"][2]) if "kind" in record else "promised"
    try:
        move_to(Status(current), target, immediate=kind == "immediate")
    except TransitionError as exc:
        raise Refused(f"办件 {number}：{exc}", code=exc.code) from exc
    if target is Status.INSPECTING and not hub.store.has_task(app_id):
        raise Refused(
            f"{number}：请先用 sanji hub inspect 把踏勘派给踏勘设备，状态会自动转为踏勘中 (assign an inspection first)"
        )
    override = None
    if target is Status.APPROVED:
        override = approval.override_event(
            hub.records,
            # The release the application was accepted under, as admission reads it (sync/admission.py).
            approval_item(hub, record),
            app_id,
            number,
            current=current,
            override_reason=override_reason,
            actor=actor,
            how="请用 --override-reason 说明理由，或在区局看板的理由栏填写",
        )
    fields: dict[str, object] = {"status": target.value}
    base = {"status": versions(record).get("status", 0)}
    if note:
        fields["note"] = note
        base["note"] = versions(record).get("note", 0)
    if target is Status.INSPECTING:  # the time limit stands still while the site is inspected
        fields["paused"], base["paused"] = True, versions(record).get("paused", 0)
    elif current == Status.INSPECTING.value:  # leaving it: lift the pause, move the due date out
        more, more_base = inspection.resume_fields(hub, app_id, record)
        fields.update(more)
        base.update(more_base)
    if target in (Status.APPROVED, Status.DENIED):
        fields["decision"] = f"{STATUS_LABELS[target]}" + (f": {note}" if note else "")
        base["decision"] = versions(record).get("decision", 0)
    with hub.store.transaction():
        if override is not None:  # first: admission of the approval looks for it (sync/admission.py)
            hub.write("event", uuid7(), override, {})
        hub.write("application", app_id, fields, base)
        if also is not None:
            also()
    out: dict[str, object] = {"number": number, "status": target.value}
    if override is not None:
        out["override_reason"] = override_reason.strip()
    return out


def show(hub: Hub, number: str, *, reveal: bool = False) -> dict[str, object]:
    app_id = find_application(hub, number)
    vals = hub.records.values("application", app_id)
    materials = {k[2:]: material_view(v) for k, v in vals.items() if k.startswith("m.") and isinstance(v, list)}
    fields = {k: v for k, v in vals.items() if not k.startswith("m.")}
    if not reveal:
        fields["applicant_id"] = mask_id(str(fields.get("applicant_id", "")))
        fields["applicant_phone"] = mask_phone(str(fields.get("applicant_phone", "")))
    events = [
        {
            "at": iso_from_ms(h["hlc"] >> 16),
            "origin": h["origin"],
            "author": h["author"],  # 经办人: the station's signed-in staff member, "" for none (issue 16)
            "entity": h["entity"],  # type: ignore[operator]
            "fields": _masked(h["fields"], reveal),
        }
        for h in hub.records.history(app_id)
    ]
    inspections = []
    for entity, rec_id, rec in hub.records.records_of(app_id):
        if entity != "task":
            continue
        task = {k: c[2] for k, c in rec.items()}
        report = hub.records.values("report", rec_id)
        inspections.append(
            {
                "task": rec_id,
                "inspector": task.get("inspector"),
                "status": task.get("status"),
                "due": task.get("due"),
                "report": report or None,
                "photos": list(report.get("photos", [])) if report else [],  # type: ignore[call-overload]
                "missing_blobs": blobindex.missing(hub, blobindex.blobs_of(report)),
            }
        )
    out = {
        "id": app_id,
        "number": number,
        "status": vals.get("status"),
        "fields": fields,
        "materials": materials,
        "events": events,
        "inspections": inspections,
    }
    if vals.get("paused") and vals.get("status") == "inspecting":
        out["clock"] = PAUSED_LABEL
    return out


def _masked(fields: object, reveal: bool) -> object:
    if reveal or not isinstance(fields, dict):
        return fields
    out = dict(fields)
    if "applicant_id" in out:
        out["applicant_id"] = mask_id(str(out["applicant_id"]))
    if "applicant_phone" in out:
        out["applicant_phone"] = mask_phone(str(out["applicant_phone"]))
    if "phone" in out:  # an inspection task carries the applicant's phone too
        out["phone"] = mask_phone(str(out["phone"]))
    return out


def status_text(d: dict[str, Any]) -> str:
    """``sanji hub status`` without ``--json``."""
    keys = d.get("hub_keys") or {}
    lines = [
        f"{d['name']} ({d['hub_id']}) 事项目录 v{d['catalogue_version']}",
        f"根密钥指纹 {keys.get('fingerprint')}  密钥清单 v{keys.get('version')} 有效至 {keys.get('expires_at')}"
        + (f"\n提醒: {keys['warning']}" if keys.get("warning") else ""),
        f"签名公钥 {keys.get('sign_public_key')} ({keys.get('sign_key_id')})",
        f"加密公钥 {keys.get('seal_public_key')} ({keys.get('seal_key_id')})",
        f"根公钥 {keys.get('root_public_key')} ({keys.get('root_key_id')})",
        f"办件 {d['applications']}  冲突 {d['conflicts']}  隔离 {d['quarantined']}  拒收 {d['rejected_batches']}"
        f"  缺照片 {d.get('missing_blobs', 0)}",
    ]
    for s in d["stations"]:
        flag = " 已吊销" if s["revoked"] else ("" if s["enrolled"] else " 未接入")
        via = "（U盘）" if s["last_seen_via"] == "usb" else ""
        if str(s["last_seen_via"] or "").startswith("relay:"):
            via = f"（仅经乡镇中转 {s['last_seen_via'][len('relay:') :]}）"
        lines.append(
            f"  {s['code']:<16} {TIER_NAMES.get(s['tier'], s['tier']):<4} 最近 {s['last_seen'] or '从未'}{via}"
            f"  办件 {s['applications']}  待传 {s['backlog']}{flag}"
        )
    for r in d["last_rejections"]:
        lines.append(f"  拒收 {r['at']} {r['origin'] or '?'}: {r['reason']}")
    for a in d["alerts"]:
        lines.append(f"  警报 {a['at']} {ALERT_WORDS.get(a['kind'], a['kind'])} {a['station']}: {a['detail']}")
    return "\n".join(lines)


def conflicts_text(d: dict[str, Any]) -> str:
    """``sanji hub conflicts`` without ``--json``."""
    return (
        "\n".join(
            f"{c['id']} {c['number'] or c['record']} {field_label(c['field'])}: "
            + " 对 ".join(
                f"{value_text(c['field'], v['value'])}@{v['origin']}{'（采用）' if v['won'] else ''}"
                for v in c["values"]
            )
            + f"  规则: {RULES.get(c['rule'], c['rule'])}"
            for c in d["conflicts"]
        )
        or "（无冲突）"
    )


def approval_item(hub: Hub, record: Record) -> Item | None:
    """The application's item in the release it was accepted under (the newest when that one is not
    held), as admission reads it for 需现场踏勘 (sync/admission.py)."""
    cell = record.get("catalogue_version")
    held = hub.catalogue_at(cell[2]) if cell is not None and type(cell[2]) is int else None
    return (held or hub.catalogue()[1]).items.get(str(values(record).get("item", "")))
