"""One station folder, opened: its database, keys, counters, catalogue and the write path.

Every domain command goes through :meth:`Station.write`, which, inside the caller's transaction,
stamps the next seq and HLC, merges the change into the local records and appends it to the log.
The command's transaction commits both or neither; nothing counts until the commit returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import at_rest
from node.admission import check_write
from node.at_rest_arrivals import incoming
from node.sealed_fields import Sealer
from node.staff_session import StaffSession
from node.station_records import StationRecords
from node.store import UNSETTLED_SQL, Meta, create_store, open_store
from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.keys import key_id, load_verify_key
from protocol.release import Release
from replica.db import transaction
from replica.errors import Refused
from replica.ids import now_ms as wall_now_ms
from replica.keyfile import KeyPair, create_keys, load_keys
from replica.records import RecordStore
from sync.catalogue import Catalogue, parse_catalogue
from sync.change import Change
from sync.hlc import DEFAULT_MAX_DRIFT_MS, observe, tick
from sync.model import AUTHORITY


@dataclass(frozen=True)
class CatalogueState:
    version: int
    catalogue: Catalogue
    expires_at: str


class Station:
    def __init__(self, folder: Path, *, clock: Callable[[], int] = wall_now_ms, create: bool = False) -> None:
        self.folder = folder
        self.clock = clock
        self.db = create_store(folder) if create else open_store(folder)
        self.conn = self.db.conn
        self.meta = Meta(self.conn)
        self.keys: KeyPair = create_keys(folder) if create else load_keys(folder)
        # Changes arriving from the hub have their personal values sealed (or held pending) as they
        # are logged (node/at_rest_arrivals.py); unchanged at a station without a data key.
        self.records: RecordStore = StationRecords(self.db, self.authority, lambda c: incoming(self, c))
        self._catalogue: CatalogueState | None = None
        # The signed-in person whose data key seals personal values as they are written (issue 16);
        # set by the command or window request that signed them in, ended at close.
        self.session: StaffSession | None = None
        # Deleted pages are zeroed, so a sealed-over or minimised value leaves nothing in free pages.
        self.conn.execute("PRAGMA secure_delete=ON")
        if create:
            with self.transaction():
                self.meta.set("created_ms", clock())  # the nightly catch-up counts missed runs from here

    def close(self) -> None:
        if self.session is not None:
            self.session.end()
            self.session = None
        self.conn.close()

    def at_rest(self) -> at_rest.AtRest | None:
        """The sealer of this station's personal values: None at a station without a data key (it
        runs unsealed, as before issue 16); ``Refused`` (``session_locked``/``staff_required``) when
        it has one and nobody is signed in."""
        if not at_rest.has_data_key(self.conn):
            return None
        return at_rest.AtRest(self._data_key(), self.code)

    def _data_key(self) -> bytes:
        if self.session is None:
            raise Refused(
                "本站的群众信息已加密保存：请先登录（--staff 用户名，或在窗口登录）后再操作"
                " (personal data is sealed here: sign in first)",
                code="staff_required",
            )
        return self.session.data_key(self.clock())

    def shown_values(self, entity: str, rec_id: str) -> dict[str, object]:
        """A record's values as staff see them: personal values opened through the signed-in session
        (``node/at_rest.py``), their masks when nobody is signed in, as they are at a station without
        a data key."""
        vals = self.records.values(entity, rec_id)
        if not at_rest.has_data_key(self.conn):
            return vals
        live = self.session is not None and self.session.live(self.clock())
        if not live:
            return at_rest.masked(entity, vals)
        rest = self.at_rest()
        assert rest is not None
        return rest.open_values(entity, rec_id, vals)

    def search_sealer(self) -> Sealer:
        return Sealer(self._data_key(), self.code)

    def transaction(self):  # type: ignore[no-untyped-def]
        return transaction(self.db)

    # -- identity ---------------------------------------------------------------------------------

    @property
    def code(self) -> str:
        return self.meta.text("station")

    @property
    def tier(self) -> str:
        return self.meta.text("tier")

    @property
    def hub_id(self) -> str:
        return self.meta.text("hub_id")

    def authority(self, origin: str) -> int:
        row = self.conn.execute("SELECT tier FROM origins WHERE code=?", (origin,)).fetchone()
        return AUTHORITY.get(str(row[0]), 0) if row else 0

    def remember_origins(self, origins: Mapping[str, str]) -> None:
        for code, tier in origins.items():
            if tier in AUTHORITY:
                self.conn.execute(
                    "INSERT INTO origins (code, tier) VALUES (?, ?) ON CONFLICT(code) DO UPDATE SET tier=excluded.tier",
                    (code, tier),
                )

    def hub_key(self, signer: str, key: str) -> Ed25519PublicKey | None:
        """The pinned hub key: the only key a station trusts for anything coming down."""
        pub = self.meta.bytes("hub_sign_pub")
        if not pub or signer != self.hub_id or key != key_id(pub):
            return None
        return load_verify_key(pub)

    # -- catalogue --------------------------------------------------------------------------------

    def catalogue(self) -> CatalogueState:
        row = self.conn.execute(
            "SELECT version, frame, expires_at FROM catalogues ORDER BY version DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise Refused(
                "本站还没有事项目录：请先联网同步（sanji node sync），或导入区局带来的文件（sanji node import）"
                " (no catalogue yet)"
            )
        if self._catalogue is None or self._catalogue.version != row[0]:
            doc = open_document(bytes(row[1]), kind=Release.KIND, recipient=self.code, verify_key=self.hub_key)
            catalogue = parse_catalogue(Release.from_wire(doc.body).catalogue)
            self._catalogue = CatalogueState(int(row[0]), catalogue, str(row[2]))
        return self._catalogue

    def catalogue_at(self, version: int) -> Catalogue | None:
        """A release this station holds, by version (admission checks an application against the
        release it names)."""
        try:
            current = self.catalogue()
        except Refused:
            return None
        if version == current.version:
            return current.catalogue
        row = self.conn.execute("SELECT frame FROM catalogues WHERE version=?", (version,)).fetchone()
        if row is None:
            return None
        doc = open_document(bytes(row[0]), kind=Release.KIND, recipient=self.code, verify_key=self.hub_key)
        return parse_catalogue(Release.from_wire(doc.body).catalogue)

    def store_catalogue(self, frame: bytes) -> tuple[int, str]:
        """Verify and keep a signed release. Returns (version, outcome); never goes to a lower version.
        Call inside a transaction."""
        try:
            doc = open_document(frame, kind=Release.KIND, recipient=self.code, verify_key=self.hub_key)
            release = Release.from_wire(doc.body)
        except RemoteProtocolError as exc:
            raise Refused(
                f"事项目录核验未通过，未采用：请重新同步或向区局重新导出 (catalogue release refused: {exc})"
            ) from exc
        version = release.version
        parse_catalogue(release.catalogue)
        current = self.conn.execute("SELECT MAX(version) FROM catalogues").fetchone()[0] or 0
        if version < current:
            self.meta.set(
                "catalogue_warning",
                f"未采用事项目录第 {version} 版：比本站已有的第 {current} 版旧，无须处理 (rollback)",
            )
            return current, "rollback_refused"
        if version == current:
            return current, "unchanged"
        self.conn.execute(
            "INSERT INTO catalogues (version, frame, issued_at, expires_at, received_ms) VALUES (?,?,?,?,?)",
            (version, frame, release.issued_at, release.expires_at, self.clock()),
        )
        self.meta.set("catalogue_warning", "")
        return version, "updated"

    # -- the write path ---------------------------------------------------------------------------

    def write(
        self, entity: str, rec_id: str, fields: Mapping[str, object], base: Mapping[str, int], *, author: str = ""
    ) -> Change:
        """Stamp, merge and log one change. Call inside a transaction. ``author`` is the signed-in staff
        member's user name (``""`` at a station without accounts); the change carries it, signed."""
        seq = self.meta.int("seq") + 1
        hlc = tick(self.meta.int("hlc"), self.clock())
        epoch = self.meta.int("epoch", 1)
        change = Change(self.code, epoch, seq, hlc, entity, rec_id, dict(fields), dict(base), author)
        check_write(self, change)  # the hub's admission question, asked before anything is written
        self._apply_own(change)
        self.meta.set("seq", seq)
        self.meta.set("hlc", hlc)
        return change

    def _apply_own(self, change: Change) -> None:
        """Log and merge our own plaintext change: as it is at a station without a data key, its
        personal values sealed otherwise (``node/at_rest.py``), with the plaintext's digest and the
        values sealed to the hub beside it."""
        rest = self.at_rest() if at_rest.touches_personal(change) else None
        if rest is None:
            self.records.apply([change])
            return
        sealed = at_rest.seal_change(
            rest, change, hub_pub=self.meta.bytes("hub_seal_pub"), hub_key=self.meta.text("hub_seal_key_id")
        )
        self.records.apply([replace(change, fields=sealed.fields)])
        self.conn.execute(
            "UPDATE changes SET digest=?, hub_seal=? WHERE origin=? AND epoch=? AND seq=?",
            (sealed.digest, sealed.hub_seal, change.origin, change.epoch, change.seq),
        )
        if change.entity == "application":
            at_rest.write_tokens(self.conn, self.search_sealer(), change.id, change.fields)

    def write_unchecked(
        self, entity: str, rec_id: str, fields: Mapping[str, object], base: Mapping[str, int]
    ) -> Change:
        """The write path without the admission check: what a station running modified software does.
        Only tests that play a compromised station call it; no command does."""
        seq = self.meta.int("seq") + 1
        hlc = tick(self.meta.int("hlc"), self.clock())
        change = Change(self.code, self.meta.int("epoch", 1), seq, hlc, entity, rec_id, dict(fields), dict(base))
        self.records.apply([change])
        self.meta.set("seq", seq)
        self.meta.set("hlc", hlc)
        return change

    def observe(self, stamp: int) -> None:
        """Keep our clock ahead of what we have seen (bounded, so a wild clock cannot drag us along)."""
        obs = observe(self.meta.int("hlc"), stamp, self.clock(), max_drift_ms=DEFAULT_MAX_DRIFT_MS)
        self.meta.set("hlc", obs.stamp)

    def pending_changes(self) -> int:
        """Own changes not yet acknowledged by the hub (in no batch yet, or in a batch not settled)."""
        unbatched = self.meta.int("seq") - self.meta.int("batched_seq")
        row = self.conn.execute(
            f"SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM outbox WHERE state IN {UNSETTLED_SQL}"
        ).fetchone()
        return max(unbatched, 0) + int(row[0])
