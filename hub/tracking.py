"""What the hub keeps of citizens' tracking codes: a keyed hash in ``tracking_codes``, nothing else.

A citizen's code reaches the hub in its application's creation change (field ``tracking``,
``sync/tracking.py``), in a sealed batch. The moment the batch is opened (push, USB import,
reconciliation repair), :class:`Concealer` takes the code out of the change, keeps its keyed hash aside
and leaves the field "": only that change is admitted, logged, quarantined, fed to the fold and fanned
out. The hash goes into ``tracking_codes`` when the change is admitted. So the hub's change log, its
backups, its quarantine and every feed hold neither a code nor its hash, and purging a stale row from
``tracking_codes`` (:func:`purge_stale`, run by the nightly job) forgets it for good.

The key (``HUB/keys/tracking``, 32 random bytes, made on first use) lives beside the hub's other keys,
not in the database, so a copy of the database alone cannot be searched for codes.

Settings (``HUB/track.json``, all optional): ``base_url`` (the public address of the tracking page, for
links behind a reverse proxy), ``retention_days`` (how long a closed application stays trackable,
default 180), ``per_minute`` and ``burst`` (lookups per address), ``floor_ms`` (the time every lookup
takes at least, default 50).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hub.store import HubStore
from sync.change import Change
from sync.hlc import wall_ms
from sync.tracking import FIELD, HELD_ELSEWHERE, conceal, is_code
from sync.workflow import TERMINAL

if TYPE_CHECKING:
    from hub.state import HubState

KEY_FILE = Path("keys") / "tracking"
SETTINGS_FILE = "track.json"
DAY_MS = 86_400_000
_TERMINAL = tuple(s.value for s in TERMINAL)


@dataclass(frozen=True)
class TrackSettings:
    base_url: str = ""  # "" means: from the request (and its X-Forwarded-Prefix)
    retention_days: int = 180
    per_minute: float = 10.0  # sustained lookups per address
    burst: int = 20  # lookups an address may make at once
    floor_ms: int = 50  # every lookup answers no sooner than this (hub/web/track.py)

    @classmethod
    def read(cls, folder: Path) -> TrackSettings:
        path = folder / SETTINGS_FILE
        if not path.exists():
            return cls()
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{path} 无法读取或不是 JSON：{exc} (the tracking settings could not be read)") from exc
        return cls(
            base_url=str(doc.get("base_url", "")).rstrip("/"),
            retention_days=int(doc.get("retention_days", 180)),
            per_minute=float(doc.get("per_minute", 10.0)),
            burst=int(doc.get("burst", 20)),
            floor_ms=int(doc.get("floor_ms", 50)),
        )


def tracking_key(folder: Path) -> bytes:
    """The hub's hashing key, made once. Several serving processes may race: the first writer wins and
    the others read what it wrote."""
    path = folder / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"tracking.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        try:
            os.link(tmp, path)  # never replaces a key another process already made
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes()
    if len(key) != 32:
        raise RuntimeError(f"{path} is damaged: restore it from the hub's key backup")
    return key


_KEYS: dict[Path, bytes] = {}


def key_of(hub: HubState) -> bytes:
    found = _KEYS.get(hub.folder)
    if found is None:
        found = _KEYS[hub.folder] = tracking_key(hub.folder)
    return found


class Concealer:
    """Takes codes out of wire changes as a batch is opened, and indexes the admitted ones' hashes."""

    def __init__(self, hub: HubState) -> None:
        self.hub = hub
        self.hashes: dict[tuple[object, object, object], str] = {}

    def wire(self, raws: list[object]) -> list[object]:
        return [self._one(raw) for raw in raws]

    def _one(self, raw: object) -> object:
        # 8 elements, 9 with the author (sync/change.py), 10 with a hub seal that did not open and is
        # held (hub/sealed_changes.py): the code is concealed every time.
        if not (isinstance(raw, list) and len(raw) in (8, 9, 10) and isinstance(raw[6], dict) and FIELD in raw[6]):
            return raw
        fields = dict(raw[6])
        code = fields[FIELD]
        if is_code(code):
            self.hashes[(raw[0], raw[1], raw[2])] = conceal(key_of(self.hub), str(code))
            fields[FIELD] = HELD_ELSEWHERE
        elif code != HELD_ELSEWHERE:
            fields[FIELD] = "?"  # not a code, whatever it is: never kept; admission refuses it
        return [*raw[:6], fields, *raw[7:]]

    def index(self, change: Change) -> None:
        """Call for an admitted change: the code it carried becomes findable."""
        digest = self.hashes.get((change.origin, change.epoch, change.seq))
        if change.entity == "application" and digest is not None:
            self.hub.store.add_tracking_code(digest, change.id, self.hub.clock())


def find(store: HubStore, key: bytes, compact: str) -> str | None:
    """The application a (normalised) code tracks, or ``None``."""
    return store.tracked_application(conceal(key, compact))


def closed_ms(status_cell: tuple[object, ...] | None) -> int | None:
    """When the application reached a terminal status (from the status cell's stamp), or ``None``."""
    if status_cell is None or status_cell[2] not in _TERMINAL or not isinstance(status_cell[0], int):
        return None
    return wall_ms(status_cell[0])


def expired(status_cell: tuple[object, ...] | None, now_ms: int, retention_days: int) -> bool:
    closed = closed_ms(status_cell)
    return closed is not None and now_ms - closed > retention_days * DAY_MS


def purge_stale(hub: HubState, *, now_ms: int | None = None, retention_days: int | None = None) -> int:
    """Forget the hashes of applications closed more than ``retention_days`` ago; how many went.
    The nightly job calls this; it is its own small step so the job can run it wherever it runs."""
    now = hub.clock() if now_ms is None else now_ms
    days = TrackSettings.read(hub.folder).retention_days if retention_days is None else retention_days
    stale = [
        str(app)
        for app in hub.store.tracked_applications()
        if expired(hub.records.load("application", app).get("status"), now, days)
    ]
    with hub.store.transaction():
        hub.store.forget_tracking(stale)
    return len(stale)
