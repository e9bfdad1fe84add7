"""A 合格 (pass) report with checklist lines answered 否: the inspector is asked once more, and the
report carries a flag the hub and the dashboard show, so a reviewer does not approve on the word
"pass" alone. Pure: the device's command, its report form and the displays all count the same way."""

from __future__ import annotations

from collections.abc import Mapping

PASS = "pass"


def lines_answered_no(result: str, checklist: Mapping[str, bool]) -> int:
    """How many checklist lines a pass report answers 否 (0 for any other result)."""
    return sum(1 for ok in checklist.values() if ok is False) if result == PASS else 0


def flag_text(count: int) -> str:
    """The flag a report carries ("" when nothing contradicts its result)."""
    return f"结论为通过，但有 {count} 项核查为否" if count else ""
