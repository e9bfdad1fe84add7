"""The flag on a 合格 (pass) report that some checklist lines contradict (sync/report_flag.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sync.report_flag import flag_text, lines_answered_no


@given(lines=st.dictionaries(st.text(min_size=1, max_size=8), st.booleans(), max_size=12))
def test_only_a_pass_is_flagged_and_by_the_count_of_no(lines: dict[str, bool]) -> None:
    no = sum(1 for ok in lines.values() if not ok)
    assert lines_answered_no("pass", lines) == no
    assert flag_text(lines_answered_no("pass", lines)) == (f"结论为通过，但有 {no} 项核查为否" if no else "")
    for result in ("fail", "rectify"):  # a negative result with lines answered 否 is consistent
        assert lines_answered_no(result, lines) == 0
