"""The hub as a library: one object per hub folder, used by the CLI and the aiohttp app alike.

It owns the store, the hub's keys, its own HLC and seq (the hub is an origin too: its decisions are
changes like any station's), and the catalogue release it currently publishes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.release import sign_release
from hub.store import HubStore
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.keys import load_verify_key
from replica import folders
from replica.errors import NotApplied, Refused
from replica.ids import now_ms as wall_now_ms
from replica.keyfile import KeyPair, create_keys, load_keys
from replica.records import RecordStore
from sync.catalogue import Catalogue, CatalogueError, catalogue_to_doc, parse_catalogue
from sync.change import Change
from sync.hlc import tick
from sync.model import AUTHORITY, Actor

BUILTIN_CATALOGUE = Path(__file__).resolve().parent.parent / "sanji" / "data" / "catalogue-sample.json"
CATALOGUE_VALID_DAYS = 180
PUBLISHED_FILE = "catalogue-published"  # the highest release version ever published (see published_up_to)


def new_generation() -> str:
    """A fresh id for this copy of the hub's history; a restore from backup takes a new one so that
    stations know their feed cursors no longer apply."""
    return os.urandom(8).hex()


class RevokedError(RemoteProtocolError):
    default_status = 403
    default_code = "revoked"


class Hub:
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
        self.records = RecordStore(store.db, self.authority)

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        folder: Path,
        *,
        district: str,
        name: str,
        catalogue: Mapping[str, object] | None,
        clock: Callable[[], int] = wall_now_ms,
    ) -> Hub:
        doc = dict(catalogue) if catalogue is not None else json.loads(BUILTIN_CATALOGUE.read_text("utf-8"))
        try:
            parse_catalogue(doc)
        except CatalogueError as exc:
            raise Refused(f"catalogue refused: {exc}") from exc
        folders.need_new(folder, "区局")  # never a hub mixed into a station's folder, or a second one
        with folders.made_whole(folder):  # a failure half-way leaves nothing behind
            return cls._create(folder, district=district, name=name, doc=doc, clock=clock)

    @classmethod
    def _create(
        cls, folder: Path, *, district: str, name: str, doc: dict[str, object], clock: Callable[[], int]
    ) -> Hub:
        store = HubStore.create(folder)
        keys = create_keys(folder)
        with store.transaction():
            store.set_meta("hub_id", district)
            store.set_meta("name", name)
            store.set_meta("hlc", 0)
            store.set_meta("seq", 0)
            store.set_meta("generation", new_generation())
            store.set_meta("created_ms", clock())  # the nightly catch-up counts missed runs from here
        hub = cls(folder, store, keys, clock)
        from hub import keyring

        keyring.create(folder, keys, hub_id=district, now_ms=clock(), legacy=False)  # the root and key list 1
        hub.publish(doc)
        return hub

    @classmethod
    def open(cls, folder: Path, *, clock: Callable[[], int] = wall_now_ms) -> Hub:
        store = HubStore.open(folder)
        hub = cls(folder, store, load_keys(folder), clock)
        from hub import keyring

        keyring.ensure(hub)  # a hub folder from before root keys gets its root here, once
        return hub

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
            raise RevokedError(f"station {signer} has been revoked; re-enrol it to issue new keys")
        return load_verify_key(station.sign_pub)

    # -- catalogue -------------------------------------------------------------------------------

    def catalogue(self) -> tuple[int, Catalogue]:
        latest = self.store.latest_release()
        if latest is None:
            raise Refused("the hub has no catalogue release; publish one with `sanji hub publish`")
        if self._catalogue is None or self._catalogue[0] != latest[0]:
            doc = open_document(latest[1], kind="catalogue", recipient="*", verify_key=self._own_key)
            assert isinstance(doc.body, dict)
            self._catalogue = (latest[0], parse_catalogue(doc.body["catalogue"]))
        return self._catalogue

    def catalogue_at(self, version: int) -> Catalogue | None:
        """A published release by version (admission checks a new application against the release it
        names), or None if the hub never published it. Parsed releases are kept: they never change."""
        if version not in self._releases:
            frame = self.store.release(version) if 0 < version < 2**31 else None
            if frame is None:
                return None
            doc = open_document(frame, kind="catalogue", recipient="*", verify_key=self._own_key)
            assert isinstance(doc.body, dict)
            self._releases[version] = parse_catalogue(doc.body["catalogue"])
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

    def publish(self, doc: Mapping[str, object], *, valid_days: int = CATALOGUE_VALID_DAYS) -> int:
        """Sign and store the next catalogue release. Versions only go up."""
        from replica.ids import iso_from_ms

        # Past every version ever published, even those a restore from backup lost: a version number
        # names one release only, and stations may hold the lost one.
        version = self.published_up_to() + 1
        body = dict(doc)
        body["version"] = version
        now = self.clock()
        issued_at = iso_from_ms(now)
        expires_at = iso_from_ms(now + valid_days * 86_400_000)
        body["issued_at"], body["expires_at"] = issued_at, expires_at
        try:
            cat = parse_catalogue(body)
        except CatalogueError as exc:
            raise Refused(f"catalogue refused: {exc}") from exc
        # Refused (exit 2, with the figures) unless every station could receive and open it.
        frame = sign_release(
            self,
            {"version": version, "issued_at": issued_at, "expires_at": expires_at, "catalogue": catalogue_to_doc(cat)},
            version,
        )
        with self.store.transaction():
            self.store.add_release(version, frame, issued_at, expires_at, now)
        high = self.folder / PUBLISHED_FILE
        high.with_suffix(".tmp").write_text(str(version))
        high.with_suffix(".tmp").replace(high)
        return version

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

    def write(
        self, entity: str, rec_id: str, fields: Mapping[str, object], base: Mapping[str, int], *, check: bool = True
    ) -> Change:
        """One hub change, logged, merged and fanned out. Call inside a transaction.

        The hub's own commands ask the same admission question as a station's change (the hub may make
        every move, but only moves the workflow has), and a change that does not take effect raises
        :class:`NotApplied` so no command reports a success it did not have; raising rolls back the
        caller's transaction. ``check=False`` is for choosing between two values the hub already
        admitted (conflict override), which is not a new move; that caller checks the effect itself."""
        from hub.admission import Gate
        from hub.feed import Lookup, fan_out

        seq, hlc = self.next_stamp()
        epoch = int(str(self.store.get_meta("epoch", 1)))
        change = Change(self.hub_id, epoch, seq, hlc, entity, rec_id, dict(fields), dict(base))
        if check:
            verdict = Gate(self, Lookup(self)).ask(change, Actor(self.hub_id, "district"))
            if not verdict.admitted:
                raise Refused(verdict.reason, code=verdict.code)
        result = self.records.apply([change])
        fan_out(self, result.logged)
        if check:
            after = self.records.load(entity, rec_id)
            lost = sorted(n for n in fields if after.get(n, (0, ""))[:2] != (hlc, self.hub_id))
            if result.applied != 1 or lost:
                raise NotApplied(
                    f"区局的变更没有生效：{'、'.join(lost) or '变更已存在'}保持原值，请刷新后重试 "
                    f"(the hub's change did not take effect: {', '.join(lost) or 'already held'})"
                )
        return change
