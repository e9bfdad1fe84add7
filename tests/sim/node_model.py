"""A station in memory: the thin parts of node/station.py, node/commands.py and node/epoch.py.

Everything the station's SQLite file holds lives in one :class:`NodeStore`, so a commit is one
assignment, a crash loses nothing committed, and a backup is a deep copy of it. Every decision that
matters (stamping, merging, workflow moves, catalogue checks) is made by ``sync/`` and ``protocol/``.
The uplink half (outbox, acknowledgements, feed pages) is in ``uplink_model.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.document import open_document
from protocol.errors import RemoteProtocolError
from protocol.hubkeys import KeyList
from protocol.keys import key_id, load_seal_public, load_verify_key, public_bytes, sealing_key_from_seed
from protocol.keys import signing_key_from_seed as signing_key
from sync.acceptance import AcceptanceError, check_acceptance, deferred_due_date, due_date
from sync.catalogue import Catalogue, parse_catalogue
from sync.change import Change
from sync.fold import versions
from sync.hlc import DEFAULT_MAX_DRIFT_MS, observe, tick
from sync.identity import id_check_char
from sync.model import AUTHORITY, MATERIAL_PREFIX
from sync.numbering import application_number
from sync.workflow import Move, Status, TransitionError, allowed_moves, may_move, move_to
from tests.sim.catalogue import day_of, iso_from_ms
from tests.sim.replica_model import Key, MemRecords, Watch


def sim_id_number(serial: int) -> str:
    """A made-up ID number with a valid check character (the hub checks it): region 360802, born
    1985-06-15, the serial as sequence code. It names nobody."""
    first17 = f"36080219850615{serial % 1000:03d}"
    return first17 + id_check_char(first17)


class Refused(Exception):
    """What replica.errors.Refused is to the real station: a refusal with a reason, nothing written."""


@dataclass
class OutboxRow:
    hash: bytes
    epoch: int
    first_seq: int
    last_seq: int
    frame: bytes
    state: str = "pending"  # pending | rejected | receipted | quarantined | superseded
    reason: str = ""
    receipt: bytes | None = None


@dataclass
class NodeStore:
    """The station's database: meta, origins, catalogues, the log and records, the outbox."""

    epoch: int = 1
    seq: int = 0
    hlc: int = 0
    counter: int = 0
    batched_seq: int = 0
    chain: bytes = bytes(32)
    feed_cursor: int = 0
    hub_generation: str = ""
    catalogue_warning: str = ""
    last_error: str = ""
    # node/hubkeys.py pins these in meta, so a restored backup goes back to the keys it held then and
    # follows the hub's history again from there at its next round.
    hub_root_pub: bytes = b""
    hub_sign_pub: bytes = b""
    hub_keys_version: int = 0
    hub_keys_expires: int = 0
    stale_rounds: int = 0  # node/freshness.py: rounds that reached the hub without one answered page
    origins: dict[str, str] = field(default_factory=dict)
    catalogues: dict[int, bytes] = field(default_factory=dict)
    records: MemRecords = field(default_factory=MemRecords)
    outbox: list[OutboxRow] = field(default_factory=list)


@dataclass
class NodeHooks:
    """Where the world's checkers listen: every merge, every own stamp, every clock merge."""

    watch: Watch | None = None
    wrote: Callable[[Change], None] | None = None  # a change this station really wrote, before it merges
    stamped: Callable[[str, int, int], None] | None = None  # (station, previous hlc, new hlc)
    # A hub document this station took (kind, frame, the key list version it held then).
    took: Callable[[str, str, bytes, int], None] | None = None


