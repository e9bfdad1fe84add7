"""Identifiers and wall time for the adapters (the pure core takes both as arguments)."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def uuid7(ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids made offline sort by when they were made."""
    ts = now_ms() if ms is None else ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ts & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def iso_from_ms(ms: int, tz: timezone = CHINA) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(tz).isoformat(timespec="seconds")


def parse_iso_ms(text: str) -> int:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CHINA)
    return int(dt.timestamp() * 1000)
