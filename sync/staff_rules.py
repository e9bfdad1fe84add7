"""What a staff account must look like, wherever it is made: at a station (its first administrator, a
local colleague) or at the hub (``sanji hub add-staff``, sent down the station's feed).

Both ends check the same rules, and the station checks them again on what arrives from the hub, so
they live here, below both (node/ and hub/ never import each other). Pure: names and strings only.
"""

from __future__ import annotations

from protocol.errors import SanjiError
from sync import staff_user
from sync.staff_password import MIN_LENGTH

ADMIN = "admin"
STAFF = "staff"
ROLES = (ADMIN, STAFF)
# Sign-in names name the author of changes too: the one rule is sync/staff_user.py's.
USER_NAME = staff_user.USER_NAME
# A display name is shown on receipts and in histories: one line, and short enough for a column.
MAX_NAME = 64


class StaffRuleError(SanjiError, ValueError):
    """A user name, display name or password that no account may have; ``code`` says which rule
    (``bad_user``, ``password_too_short``), ``str(e)`` says it to staff."""

    default_code = "bad_staff_account"


def check_user(user: str) -> None:
    if not USER_NAME.fullmatch(user):
        raise StaffRuleError(
            f"用户名 {user!r} 不可用：请用小写字母开头，只含小写字母、数字和 _ . -，最长32位"
            " (a user name is lower-case ASCII, up to 32 characters)",
            code="bad_user",
        )


def check_name(name: str) -> None:
    if not name.strip():
        raise StaffRuleError("请填写该工作人员的姓名 (the display name is empty)", code="bad_user")
    if len(name.strip()) > MAX_NAME or any(ch in name for ch in "\r\n\t"):
        raise StaffRuleError(
            f"姓名不可用：请写在一行之内，最长{MAX_NAME}个字 (a display name is one line of at most {MAX_NAME})",
            code="bad_user",
        )


def check_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise StaffRuleError(
            f"密码太短：至少需要{MIN_LENGTH}位 (a password has at least {MIN_LENGTH} characters)",
            code="password_too_short",
        )


def check_new(user: str, name: str, password: str) -> None:
    """Every rule a new account's user name, display name and password must meet, in that order."""
    check_user(user)
    check_name(name)
    check_password(password)


def well_formed(user: str, name: str, role: str) -> bool:
    """Whether an account as stated (by the hub's feed, say) breaks none of the rules above."""
    try:
        check_user(user)
        check_name(name)
    except StaffRuleError:
        return False
    return role in ROLES