class SimNode:
    def __init__(
        self,
        *,
        code: str,
        tier: str,
        parent: str,
        hub_id: str,
        seed: bytes,
        hub_keys: KeyList,
        sealed: bool,
        clock: Callable[[], int],
        hooks: NodeHooks,
        as_is: frozenset[str] = frozenset(),
    ) -> None:
        self.code, self.tier, self.parent, self.hub_id = code, tier, parent, hub_id
        self.sign = signing_key(seed[:32])
        self.seal = sealing_key_from_seed(seed[32:64])
        self.seal_pub = public_bytes(self.seal)
        self.seal_key_id = key_id(self.seal_pub)
        self.hub_seal = load_seal_public(hub_keys.seal)  # the hub rotates its signing key only
        self.hub_seal_key_id = key_id(hub_keys.seal)
        self.sealed = sealed
        self.clock = clock
        self.hooks = hooks
        self.as_is = as_is
        self.store = NodeStore()
        self.store.records.unique_numbers = "duplicate_number_blocks_ingest" in as_is
        origins = {code: tier, hub_id: "district"}
        if parent:
            origins[parent] = "township"  # as node/enrolment.py pins it
        self.store.origins.update(origins)
        self.pin(hub_keys)  # node/enrolment.py: the root from the token, and the list it signed
        self.follows_keys = False  # asks for the key history each round (see client_model.sync_round)
        self.pulls = 0  # numbers this station's pull nonces
        self.up = True
        self.wall_high = 0  # the latest wall time this station's clock has shown (for the HLC checks)
        self._catalogue: tuple[int, Catalogue] | None = None

    # -- identity and time ---------------------------------------------------------------------------

    def now(self) -> int:
        ms = self.clock()
        self.wall_high = max(self.wall_high, ms)
        return ms

    def authority(self, origin: str) -> int:
        tier = self.store.origins.get(origin)
        return AUTHORITY.get(tier, 0) if tier else 0

    def hub_key(self, signer: str, key: str) -> Ed25519PublicKey | None:
        """node/station.py: the pinned key of the current list is the only one trusted for anything."""
        pub = self.store.hub_sign_pub
        if not pub or signer != self.hub_id or key != key_id(pub):
            return None
        return load_verify_key(pub)

    def pin(self, keys: KeyList) -> None:
        """node/hubkeys.py ``pin``: trust ``keys`` (verified to chain to our root) from now on."""
        s = self.store
        s.hub_root_pub, s.hub_sign_pub = keys.root, keys.sign
        s.hub_keys_version, s.hub_keys_expires = keys.version, keys.expires_ms
        self._catalogue = None  # the real station verifies its release anew in every command

    def unseal(self, key: str) -> X25519PrivateKey | None:
        return self.seal if key == self.seal_key_id else None

    # -- catalogue (node/station.py) -------------------------------------------------------------------

    @property
    def catalogue_version(self) -> int:
        return max(self.store.catalogues, default=0)

    def catalogue(self) -> tuple[int, Catalogue]:
        version = self.catalogue_version
        if version == 0:
            raise Refused("this station has no catalogue yet")
        if self._catalogue is None or self._catalogue[0] != version:
            try:
                doc = open_document(
                    self.store.catalogues[version], kind="catalogue", recipient=self.code, verify_key=self.hub_key
                )
            except RemoteProtocolError as exc:  # e.g. restored to keys older than a release it kept
                raise Refused(f"the catalogue release does not verify: {exc}") from exc
            assert isinstance(doc.body, dict)
            self._catalogue = (version, parse_catalogue(doc.body["catalogue"]))
        return self._catalogue

    def store_catalogue(self, frame: bytes) -> tuple[int, str]:
        """Verify and keep a signed release; never go to a lower version."""
        try:
            doc = open_document(frame, kind="catalogue", recipient=self.code, verify_key=self.hub_key)
        except RemoteProtocolError as exc:
            raise Refused(f"catalogue release refused: {exc}") from exc
        body = doc.body
        if not isinstance(body, dict) or not isinstance(body.get("version"), int):
            raise Refused("catalogue release has no version")
        version = int(body["version"])
        parse_catalogue(body["catalogue"])
        current = self.catalogue_version
        if self.hooks.took is not None:
            self.hooks.took(self.code, "catalogue", frame, self.store.hub_keys_version)
        if version < current:
            self.store.catalogue_warning = f"refused catalogue release {version}: older than {current} (rollback)"
            return current, "rollback_refused"
        if version == current:
            return current, "unchanged"
        self.store.catalogues[version] = frame
        self.store.catalogue_warning = ""
        return version, "updated"

    # -- the write path --------------------------------------------------------------------------------

    def write(self, entity: str, rec_id: str, fields: dict[str, object], base: dict[str, int]) -> Change:
        s = self.store
        seq = s.seq + 1
        hlc = tick(s.hlc, self.now())
        change = Change(self.code, s.epoch, seq, hlc, entity, rec_id, dict(fields), dict(base))
        if self.hooks.wrote is not None:
            self.hooks.wrote(change)
        s.records.apply([change], self.authority, self.hooks.watch)
        if self.hooks.stamped is not None:
            self.hooks.stamped(self.code, s.hlc, hlc)
        s.seq, s.hlc = seq, hlc
        return change

    def observe(self, stamp: int) -> None:
        s = self.store
        obs = observe(s.hlc, stamp, self.now(), max_drift_ms=DEFAULT_MAX_DRIFT_MS)
        if self.hooks.stamped is not None:
            self.hooks.stamped(self.code, s.hlc, obs.stamp)
        s.hlc = obs.stamp

    # -- domain commands (node/commands.py) ------------------------------------------------------------

    def accept(self, app_id: str, pick: Callable[[list[str]], str], defer: bool) -> tuple[str, str]:
        """Accept one application under the current release; returns (id, number) once committed."""
        version, cat = self.catalogue()
        codes = [item.code for item in cat.items_for_tier(self.tier)]
        if not codes:
            raise Refused(f"no item may be accepted at tier {self.tier}")
        item = cat.items[pick(codes)]
        submitted = [m.name for m in item.materials if not (defer and m.deferrable)]
        deferred = [m.name for m in item.materials if defer and m.deferrable]
        try:
            check_acceptance(item, tier=self.tier, submitted=submitted, deferred=deferred)
        except AcceptanceError as exc:
            raise Refused(str(exc)) from exc
        at_ms = self.now()
        day = day_of(at_ms).date()
        serial = self.store.counter + 1
        fields: dict[str, object] = {
            "station": self.code,
            "item": item.code,
            "catalogue_version": version,
            "kind": item.kind,
            "applicant_name": f"模拟申请人{serial}",
            "applicant_id": sim_id_number(serial),
            "applicant_phone": f"1380000{serial:04d}",
            "address": f"{self.code}村{serial}号",
            "accepted_at": iso_from_ms(at_ms),
            "due_date": due_date(item, day, cat.calendar).isoformat(),
            "status": Status.ACCEPTED.value,
        }
        defer_due = deferred_due_date(item, day, cat.calendar).isoformat()
        for m in submitted:
            fields[MATERIAL_PREFIX + m] = ["submitted", ""]
        for m in deferred:
            fields[MATERIAL_PREFIX + m] = ["deferred", defer_due]
        return app_id, self._write_accepted(app_id, fields, day)

    def _write_accepted(self, app_id: str, fields: dict[str, object], day: date) -> str:
        self.store.counter += 1
        number = application_number(self.code, day, self.store.epoch, self.store.counter)
        self.write("application", app_id, {"number": number, **fields}, {})
        return number

    def roles_here(self, station_code: str, item_code: str) -> set[str]:
        roles = set()
        if station_code == self.code:
            roles.add("station")
        item = self.catalogue()[1].items.get(item_code)
        if self.tier in ("township", "street") and item is not None and item.decided_at in ("township", "street"):
            roles.add("decider")
        return roles

    def open_moves(self, app_id: str) -> list[Move]:
        """Moves staff here could make on an application now (what the UI would offer)."""
        vals = self.store.records.values("application", app_id)
        if "status" not in vals or "item" not in vals:
            return []
        immediate = vals.get("kind") == "immediate"
        roles = self.roles_here(str(vals.get("station")), str(vals.get("item")))
        return [
            m
            for m in allowed_moves(Status(str(vals["status"])), immediate=immediate)
            if m is not Move.INSPECT and any(may_move(r, m, immediate=immediate) for r in roles)
        ]

    def transition(self, app_id: str, target: Status, note: str = "") -> Change:
        record = self.store.records.records.get(("application", app_id), {})
        vals = {k: c[2] for k, c in record.items()}
        immediate = vals.get("kind") == "immediate"
        try:
            move = move_to(Status(str(vals.get("status"))), target, immediate=immediate)
        except TransitionError as exc:
            raise Refused(str(exc)) from exc
        roles = self.roles_here(str(vals.get("station")), str(vals.get("item")))
        if not any(may_move(r, move, immediate=immediate) for r in roles):
            raise Refused(f"this station may not {move.value} this application")
        if move is Move.INSPECT:
            raise Refused("on-site inspection is assigned by the hub or township")
        fields: dict[str, object] = {"status": target.value}
        base = {"status": versions(record).get("status", 0)}
        if note:
            fields["note"] = note
            base["note"] = versions(record).get("note", 0)
        if move is Move.RESUBMIT:
            for name, cell in record.items():
                if name.startswith(MATERIAL_PREFIX) and isinstance(cell[2], list) and cell[2][0] == "deferred":
                    fields[name] = ["supplemented", ""]
                    base[name] = cell[0]
        return self.write("application", app_id, fields, base)

    def rate(self, rating_id: str, app_id: str, score: int) -> Change:
        """A citizen's rating (好差评): a write-once record of its own, tied to the application."""
        return self.write("rating", rating_id, {"application": app_id, "score": score, "comment": ""}, {})

    # -- epochs and backups (node/epoch.py) ------------------------------------------------------------

    def start_new_epoch(self) -> int:
        s = self.store
        s.epoch += 1
        s.seq = 0
        s.batched_seq = 0
        s.chain = bytes(32)
        return s.epoch

    def backup(self) -> NodeStore:
        return copy.deepcopy(self.store)

    def backup_of(self, snapshot: NodeStore) -> NodeStore:
        """The store as a raw copy of ``snapshot`` would leave it (no new epoch: see uplink's fork path)."""
        self._catalogue = None
        return copy.deepcopy(snapshot)

    def restore(self, snapshot: NodeStore) -> int:
        """Put a backup back and start a new epoch before anything else can write."""
        releases, stamp = self.store.catalogues, self.store.hlc
        self.store = copy.deepcopy(snapshot)
        if "restore_rewinds_hlc" not in self.as_is:
            self.store.hlc = max(self.store.hlc, stamp)
        if "restore_rolls_back_catalogue" not in self.as_is:
            # Releases are signed and self-contained: keeping the newer ones loses nothing and keeps
            # the station from going back to an older catalogue.
            self.store.catalogues.update({v: f for v, f in releases.items() if v > max(snapshot.catalogues, default=0)})
        self._catalogue = None
        return self.start_new_epoch()

    # -- views the world and the checkers use ----------------------------------------------------------

    def own_applications(self) -> list[str]:
        return [
            k[1]
            for k in self.store.records.records
            if k[0] == "application" and self.store.records.values(*k).get("station") == self.code
        ]

    def record_keys(self) -> set[Key]:
        return set(self.store.records.records)
