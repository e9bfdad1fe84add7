"""What the hub knows, opened: its folder, store, keys, clock, who is who, and its catalogue releases.

:class:`HubState` is the part of the hub every lower module reads (admission, the feed, the keyring,
releases); :class:`hub.service.Hub` adds the operations that use those modules (creating and opening a
hub folder, publishing a release, writing the hub's own change). The split keeps the imports one way:
the service imports them, they import this.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.store import HubStore
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.keys import load_verify_key
from protocol.release import Release
from replica.errors import Refused
from replica.keyfile import KeyPair
from sync.catalogue import Catalogue, parse_catalogue
from sync.hlc import tick
from sync.model import AUTHORITY

PUBLISHED_FILE = "catalogue-published"  # the highest release version ever published (see published_up_to)


class RevokedError(RemoteProtocolError):
    default_status = 403
    default_code = "revoked"


class HubState:
    """One hub folder, opened. ``clock`` returns wall time in ms (tests pass a fake one)."""

    def __init__(self, folder: Path, store: HubStore, keys: KeyPair, clock: Callable[[], int]) -> None:
        self.folder = folder
        self.store = store
        self.keys = keys
        self.clock = clock
        self.hub_id = str(store.get_meta("hub_id"))
        self.name = str(store.get_meta("name"))
        self._tiers: dict[str, str] | None = None
        self._catalogue: tuple[int, Catalogue] | None = None
        self._releases: dict[int, Catalogue] = {}
        # Unsealed batches are refused unless a test harness says otherwise (`hub serve
        # --allow-unsealed-for-tests`): stations always seal, so an unsealed batch is a changed station.
        self.allow_unsealed = False
        self.records = store.record_store(self.authority)

    def close(self) -> None:
        self.store.close()

    # -- who is who ------------------------------------------------------------------------------

    def tiers(self) -> dict[str, str]:
        if self._tiers is None:
            self._tiers = self.store.tiers()
            self._tiers[self.hub_id] = "district"
        return self._tiers

    def forget_tiers(self) -> None:
        self._tiers = None

    def authority(self, origin: str) -> int:
        return AUTHORITY.get(self.tiers().get(origin, "field"), 0)

    def verify_key(self, signer: str, key_id: str) -> Ed25519PublicKey | None:
        """The trusted key of a station. Raises RevokedError for a revoked one."""
        station = self.store.station(signer)
        if station is None or station.sign_pub is None:
            return None
        if station.revoked:
            raise RevokedError(
                f"站点 {signer} 的密钥已被区局吊销：请联系区局重新登记本站 (station {signer} has been revoked)"
            )
        return load_verify_key(station.sign_pub)

    # -- catalogue -------------------------------------------------------------------------------

    def catalogue(self) -> tuple[int, Catalogue]:
        latest = self.store.latest_release()
        if latest is None:
            raise Refused("区局还没有发布事项目录：请先用 sanji hub publish 发布一版 (no catalogue release)")
        if self._catalogue is None or self._catalogue[0] != latest[0]:
            doc = open_document(latest[1], kind=Release.KIND, recipient="*", verify_key=self._own_key)
            self._catalogue = (latest[0], parse_catalogue(Release.from_wire(doc.body).catalogue))
        return self._catalogue

    def catalogue_at(self, version: int) -> Catalogue | None:
        """A published release by version (admission checks a new application against the release it
        names), or None if the hub never published it. Parsed releases are kept: they never change."""
        if version not in self._releases:
            frame = self.store.release(version) if 0 < version < 2**31 else None
            if frame is None:
                return None
            doc = open_document(frame, kind=Release.KIND, recipient="*", verify_key=self._own_key)
            self._releases[version] = parse_catalogue(Release.from_wire(doc.body).catalogue)
        return self._releases[version]

    def latest_catalogue(self) -> tuple[int, Catalogue] | None:
        try:
            return self.catalogue()
        except Refused:
            return None

    def published_up_to(self) -> int:
        """The highest release version this hub ever published. Kept in a file beside the database,
        because a restore from backup replaces the database and may lose releases stations still use."""
        try:
            recorded = int((self.folder / PUBLISHED_FILE).read_text().strip() or 0)
        except (OSError, ValueError):
            recorded = 0
        latest = self.store.latest_release()
        return max(recorded, latest[0] if latest else 0)

    def _own_key(self, signer: str, key_id: str) -> Ed25519PublicKey | None:
        return self.keys.sign.public_key() if signer == self.hub_id and key_id == self.keys.sign_key_id else None

    def decided_at(self, item_code: str) -> str:
        _, cat = self.catalogue()
        item = cat.items.get(item_code)
        return item.decided_at if item is not None else "district"

    # -- the hub's own changes ---------------------------------------------------------------------

    def next_stamp(self) -> tuple[int, int]:
        """(seq, hlc) for the hub's next change. Call inside a transaction."""
        seq = int(str(self.store.get_meta("seq", 0))) + 1
        hlc = tick(int(str(self.store.get_meta("hlc", 0))), self.clock())
        self.store.set_meta("seq", seq)
        self.store.set_meta("hlc", hlc)
        return seq, hlc

    def observe_hlc(self, stamp: int) -> None:
        """Keep the hub's clock ahead of every admitted change, so its decisions come after what it saw."""
        current = int(str(self.store.get_meta("hlc", 0)))
        if stamp > current:
            self.store.set_meta("hlc", stamp)
