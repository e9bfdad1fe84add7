"""What the hub dashboard and the station UI share: the Jinja environment, labels, masks, due-date
badges, and the headers every page is sent with.

Both screens are server-rendered (no front-end build step, nothing fetched from the internet), so the
pieces that make them look and read alike live here rather than in ``hub/`` or ``node/``, which never
import each other. Nothing here holds state: each app builds its own environment.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from replica.ids import CHINA
from sync.calendar import WorkCalendar
from sync.catalogue import TIER_LABELS
from sync.identity import mask_id, mask_phone
from sync.workflow import FINAL, MOVE_LABELS, STATUS_LABELS, Move, Status

COMMON = Path(__file__).resolve().parent
# Working days before the due date from which an open application is flagged (yellow).
NEARLY_DUE_DAYS = 3

TIER_NAMES = {
    **TIER_LABELS,
    "district": "区级",
    "township": "镇",
    "street": "街道",
    "village": "村",
    "community": "社区",
    "field": "踏勘设备",
}
# The fold names its rules in English (sync/fold.py rule_name); staff read them in Chinese
# (the dashboard, `hub conflicts`, the demo).
RULES = {
    "last writer wins by (hlc, origin)": "后写优先：按修改时间（混合逻辑时钟）先后，时间相同再按来源编码",
    "status: workflow stage, then authority of the deciding tier, then (hlc, origin)": (
        "办件状态：先按办理流程的阶段，阶段相同按决定层级的权限（区 > 镇街 > 村社区），再按修改时间"
    ),
}
# The hub's alert kinds (hub/store.py alert) as operators read them, in `hub status` and on the dashboard.
ALERT_WORDS = {
    "fork": "分叉",
    "revoked": "吊销",
    "revoked_station_sent": "已吊销站点仍在上传",
    "hub_key": "区局密钥",
    # A township relay that misbehaved (hub/relay_alerts.py): reported by its village, or seen by the hub.
    "relay": "乡镇中转站异常",
    "relay_seen": "乡镇中转站异常（区局所见）",
}
MATERIAL_STATES = {"submitted": "已收取", "deferred": "容缺待补", "supplemented": "已补齐", "missing": "缺失"}

# Pages hold personal data and one-time tokens: never cache them, never frame them, run only our own
# scripts and styles (so an injected string can do nothing), send no referrer off the page.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
}


def ms_text(ms: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not isinstance(ms, int) or isinstance(ms, bool) or ms <= 0:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=CHINA).strftime(fmt)


def iso_text(value: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An ISO time from the records, shown in Beijing time without seconds or offset."""
    if not isinstance(value, str) or not value:
        return "—"
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return value
    if dt.tzinfo is not None:
        dt = dt.astimezone(CHINA)
    return dt.strftime(fmt)


