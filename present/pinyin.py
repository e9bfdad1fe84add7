"""Pinyin initials of item names, for search (issue 19 item 10): staff type "zdshbz" for 最低生活保障申请
without switching to a Chinese input method.

pypinyin is a lookup table in Python, but it is not on the short list of modules ``sync/`` may import, so it
is called here and handed to ``sync.catalogue_view`` as a function. Characters without a reading (digits,
Latin letters, punctuation) are kept as they are, so a code inside a name does not shift the initials.
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin


@lru_cache(maxsize=4096)
def initials(text: str) -> str:
    """``最低生活保障申请`` → ``zdshbzsq``: the first letter of each character's (most common) reading."""
    return "".join(lazy_pinyin(text, style=Style.FIRST_LETTER, errors=lambda chars: list(chars))).lower()
