"""The staff user name: who signs in at a station and who a change names as its author (issue 16).

One rule for both: the station's accounts (``node/staff_schema.py``) accept only names that match it,
and a change's ``author`` (``sync/change.py``) is refused by the admission question at station and hub
alike (``sync/admission.py``) unless it is empty or matches it. Lower-case ASCII keeps a name the same
in every log, file name and terminal, and keeps look-alike letters from passing for a colleague.
"""

from __future__ import annotations

import re

MAX_USER = 32
USER_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,31}")

BAD_AUTHOR = (
    "变更所署的经办人 {!r} 不是有效的工作人员用户名（小写字母开头，只含小写字母、数字和 _ . -，最长32位）"
    " (a change's author must be empty or a staff user name)"
)


def is_user_name(value: object) -> bool:
    return isinstance(value, str) and USER_NAME.fullmatch(value) is not None


def author_problem(value: object) -> str | None:
    """Why ``value`` cannot be a change's author (``None`` when it can: empty, or a user name)."""
    if value == "" or is_user_name(value):
        return None
    shown = value[: MAX_USER + 8] if isinstance(value, str) else value
    return BAD_AUTHOR.format(shown)
