"""A field device's inspections: the tasks it was given and the reports it records offline.

Tasks arrive like any change (``node sync`` or ``node import``): the hub's feed sends a field device
the task and report records of its own tasks and nothing else. A report is written in one transaction
with the task's move to ``done``: entity ``report``, id = the task id, holding the result, findings,
checklist results, GPS (flagged, never refused, when implausible), and the SHA-256 of each photo and
of the signature scan. The photo files are checked (readable, not empty, under the cap) before
anything is written, copied into the device's blob store, and travel separately (``node/transfer.py``).

Checklist results default to the overall result (a pass means every line was satisfied); ``--check
N=no`` (or the line's text) overrides one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node import blobs
from node.station import Station
from present.webui import REPORT_RESULT_LABELS
from replica.errors import Refused
from replica.ids import iso_from_ms
from sync.fold import versions
from sync.identity import mask_phone
from sync.inspection import TASK_DONE, InspectionError, checklist_results, gps_flag, parse_gps
from sync.model import MAX_TEXT, REPORT_RESULTS
from sync.report_flag import flag_text, lines_answered_no

MAX_PHOTOS = 32
PURGED_TEXT = "（已清除）"


def _task(st: Station, task_id: str) -> dict[str, object]:
    vals = st.records.values("task", task_id)
    if not vals or vals.get("inspector") != st.code:
        raise Refused(f"本设备没有踏勘任务 {task_id}：{_where_tasks_are(st)}", code="no_such_task")
    return vals


def _own_tasks(st: Station) -> list[tuple[str, str]]:
    """(task id, 办件编号) of every task this device is the inspector of."""
    out = []
    for (task_id,) in st.conn.execute("SELECT id FROM records WHERE entity='task' ORDER BY id").fetchall():
        vals = st.records.values("task", str(task_id))
        if vals.get("inspector") == st.code:
            out.append((str(task_id), str(vals.get("number") or "")))
    return out


def _where_tasks_are(st: Station) -> str:
    held = _own_tasks(st)
    if not held:
        return "本设备还没有任何任务，请先同步（sanji node sync）或导入区局的文件"
    return f"本设备有 {len(held)} 个任务，可用办件编号或任务号的开头指定，sanji node tasks 列出全部"


def resolve_task(st: Station, ref: str) -> str:
    """The task id that ``ref`` names: a task id, a 办件编号, or a unique beginning of either.

    Inspectors on site read the application's number off the paper, not a 36-character task id."""
    ref = ref.strip()
    held = _own_tasks(st)
    for task_id, number in held:
        if ref in (task_id, number):
            return task_id
    matches = [task_id for task_id, number in held if ref and (task_id.startswith(ref) or number.startswith(ref))]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Refused(
            f"“{ref}”对应本设备的 {len(matches)} 个任务，请多输入几位（sanji node tasks 列出全部）",
            code="ambiguous_task",
        )
    raise Refused(f"本设备没有与“{ref}”对应的踏勘任务：{_where_tasks_are(st)}", code="no_such_task")


def tasks(st: Station, *, reveal: bool = False) -> list[dict[str, object]]:
    """This device's inspection tasks, oldest first (task ids are UUIDv7)."""
    blobs.store_of(st)
    purged = {str(r[0]) for r in st.conn.execute("SELECT id FROM purged WHERE entity='task'")}
    try:
        items = st.catalogue().catalogue.items
    except Refused:
        items = {}
    out = []
    for (task_id,) in st.conn.execute("SELECT id FROM records WHERE entity='task' ORDER BY id").fetchall():
        vals = st.shown_values("task", str(task_id))
        if vals.get("inspector") != st.code:
            continue  # a village also holds the tasks on its own applications; only ours are listed
        item = items.get(str(vals.get("item", "")))
        phone = str(vals.get("phone") or "")
        gone = task_id in purged
        out.append(
            {
                "task": task_id,
                "number": vals.get("number"),
                "item": vals.get("item"),
                "item_name": item.name if item is not None else "",
                "address": PURGED_TEXT if gone else vals.get("address"),
                "phone": PURGED_TEXT if gone else (phone if reveal else mask_phone(phone)),
                "due": vals.get("due"),
                "status": vals.get("status"),
                "checklist": list(vals.get("checklist") or []),  # type: ignore[call-overload]
                "purged": gone,
            }
        )
    return out