def ago(ms: object, now_ms: int) -> str:
    """``3 分钟前``: how staff say it; the exact time goes in a title attribute next to it."""
    if not isinstance(ms, int) or isinstance(ms, bool) or ms <= 0:
        return "从未"
    s = max(0, (now_ms - ms) // 1000)
    if s < 60:
        return "刚刚"
    if s < 3600:
        return f"{s // 60} 分钟前"
    if s < 86400:
        return f"{s // 3600} 小时前"
    return f"{s // 86400} 天前"


def status_label(value: object) -> str:
    try:
        return STATUS_LABELS[Status(str(value))]
    except ValueError:
        return str(value or "—")


def move_label(value: object) -> str:
    try:
        return MOVE_LABELS[Move(str(value))]
    except ValueError:
        return str(value)


@dataclass(frozen=True)
class Due:
    """Where an application stands against its due date. ``state``: overdue | soon | ok | closed | none."""

    state: str
    days: int = 0

    @property
    def label(self) -> str:
        if self.state == "overdue":
            return f"已超期 {-self.days} 个工作日"
        if self.state == "soon":
            return "今日到期" if self.days == 0 else f"剩 {self.days} 个工作日"
        if self.state == "ok":
            return f"剩 {self.days} 个工作日"
        return ""


def due_state(due: object, status: object, today: date, calendar: WorkCalendar) -> Due:
    """Yellow within NEARLY_DUE_DAYS working days of the due date, red past it. Decided or closed
    applications carry no warning: the promise is about the decision."""
    try:
        if Status(str(status)) in FINAL:
            return Due("closed")
    except ValueError:
        pass
    if not isinstance(due, str) or not due:
        return Due("none")
    try:
        day = date.fromisoformat(due[:10])
    except ValueError:
        return Due("none")
    left = calendar.working_days_between(today, day)
    if day < today:
        return Due("overdue", min(left, -1))
    if left <= NEARLY_DUE_DAYS:
        return Due("soon", left)
    return Due("ok", left)


def soon_until(today: date, calendar: WorkCalendar) -> date:
    """The last day whose due date ``due_state`` calls nearly due today: the list filters ask SQL for
    ``due_date`` between today and this day instead of judging every row in Python."""
    day = today
    for step in range(1, 60):  # NEARLY_DUE_DAYS working days are never 60 calendar days, holidays and all
        nxt = today + timedelta(days=step)
        if calendar.working_days_between(today, nxt) > NEARLY_DUE_DAYS:
            break
        day = nxt
    return day


FIELD_LABELS = {
    "applicant_name": "申请人",
    "applicant_id": "身份证号",
    "applicant_phone": "电话",
    "address": "地址",
    "note": "备注",
    "decision": "决定",
    "due_date": "办结时限",
    "paused": "暂停计时",
    "theme": "主题（一件事）",
    "item": "事项",
    "station": "受理站点",
    "number": "办件编号",
    "accepted_at": "受理时间",
    "kind": "办件类型",
    "catalogue_version": "目录版本",
    "inspector": "踏勘设备",
    "due": "踏勘期限",
    "result": "踏勘结论",
    "findings": "踏勘情况",
    "photos": "照片",
    "gps": "定位",
    "signature": "签名",
    "recorded_at": "记录时间",
    "score": "评分",
    "comment": "评价",
}
FIELD_NAMES = {**FIELD_LABELS, "status": "办件状态"}


def field_label(field: str) -> str:
    """A record field as a conflict names it: a material by its name, else the field's word."""
    return f"材料「{field[2:]}」" if field.startswith("m.") else FIELD_NAMES.get(field, field)


def value_text(field: str, value: object) -> str:
    """A conflicting value as staff read it: a status by its word, anything else quoted."""
    return status_label(value) if field == "status" else repr(value)


TASK_STATUS_LABELS = {"assigned": "待踏勘", "done": "已提交报告"}
REPORT_RESULT_LABELS = {"pass": "合格", "fail": "不合格", "rectify": "需整改"}


def describe(entity: str, fields: object) -> list[str]:
    """One history entry in words: what this change wrote."""
    if not isinstance(fields, dict):
        return []
    lines: list[str] = []
    if entity == "application" and "number" in fields:
        lines.append("受理登记")
    if entity == "event" and fields.get("action") == "approve_without_inspection":  # replica/approval.py
        lines.append("未经现场踏勘准予许可（已说明理由）")
    if entity in ("task", "report", "rating"):
        lines.append({"task": "踏勘任务", "report": "踏勘报告", "rating": "好差评"}[entity])
    for key, value in fields.items():
        if key == "status" and entity == "task":
            lines.append(f"状态 → {TASK_STATUS_LABELS.get(str(value), str(value))}")
        elif key == "status":
            lines.append(f"状态 → {status_label(value)}")
        elif key == "result" and entity == "report":
            lines.append(f"{FIELD_LABELS['result']}：{REPORT_RESULT_LABELS.get(str(value), str(value))}")
        elif key.startswith("m.") and isinstance(value, list) and value:
            state = {"submitted": "已收取", "deferred": "容缺", "supplemented": "已补齐", "missing": "缺失"}.get(
                str(value[0]), str(value[0])
            )
            due = f"（{value[1]} 前补交）" if len(value) > 1 and value[1] else ""
            if value[0] == "supplemented":  # its one date is the day received (sync/supplement.py)
                state, due = "已补交", f"（{value[1]} 收到）" if len(value) > 1 and value[1] else ""
            lines.append(f"材料「{key[2:]}」：{state}{due}")
        elif key in ("note", "decision", "result", "findings", "comment", "inspector", "due") and value:
            lines.append(f"{FIELD_LABELS.get(key, key)}：{value}")
        elif key == "photos" and isinstance(value, list):
            lines.append(f"照片 {len(value)} 张")
    return lines


def make_env(templates: Path) -> jinja2.Environment:
    """A Jinja environment over one app's templates plus the shared macros. Autoescape is on for
    everything: every value on a page came from a station or a citizen."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(str(templates)), jinja2.FileSystemLoader(str(COMMON / "templates"))]
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=ms_text,
        iso=iso_text,
        status=status_label,
        move=move_label,
        mask_id=mask_id,
        mask_phone=mask_phone,
        tier=lambda t: TIER_NAMES.get(str(t), str(t)),
        material_state=lambda s: MATERIAL_STATES.get(str(s), str(s)),
        alert=lambda k: ALERT_WORDS.get(str(k), str(k)),
    )
    env.globals.update(ago=ago)
    return env


def render(env: jinja2.Environment, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    html = env.get_template(name).render(**context)
    resp = web.Response(text=html, content_type="text/html", charset="utf-8", status=status)
    resp.headers.update(SECURITY_HEADERS)
    return resp


def new_token() -> str:
    return secrets.token_urlsafe(32)


def svg(markup: str) -> Markup:
    """Mark server-built SVG as safe; callers escape every text they put in it."""
    return Markup(markup)


def add_common_static(app: web.Application) -> None:
    """The stylesheet both screens use, served by the app itself: pages work with no internet."""
    app.router.add_static("/static/common/", COMMON / "static", name="common_static")


async def read_form(request: web.Request) -> Any:
    """The request's form, or a plain 400 when the body cannot be read as one (a broken multipart
    boundary, bytes that are not UTF-8): bad input gets a reason, never a server error."""
    try:
        return await request.post()
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"表单无法读取，请刷新页面后重试 (the form could not be read: {exc})") from exc
