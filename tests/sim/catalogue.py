"""Catalogue releases for the simulated district: a few real items from the sample, signed per version.

Releases are what a station must never roll back, so each version differs visibly (a promised time
limit moves) while the deciding tier of every item stays put: the hub and the stations must agree on
who decides what, or field ownership would quarantine honest changes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from replica.ids import iso_from_ms

SAMPLE = Path(__file__).resolve().parents[2] / "sanji" / "data" / "catalogue-sample.json"
# Immediate and promised items, decided by the township or by the district, some with deferrable
# materials: enough to exercise every role the workflow knows.
ITEM_CODES = ("360802-0001", "360802-0004", "360802-0006", "360802-0007", "360802-0009")
VALID_DAYS = 180


@cache
def _sample() -> dict[str, object]:
    doc = json.loads(SAMPLE.read_text("utf-8"))
    assert isinstance(doc, dict)
    return doc


def catalogue_doc(version: int) -> dict[str, object]:
    """The catalogue document of release ``version`` (a fresh dict each time)."""
    sample = _sample()
    raw_items = sample["items"]
    assert isinstance(raw_items, list)
    items = [dict(item) for item in raw_items if item["code"] in ITEM_CODES]
    for item in items:
        if item["kind"] == "promised":
            # Each release moves the promise a little, so a rollback would be visible in due dates.
            item["promised_days"] = min(int(item["legal_days"]), 5 + version % 4)
    return {
        "district": sample["district"],
        "version": version,
        "calendar": sample["calendar"],
        "items": items,
        "themes": [],
    }


def release_body(version: int, issued_ms: int) -> dict[str, object]:
    doc = catalogue_doc(version)
    issued, expires = iso_from_ms(issued_ms), iso_from_ms(issued_ms + VALID_DAYS * 86_400_000)
    doc["issued_at"], doc["expires_at"] = issued, expires
    return {"version": version, "issued_at": issued, "expires_at": expires, "catalogue": doc}
