"""On-site inspection (现场踏勘): the rules every replica reads the same way.

Theory of operation. The hub (or, later, a township) assigns a *task* to a field device; the device
records a *report* offline; the report travels back like any change, its photos as blobs. This module
holds the pure parts:

- the checklist a task carries. The catalogue has no checklist of its own, so one is derived from the
  item: a fixed head that every inspection needs (the applicant and the site match the application,
  photos were taken, someone present signed), then one line per required material, to be compared
  with what is on site. The same item always gives the same list, on every replica.
- how a GPS position is judged. A position outside China's bounding box, or one whose stated accuracy
  is worse than :data:`GPS_MAX_ACCURACY_M`, is kept (the inspector was somewhere) but flagged, so an
  operator looks at it before trusting it.
- how long the due-date clock was paused. While an application is being inspected its time limit
  does not run (现场踏勘时间不计入办理时限): when it moves on, its due date moves out by the working
  days the inspection took.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from protocol.errors import SanjiError
from sync.calendar import WorkCalendar
from sync.catalogue import Item

TASK_ASSIGNED = "assigned"
TASK_DONE = "done"
# The event a decider writes, with its reason, when it approves an item marked for on-site inspection
# before any report is in (replica/approval.py writes it; sync/admission.py asks for it or a report).
APPROVE_WITHOUT_INSPECTION = "approve_without_inspection"

# Shown instead of "days left" while an application is inspected.
PAUSED_LABEL = "时限暂停（现场踏勘中）"

# A task given without --due is due this many working days after it is assigned.
DEFAULT_TASK_DAYS = 5

CHECKLIST_HEAD = (
    "申请人身份及现场情况与申请一致",
    "现场照片已拍摄",
    "申请人或在场人员已签字确认",
)
MAX_CHECKLIST = 64  # the model's bound on a text list

# China's extent, generously: Zengmu Ansha in the south to Mohe in the north, Pamirs to Fuyuan.
CHINA_LAT = (3.8, 53.6)
CHINA_LON = (73.4, 135.1)
GPS_MAX_ACCURACY_M = 500.0
GPS_UNKNOWN_ACCURACY = -1.0


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class InspectionError(SanjiError, ValueError):
    """Input an inspector or operator must correct; ``str(e)`` says what."""

    default_code = "invalid_inspection"


def checklist_for(item: Item) -> list[str]:
    """The checklist a task for ``item`` carries: the fixed head, then one line per required material."""
    lines = list(CHECKLIST_HEAD)
    lines += [f"核对材料原件：{m.name}" for m in item.materials if m.required]
    return lines[:MAX_CHECKLIST]


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float
    accuracy_m: float  # GPS_UNKNOWN_ACCURACY when the device did not say

    def to_wire(self) -> list[object]:
        return [self.lat, self.lon, self.accuracy_m]


def parse_gps(text: str) -> Position:
    """``LAT,LON[,ACCURACY_M]`` in decimal degrees and metres. Raises InspectionError."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise InspectionError(
            f"定位 {text!r} 格式不对："
            "请写成 纬度,经度 或 纬度,经度,精度米，如 27.1167,114.9833 (must be LAT,LON[,ACCURACY_M])"
        )
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise InspectionError(
            f"定位 {text!r} 中有不是数字的部分："
            "请写成 纬度,经度 或 纬度,经度,精度米，如 27.1167,114.9833 (a part is not a number)"
        ) from None
    if not all(math.isfinite(n) for n in nums):
        raise InspectionError(
            f"定位 {text!r} 不是有效的位置："
            "请写成 纬度,经度 或 纬度,经度,精度米，如 27.1167,114.9833 (not a finite position)"
        )
    lat, lon = nums[0], nums[1]
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise InspectionError(
            f"定位 {text!r} 超出范围（纬度 ±90，经度 ±180）：请核对是否把纬度和经度写反了 (not a position on Earth)"
        )
    accuracy = nums[2] if len(nums) == 3 else GPS_UNKNOWN_ACCURACY
    if len(nums) == 3 and accuracy < 0:
        raise InspectionError(f"定位精度 {accuracy} 米不能为负数：请核对第三个数 (accuracy must not be negative)")
    return Position(lat, lon, accuracy)


def gps_flag(pos: Position) -> str:
    """Why a position is implausible, or ``""``. The position is kept either way."""
    reasons = []
    if not (CHINA_LAT[0] <= pos.lat <= CHINA_LAT[1] and CHINA_LON[0] <= pos.lon <= CHINA_LON[1]):
        reasons.append(f"位置不在中国境内 (outside China's bounding box: {pos.lat:.5f},{pos.lon:.5f})")
    if pos.accuracy_m > GPS_MAX_ACCURACY_M:
        reasons.append(f"定位精度差 (accuracy {pos.accuracy_m:.0f} m is worse than {GPS_MAX_ACCURACY_M:.0f} m)")
    return "; ".join(reasons)


def checklist_results(checklist: list[str], *, passed: bool, overrides: dict[str, bool]) -> dict[str, bool]:
    """Each checklist line's result: ``passed`` unless an override names the line or its 1-based number."""
    out = {line: passed for line in checklist}
    for key, value in overrides.items():
        if key.isdigit() and 1 <= int(key) <= len(checklist):
            out[checklist[int(key) - 1]] = value
        elif key in out:
            out[key] = value
        else:
            raise InspectionError(
                f"核查清单中没有 {key!r} 这一项：请用序号（1 至 {len(checklist)}）或该项的原文"
                " (checklist has no such line)"
            )
    return out


def paused_working_days(cal: WorkCalendar, paused_on: date, resumed_on: date) -> int:
    """Working days the clock stood still: those in (paused_on, resumed_on], never negative."""
    return max(0, cal.working_days_between(paused_on, resumed_on))


def extended_due_date(cal: WorkCalendar, due: date, paused_days: int) -> date:
    """The due date once an inspection of ``paused_days`` working days is taken out of the limit."""
    return cal.add_working_days(due, paused_days) if paused_days > 0 else due