def _checks(specs: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for spec in specs:
        key, sep, answer = spec.rpartition("=")
        if not sep or answer.strip().lower() not in ("yes", "no", "y", "n", "是", "否"):
            raise Refused(
                f"核查项 {spec!r}（--check）格式不对：请写成 序号=是 或 序号=否（序号见 sanji node tasks 的核查清单）"
                " (must be N=yes|no)"
            )
        out[key.strip()] = answer.strip().lower() in ("yes", "y", "是")
    return out


def report(
    st: Station,
    task_id: str,
    *,
    result: str,
    findings: list[str],
    gps: str | None = None,
    photos: list[Path] | None = None,
    signature: Path | None = None,
    checks: list[str] | None = None,
    author: str = "",
) -> dict[str, object]:
    """Record an inspection report offline. Raises Refused and writes nothing when input is wrong.
    ``author`` is the signed-in inspector's user name, ``""`` on a device without accounts."""
    task_id = resolve_task(st, task_id)
    task = _task(st, task_id)
    if task.get("status") == TASK_DONE:
        raise Refused(f"踏勘任务 {task_id} 已经有报告了，下次同步时上传；不能再报一次 (already has a report)")
    if result not in REPORT_RESULTS:
        choices = "、".join(f"{r}（{REPORT_RESULT_LABELS[r]}）" for r in REPORT_RESULTS)
        raise Refused(f"踏勘结果 {result!r} 不对：--result 请用其中之一：{choices} (unknown result)")
    text = "\n".join(f.strip() for f in findings if f.strip())
    if not text:
        raise Refused("请用 --finding 写明现场情况 (give what was found on site)")
    if len(text) > MAX_TEXT or "\x00" in text:
        raise Refused(f"现场情况超过 {MAX_TEXT} 个字符或含有非法字符：请精简后重试 (findings too long or invalid)")
    photos = photos or []
    if len(photos) > MAX_PHOTOS:
        raise Refused(f"照片有 {len(photos)} 张，一份报告最多 {MAX_PHOTOS} 张：请挑选后重试 (too many photos)")
    fields: dict[str, object] = {
        "task": task_id,
        "application": str(task.get("application") or ""),
        "result": result,
        "findings": text,
        "recorded_at": iso_from_ms(st.clock()),
    }
    try:
        checklist = [str(x) for x in task.get("checklist") or []]  # type: ignore[attr-defined]
        fields["checklist"] = checklist_results(checklist, passed=result == "pass", overrides=_checks(checks or []))
        if flag := flag_text(lines_answered_no(result, fields["checklist"])):
            fields["check_flag"] = flag  # a pass that some checks contradict: said on the report
        if gps:
            pos = parse_gps(gps)
            fields["gps"] = pos.to_wire()
            if flag := gps_flag(pos):
                fields["gps_flag"] = flag
    except InspectionError as exc:
        raise Refused(str(exc)) from None
    # Check every file before keeping any, so a refusal leaves nothing behind.
    shots = [(p, *blobs.check_file(p, "照片")) for p in photos]
    sig = (signature, *blobs.check_file(signature, "签名扫描")) if signature is not None else None
    for path, sha, _ in [*shots, *([sig] if sig else [])]:
        blobs.keep(st, path, sha)
    fields["photos"] = list(dict.fromkeys(sha for _, sha, _ in shots))
    if sig is not None:
        fields["signature"] = sig[1]
    record = st.records.load("task", task_id)
    with st.transaction():
        st.write("report", task_id, fields, {}, author=author)
        st.write("task", task_id, {"status": TASK_DONE}, {"status": versions(record).get("status", 0)}, author=author)
        for _, sha, size in shots:
            blobs.reference(st, task_id, sha, size, "photo")
        if sig is not None:
            blobs.reference(st, task_id, sig[1], sig[2], "signature")
    return {
        "task": task_id,
        "status": TASK_DONE,
        "result": result,
        "photos": fields["photos"],
        "signature": fields.get("signature"),
        "gps_flag": fields.get("gps_flag", ""),
        "check_flag": fields.get("check_flag", ""),
    }


def tasks_text(d: dict[str, Any]) -> str:
    """``sanji node tasks`` without ``--json``."""
    return (
        "\n".join(
            f"{t['task']}  {t['number']}  {t['item']} {t['item_name']}  {t['address']}  电话 {t['phone']}"
            f"  期限 {t['due']}  {'已完成' if t['status'] == 'done' else '待踏勘'}"
            + "".join(f"\n    {i}. {line}" for i, line in enumerate(t["checklist"], 1))
            for t in d["tasks"]
        )
        or "（无踏勘任务）"
    )


def report_text(d: dict[str, Any]) -> str:
    """``sanji node report`` without ``--json``."""
    return (
        f"已记录踏勘结果「{REPORT_RESULT_LABELS.get(d['result'], d['result'])}」（任务 {d['task']}），"
        f"照片 {len(d['photos'])} 张，下次同步时上传"
        + (f"\n  定位存疑: {d['gps_flag']}" if d["gps_flag"] else "")
        + (f"\n  注意: {d['check_flag']}（报告已标注，区局审核时可见）" if d.get("check_flag") else "")
    )
