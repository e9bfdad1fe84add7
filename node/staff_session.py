"""A signed-in person at the station window, and the data key only they hold while signed in.

``node/staff_accounts.py`` hands out a :class:`StaffSession` on a good sign-in; nothing else ever holds
the unwrapped data key. The session gives the key out only while it is live: after ``idle_ms``
without use (15 minutes unless the station configures otherwise) it locks, wipes its copy and refuses
(``session_locked``) until the person signs in again. Unattended work (``sync``, ``status``,
``serve``'s background loop) runs with no session at all and so never holds the key.

The wipe is best effort: Python may have copied the bytes elsewhere (the AEAD calls take ``bytes``),
so locking bounds how long *this* process keeps a reference, which is what the idle rule is for; it
is not a guarantee against someone reading the process's memory.
"""

from __future__ import annotations

import json
from pathlib import Path

from replica.errors import Refused

DEFAULT_IDLE_MS = 15 * 60 * 1000
SETTINGS_FILE = "staff.json"
# An unattended window that never locks is the thing the rule prevents; a full working day is the most.
MAX_IDLE_MINUTES = 8 * 60

LOCKED = "登录已因长时间未操作而锁定，请重新输入密码 (the session locked after being idle; sign in again)"
ENDED = "已退出登录，请重新登录后再操作 (signed out; sign in again)"


def idle_ms_for(folder: Path) -> int:
    """The station's idle limit: ``DIR/staff.json`` ``{"idle_minutes": N}`` (1 to 480), else 15
    minutes. A file that says something else is refused rather than read as "never lock"."""
    path = folder / SETTINGS_FILE
    if not path.exists():
        return DEFAULT_IDLE_MS
    try:
        value = json.loads(path.read_text("utf-8")).get("idle_minutes", DEFAULT_IDLE_MS // 60_000)
    except (ValueError, AttributeError, OSError):
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_IDLE_MINUTES:
        raise Refused(
            f"{path} 中的 idle_minutes 应为 1 到 {MAX_IDLE_MINUTES} 之间的整数（空闲多少分钟后锁定）"
            " (idle_minutes must be a whole number of minutes from 1 to 480)",
            code="bad_settings",
        )
    return value * 60_000


class StaffSession:
    """Who is signed in, their role, and the station's data key while the session is live."""

    def __init__(
        self, *, station: str, user: str, name: str, role: str, data_key: bytes, now_ms: int, idle_ms: int
    ) -> None:
        if idle_ms <= 0:
            raise ValueError("a session's idle limit is a positive number of milliseconds")
        self.station = station
        self.user = user
        self.name = name
        self.role = role
        self.idle_ms = idle_ms
        self.started_ms = now_ms
        self._seen_ms = now_ms
        self._key: bytearray | None = bytearray(data_key)
        self._ended = False

    def __repr__(self) -> str:  # never the key, whatever prints a session
        return f"StaffSession(station={self.station!r}, user={self.user!r}, role={self.role!r})"

    def live(self, now_ms: int) -> bool:
        """Whether the session still holds the key at ``now_ms`` (it locks itself if idle too long)."""
        if self._key is not None and now_ms - self._seen_ms > self.idle_ms:
            self.lock()
        return self._key is not None

    def data_key(self, now_ms: int) -> bytes:
        """The station's data key, and a touch of the idle timer; ``Refused`` once locked or ended."""
        if not self.live(now_ms) or self._key is None:
            if self._ended:
                raise Refused(ENDED, code="session_locked")
            raise Refused(LOCKED, code="session_locked")
        self._seen_ms = max(self._seen_ms, now_ms)
        return bytes(self._key)

    def touch(self, now_ms: int) -> None:
        """Staff did something that needed no key (opened a list, say): still counts as not idle."""
        if self.live(now_ms):
            self._seen_ms = max(self._seen_ms, now_ms)

    def lock(self) -> None:
        """Drop the key now (idle, or the window's 锁定 button); signing in again brings it back."""
        if self._key is not None:
            for i in range(len(self._key)):
                self._key[i] = 0
        self._key = None

    def end(self) -> None:
        """Sign out."""
        self.lock()
        self._ended = True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
