"""Checks and masks for the personal identifiers an application carries.

Stations are offline, so a mistyped ID or phone number cannot be caught by a later lookup: it has to
be caught at the window, while the citizen is still there. Hence the messages are short Chinese
sentences that tell staff what to look at, and each error also carries a stable English ``code``
for logs, the CLI's JSON and tests.

Masking lives here too so every screen, receipt, log line and report hides personal data the same
way; nothing should print a full ID number except the record itself.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from protocol.errors import SanjiError

# GB 11643-1999: the check character is (sum of digit * weight) mod 11, looked up in this map.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_MAP = "10X98765432"

_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS = re.compile(r"[0-9]+")
_EARLIEST_BIRTH = date(1900, 1, 1)

# Separators staff commonly type or paste into numbers; removing them cannot change the digits.
_SEPARATORS = re.compile(r"[\s\-]+")


# Also a ValueError: callers wrote `except ValueError` for it before it joined SanjiError.
class InvalidIdentity(SanjiError, ValueError):
    """An ID number or phone number that cannot be right. ``str(e)`` is for staff, ``code`` for machines."""

    default_code = "invalid_identity"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.message = message


def _clean(raw: str) -> str:
    # NFKC turns full-width digits and letters (typed with a Chinese input method) into ASCII.
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))


def id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the check character is computed from exactly 17 ASCII digits")
    total = sum(int(ch) * w for ch, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_MAP[total % 11]


def id_birth_date(id_number: str) -> date:
    """The birth date encoded in positions 7-14 of an (already checked) ID number."""
    digits = id_number[6:14]
    return date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))


def check_id_number(raw: str, *, today: date) -> str:
    """Return the 18-character ID number normalised (ASCII, upper-case X) or raise InvalidIdentity.

    ``today`` bounds the birth date; it is passed in because sync/ reads no clock.
    """
    value = _clean(raw).upper()
    if len(value) != 18:
        raise InvalidIdentity("id_length", f"身份证号码应为18位，当前为{len(value)}位，请核对")
    if not _ID_SHAPE.fullmatch(value):
        raise InvalidIdentity("id_characters", "身份证号码前17位应为数字，最后一位为数字或X")
    try:
        born = id_birth_date(value)
    except ValueError:
        raise InvalidIdentity("id_birth_date", "身份证号码中的出生日期不是有效日期，请核对第7至14位") from None
    if born > today:
        raise InvalidIdentity("id_birth_future", "身份证号码中的出生日期晚于今天，请核对第7至14位")
    if born < _EARLIEST_BIRTH:
        raise InvalidIdentity("id_birth_too_early", "身份证号码中的出生日期早于1900年，请核对第7至14位")
    # The checksum comes last: when the date is wrong too, the date message is the more useful one.
    if id_check_char(value[:17]) != value[17]:
        raise InvalidIdentity("id_checksum", "身份证号码校验位不符，请核对最后一位")
    return value


def check_phone(raw: str) -> str:
    """Return a mainland mobile number as 11 ASCII digits or raise InvalidIdentity.

    Spaces, hyphens, full-width digits and a leading +86/0086 country code are tolerated, because
    that is how numbers arrive when read off a business card or pasted from a message.
    """
    value = _clean(raw)
    for prefix in ("+86", "0086"):
        if value.startswith(prefix) and len(value) == 11 + len(prefix):
            value = value[len(prefix) :]
            break
    if len(value) != 11 or not value.isascii() or not _DIGITS.fullmatch(value) or value[0] != "1":
        raise InvalidIdentity("phone_format", "手机号码应为11位数字，以1开头")
    if value[1] not in "3456789":
        raise InvalidIdentity("phone_prefix", "手机号码第二位应为3至9，请核对")
    return value


def mask_id(id_number: str) -> str:
    """``360802********7159``: region code and last four stay, so staff can match a card at a glance."""
    return _mask_middle(id_number.strip(), keep_head=6, keep_tail=4)


def mask_phone(phone: str) -> str:
    """``138****1234``."""
    return _mask_middle(phone.strip(), keep_head=3, keep_tail=4)


def mask_name(name: str) -> str:
    """``向*``, ``田**``: the surname stays. A one-character name still gets a star, so a masked
    value always looks masked and never shows a whole name."""
    value = name.strip()
    if not value:
        return ""
    return value[0] + "*" * max(1, len(value) - 1)


def _mask_middle(value: str, *, keep_head: int, keep_tail: int) -> str:
    # Values too short to keep both ends and still hide something are hidden entirely: a masked
    # value that happens to be a whole (malformed) number would leak it.
    hidden = len(value) - keep_head - keep_tail
    if hidden < 1:
        return "*" * len(value)
    return value[:keep_head] + "*" * hidden + value[len(value) - keep_tail :]
