"""`sanji hub show` for people: the application in words, as the dashboard shows it, instead of
~200 lines of raw JSON (issue 14 item 14). `--json` still prints the document itself."""

from __future__ import annotations

from collections.abc import Mapping

from present.webui import (
    FIELD_LABELS,
    MATERIAL_STATES,
    REPORT_RESULT_LABELS,
    TASK_STATUS_LABELS,
    describe,
    status_label,
)
from sync.catalogue_view import KIND_WORDS

# The order an operator reads a file in; other fields follow in the order they come.
_FIRST = ("number", "item", "station", "kind", "accepted_at", "due_date", "applicant_name", "applicant_id")


def _word(key: str, value: object) -> object:
    """A field's value as staff read it: yes/no and the application's kind in words (--json keeps codes)."""
    if isinstance(value, bool):
        return "是" if value else "否"
    return KIND_WORDS.get(str(value), value) if key == "kind" else value


def render(d: Mapping[str, object]) -> str:
    fields = d.get("fields") if isinstance(d.get("fields"), dict) else {}
    assert isinstance(fields, dict)
    lines = [
        f"办件 {d.get('number')}  状态：{status_label(d.get('status'))}"
        + (f"（{d['clock']}）" if d.get("clock") else "")
    ]
    keys = [k for k in _FIRST if k in fields] + [k for k in fields if k not in _FIRST and k != "status"]
    for key in keys:
        value = fields[key]
        if value in ("", None, [], {}):
            continue
        lines.append(f"  {FIELD_LABELS.get(key, key)}：{_word(key, value)}")
    materials = d.get("materials")
    if isinstance(materials, dict) and materials:
        lines.append("材料：")
        for name, m in materials.items():
            state = MATERIAL_STATES.get(str(m.get("state")), str(m.get("state"))) if isinstance(m, dict) else str(m)
            due = f"（{m['due']} 前补交）" if isinstance(m, dict) and m.get("due") else ""
            if isinstance(m, dict) and m.get("received"):  # 补交材料 (hub/supplement.py)
                due = f"（{m['received']} 收到）"
            lines.append(f"  {name}：{state}{due}")
    inspections = d.get("inspections")
    if isinstance(inspections, list) and inspections:
        lines.append("现场踏勘：")
        for t in inspections:
            status = TASK_STATUS_LABELS.get(str(t.get("status")), str(t.get("status")))
            line = f"  {t.get('inspector')} {status}，期限 {t.get('due') or '—'}"
            report = t.get("report")
            if isinstance(report, dict):
                result = REPORT_RESULT_LABELS.get(str(report.get("result")), str(report.get("result")))
                line += f"；结论 {result}：{report.get('findings', '')}"
                if report.get("check_flag"):  # a pass its checklist contradicts (sync/report_flag.py)
                    line += f"（{report['check_flag']}）"
            missing = t.get("missing_blobs") or []
            if missing:
                line += f"；区局尚缺照片 {len(missing)} 张（待设备联网续传）"
            lines.append(line)
    events = d.get("events")
    if isinstance(events, list) and events:
        lines.append("经办记录：")
        for e in events:
            words = "；".join(describe(str(e.get("entity")), e.get("fields"))) or str(e.get("entity"))
            who = f"  经办人 {e['author']}" if e.get("author") else ""  # the station's signed-in staff (issue 16)
            lines.append(f"  {str(e.get('at', ''))[:19].replace('T', ' ')}  {e.get('origin')}{who}  {words}")
    return "\n".join(lines)
