"""Page links for the lists both sides show (the station's applications, the hub's applications,
conflicts and quarantine): 最新 (the first page), 上一页 and 下一页, each a keyset (``after`` / ``before``
the key of a row shown, ``replica/listing.py``) with the list's filters kept.

The next link carries ``rel="next"``, so a reader of the page (``bench year``, a script) can follow it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlencode

from replica.listing import Key, key_text


class Paged(Protocol):
    @property
    def newer(self) -> Key | None: ...

    @property
    def older(self) -> Key | None: ...


def page_links(path: str, filters: Mapping[str, str], found: Paged) -> dict[str, str]:
    """``first``, ``newer`` and ``older`` hrefs (empty when there is no such page)."""
    kept = [(k, v) for k, v in filters.items() if v]

    def href(extra: list[tuple[str, str]]) -> str:
        query = urlencode(kept + extra)
        return path + ("?" + query if query else "")

    return {
        "first": href([]) if found.newer is not None else "",
        "newer": href([("before", key_text(found.newer))]) if found.newer is not None else "",
        "older": href([("after", key_text(found.older))]) if found.older is not None else "",
    }
