"""The district hub in memory: the thin parts of hub/ingest.py, hub/feed.py, hub/app.py and hub/service.py.

Verification, classification, admission and merging are the real ``protocol/`` and ``sync/`` calls in
the order hub/ingest.py makes them. What is re-implemented is only storage: one :class:`HubStore`
whose every mutation happens inside one call, which is how the simulator makes a commit atomic. A
crash is modelled by the world, which either never delivers a request (nothing committed) or drops
the answer after the call returned (committed, answer lost).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.batch import VerifiedBatch, open_batch_changes, verify_batch
from protocol.codec import pack, unpack
from protocol.document import open_document, sign_document
from protocol.errors import RemoteProtocolError
from protocol.frame import peek_header
from protocol.hubkeys import ROOT_KIND, KeyList, sign_key_list, sign_root_change
from protocol.keys import key_id, load_seal_public, load_verify_key, public_bytes, sealing_key_from_seed
from protocol.keys import signing_key_from_seed as signing_key
from sync.admission import Facts, StatusVersion
from sync.catalogue import Catalogue, parse_catalogue
from sync.change import Change
from sync.hlc import HUB_QUARANTINE_AHEAD_MS, tick
from sync.ingest import admit, read_change
from sync.model import AUTHORITY, FIXED_FIELDS, Actor, RecordContext
from sync.session import AckResult, Cursor, Verdict, classify
from tests.sim.catalogue import sign_release
from tests.sim.hub_store import BatchRow, FrameAck, HeldRow, HubStore, StationInfo
from tests.sim.replica_model import Logged, NumberTaken, Watch

PULL_WINDOW_MS = 15 * 60 * 1000  # hub/app.py: a pull signed further from hub time than this is stale
KEY_LIST_MS = 365 * 86_400_000  # hub/keyring.py KEY_LIST_DAYS


@dataclass
class HubHooks:
    watch: Watch | None = None
    wrote: Callable[[Change], None] | None = None
    stamped: Callable[[str, int, int], None] | None = None
    admitted: Callable[[Change, int], None] | None = None  # (change, hub wall ms) for the clock checks
    held: Callable[[HeldRow], None] | None = None


class SimHub:
    def __init__(
        self,
        *,
        hub_id: str,
        seed: bytes,
        clock: Callable[[], int],
        sealed: bool,
        page_limit: int,
        hooks: HubHooks,
        as_is: frozenset[str] = frozenset(),
    ) -> None:
        self.hub_id = hub_id
        self.sign = signing_key(seed[:32])
        self.seal = sealing_key_from_seed(seed[32:64])
        self.sign_pub = public_bytes(self.sign)
        self.seal_pub = public_bytes(self.seal)
        self.seal_key_id = key_id(self.seal_pub)
        self.clock = clock
        self.sealed = sealed
        self.page_limit = page_limit
        self.hooks = hooks
        self.as_is = as_is
        self.store = HubStore()
        self.store.records.unique_numbers = "duplicate_number_blocks_ingest" in as_is
        self.up = True
        self._catalogue: tuple[int, Catalogue] | None = None
        self.high_water = 0  # hub/service.py keeps it beside the database, so a restore keeps it too
        # hub/keyring.py: the root and the key history live in the hub folder, not the database, so a
        # restore never takes the hub back to keys it retired. The root comes from the hub's own seed
        # (no extra draw from the run's random stream), and key list 1 names the first online keys.
        self.root = signing_key(hashlib.sha256(b"sim-hub-root\x00" + seed).digest())
        self.roots = [public_bytes(self.root)]
        self.keys_version = 0
        self.key_docs: list[bytes] = []
        self.listed: dict[int, bytes] = {}  # key list version -> the online signing key it names
        self.signed_by: dict[str, bytes] = {}  # key id -> public key, of every online key the hub had
        self._list_keys()

    # -- keys (hub/keyring.py) -------------------------------------------------------------------------

    def _list_keys(self) -> None:
        """The root lists the current online keys as the next key list version."""
        self.keys_version += 1
        now = self.keys_issued = self.clock()
        self.key_docs.append(
            sign_key_list(
                self.root,
                hub_id=self.hub_id,
                version=self.keys_version,
                sign=self.sign_pub,
                seal=self.seal_pub,
                issued_ms=now,
                expires_ms=now + KEY_LIST_MS,
            )
        )
        self.listed[self.keys_version] = self.sign_pub
        self.signed_by[key_id(self.sign_pub)] = self.sign_pub

    def current_keys(self) -> KeyList:
        """What an enrolment answer pins at a new station: the root and the list it signed last."""
        return KeyList(
            public_bytes(self.root), self.keys_version, self.sign_pub, self.seal_pub, 0, self.keys_issued + KEY_LIST_MS
        )

    def rotate_key(self, seed: bytes) -> int:
        """keyring.rotate_key: a new online signing key (the sealing key stays), listed by the root, and
        every stored release signed again by it (same body, same version)."""
        old = self.sign
        self.sign = signing_key(seed)
        self.sign_pub = public_bytes(self.sign)
        self._resign(lambda kid: old.public_key() if kid == key_id(public_bytes(old)) else None)
        self._list_keys()
        return self.keys_version

    def rotate_root(self, seed: bytes) -> int:
        """keyring.rotate_root: the old root names the new one, which lists the same online keys."""
        new = signing_key(seed)
        seq = 1 + sum(1 for d in self.key_docs if peek_header(d).get("kind") == ROOT_KIND)
        self.key_docs.append(sign_root_change(self.root, public_bytes(new), hub_id=self.hub_id, seq=seq))
        self.root = new
        self.roots.append(public_bytes(new))
        self._list_keys()
        return self.keys_version

    def _resign(self, verify: Callable[[str], Ed25519PublicKey | None]) -> None:
        for version, frame in sorted(self.store.releases.items()):
            kid = str(peek_header(frame).get("signer_key", ""))
            if kid == key_id(self.sign_pub) or verify(kid) is None:
                continue
            doc = open_document(frame, kind="catalogue", recipient="*", verify_key=lambda _s, k: verify(k))
            self.store.releases[version] = sign_document(
                "catalogue",
                doc.body,
                signer=self.hub_id,
                recipient="*",
                signing_key=self.sign,
                extra_header={"version": version},
            )
        self._catalogue = None

    def keys_answer(self, request: bytes) -> tuple[int, bytes]:
        """hub/enrol_routes.py ``GET /v1/keys?after=N``: public, so unsigned; stations verify what it holds."""
        try:
            asked = unpack(request)
        except RemoteProtocolError as exc:
            return 400, str(exc).encode()
        after = asked.get("after") if isinstance(asked, dict) else None
        return 200, pack(self.bundle(after if isinstance(after, int) else 0))

    def bundle(self, after: int) -> dict[str, object]:
        """keyring.bundle, what `GET /v1/keys?after=N` answers: only the version when the station holds
        the newest list already; otherwise the whole history and the current (re-signed) release."""
        if after >= self.keys_version:
            return {"hub_id": self.hub_id, "version": self.keys_version, "roots": [], "docs": [], "release": None}
        latest = max(self.store.releases, default=0)
        return {
            "hub_id": self.hub_id,
            "version": self.keys_version,
            "roots": list(self.roots),
            "docs": list(self.key_docs),
            "release": self.store.releases.get(latest),
        }

    def backup(self) -> HubStore:
        return copy.deepcopy(self.store)

    def restore(self, snapshot: HubStore, generation: str) -> None:
        """hub/restore.py: the backup copied back under a new generation, so stations restart their feeds."""
        self.store = copy.deepcopy(snapshot)
        self.store.generation = generation
        self._catalogue = None
        # keyring._resign_stale_releases: a backup from before a rotation holds releases signed by a key
        # the hub no longer has; what one of its own earlier keys signed is signed again.
        self._resign(lambda kid: load_verify_key(self.signed_by[kid]) if kid in self.signed_by else None)
        if "hub_restore_reuses_own_seqs" not in self.as_is:
            # Like a station, the hub starts a new epoch for its own changes, so the seqs it handed out
            # after the backup (which stations may hold) are never reused for different decisions.
            self.store.epoch += 1
            self.store.seq = 0

    # -- who is who ----------------------------------------------------------------------------------

    def enrol(self, code: str, tier: str, parent: str, sign_pub: bytes, seal_pub: bytes) -> None:
        self.store.stations[code] = StationInfo(code, tier, parent, sign_pub, seal_pub)

    def tiers(self) -> dict[str, str]:
        out = {code: st.tier for code, st in self.store.stations.items()}
        out[self.hub_id] = "district"
        return out

    def authority(self, origin: str) -> int:
        return AUTHORITY.get(self.tiers().get(origin, "field"), 0)

    def verify_key(self, signer: str, _key_id: str) -> Ed25519PublicKey | None:
        station = self.store.stations.get(signer)
        return None if station is None else load_verify_key(station.sign_pub)

    # -- catalogue (hub/service.py) --------------------------------------------------------------------

    def publish(self) -> int:
        s = self.store
        # hub/service.py: past every version ever published, also those a restore lost.
        version = max(max(s.releases, default=0), self.high_water) + 1
        self.high_water = version
        now = self.clock()
        s.releases[version] = sign_release(version, now, hub_id=self.hub_id, key=self.sign)
        s.release_ms[version] = now
        return version

    def catalogue(self) -> Catalogue:
        version = max(self.store.releases)
        if self._catalogue is None or self._catalogue[0] != version:
            doc = open_document(
                self.store.releases[version],
                kind="catalogue",
                recipient="*",
                verify_key=lambda _s, _k: self.sign.public_key(),
            )
            assert isinstance(doc.body, dict)
            self._catalogue = (version, parse_catalogue(doc.body["catalogue"]))
        return self._catalogue[1]

    def decided_at(self, item_code: str) -> str:
        item = self.catalogue().items.get(item_code)
        return item.decided_at if item is not None else "district"

    # -- the application projection and field ownership ----------------------------------------------

    def projection(self, app_id: str) -> tuple[str, str] | None:
        """What the ``applications`` table would say: (station, item), or None before any change."""
        if ("application", app_id) not in self.store.records.records:
            return None
        vals = self.store.records.values("application", app_id)
        return str(vals.get("station")), str(vals.get("item"))

    def context(self, change: Change) -> RecordContext | None:
        if change.entity == "application":
            app_id = change.id
        else:
            named = change.fields.get("application")
            app_id = (
                named
                if isinstance(named, str)
                else str(self.store.records.values(change.entity, change.id).get("application", ""))
            )
        row = self.projection(app_id)
        if row is not None:
            station_code, item = row
        elif change.entity == "application" and isinstance(change.fields.get("station"), str):
            station_code, item = str(change.fields["station"]), str(change.fields.get("item", ""))
        else:
            return None
        station = self.store.stations.get(station_code)
        parent = station.parent if station is not None else None
        current = self.store.records.values(change.entity, change.id)
        fixed = {k: v for k, v in current.items() if k in FIXED_FIELDS}  # written once, never changed
        return RecordContext(station_code, parent or None, self.decided_at(item), None, fixed)

    def catalogue_at(self, version: int) -> Catalogue | None:
        frame = self.store.releases.get(version)
        if frame is None:
            return None
        doc = open_document(frame, kind="catalogue", recipient="*", verify_key=lambda _s, _k: self.sign.public_key())
        assert isinstance(doc.body, dict)
        return parse_catalogue(doc.body["catalogue"])

    def facts(self, change: Change) -> Facts:
        """What the admission question needs, from the model's records (as hub/admission.py reads the hub's)."""
        ctx = self.context(change)
        records = self.store.records
        current = records.records.get((change.entity, change.id), {})
        app_id = (
            change.id
            if change.entity == "application"
            else str(change.fields.get("application", records.values(change.entity, change.id).get("application", "")))
        )
        task = records.values("task", change.id) if change.entity in ("task", "report") else {}
        if ctx is not None and isinstance(task.get("inspector"), str):
            ctx = RecordContext(ctx.station, ctx.station_parent, ctx.decided_at, str(task["inspector"]), ctx.fixed)

        def versions() -> list[StatusVersion]:
            return [
                StatusVersion(
                    e.change.hlc, e.change.origin, str(e.change.fields["status"]), e.change.epoch, e.change.seq
                )
                for e in records.changes.values()
                if e.change.entity == "application" and e.change.id == app_id and "status" in e.change.fields
            ]

        return Facts(
            ctx,
            current=current,
            application=records.values("application", app_id),
            task=task if change.entity == "report" else {},
            status_versions=versions,
            catalogue=self.catalogue_at,
            number_holder=lambda n: records.numbers.get(n),
            latest_catalogue=lambda: (max(self.store.releases), self.catalogue()),
            published_up_to=lambda: max(self.high_water, max(self.store.releases)),
            held_status=lambda hlc: next(
                (
                    (str(w[6]["status"]), state == "released")
                    for w, state in (
                        (unpack(q.raw), q.state)
                        for q in self.store.quarantine
                        if q.origin == change.origin and not q.whole_batch
                    )
                    if isinstance(w, list)
                    and len(w) == 8
                    and w[3] == hlc
                    and w[5] == change.id
                    and isinstance(w[6], dict)
                    and isinstance(w[6].get("status"), str)
                ),
                None,
            ),
            reissued=lambda: any(
                e.change.origin == change.origin
                and e.change.epoch < change.epoch
                and e.change.entity == change.entity
                and e.change.id == change.id
                and dict(e.change.fields) == dict(change.fields)
                for e in records.changes.values()
            ),
        )

    # -- merging and feeds -----------------------------------------------------------------------------

    def apply(self, changes: list[Change]) -> tuple[Logged, ...]:
        result = self.store.records.apply(changes, self.authority, self.hooks.watch)
        self.fan_out(result.logged)
        return result.logged

    def recipients(self, change: Change, application: str) -> list[str]:
        row = self.projection(application)
        if row is None:
            return []
        station_code, item = row
        out = {station_code}
        station = self.store.stations.get(station_code)
        if station is not None and station.parent and self.decided_at(item) in ("township", "street"):
            out.add(station.parent)
        out.discard(change.origin)
        out.discard(self.hub_id)
        return sorted(out)

    def fan_out(self, logged: tuple[Logged, ...]) -> None:
        for entry in logged:
            for station in self.recipients(entry.change, entry.application):
                feed = self.store.feeds.setdefault(station, [])
                if entry.rowid not in feed:
                    feed.append(entry.rowid)

    def observe_hlc(self, stamp: int) -> None:
        self.store.hlc = max(self.store.hlc, stamp)

    def write(self, entity: str, rec_id: str, fields: dict[str, object], base: dict[str, int]) -> Change:
        """One hub (operator) change: stamped, logged, merged and fanned out."""
        s = self.store
        s.seq += 1
        previous, s.hlc = s.hlc, tick(s.hlc, self.clock())
        if self.hooks.stamped is not None:
            self.hooks.stamped(self.hub_id, previous, s.hlc)
        change = Change(self.hub_id, s.epoch, s.seq, s.hlc, entity, rec_id, dict(fields), dict(base))
        if self.hooks.wrote is not None:
            self.hooks.wrote(change)
        self.apply([change])
        return change

    def hold(
        self, origin: str, epoch: int, seq: int, batch: bytes, raw: bytes, reason: str, whole_batch: bool = False
    ) -> None:
        row = HeldRow(len(self.store.quarantine) + 1, origin, epoch, seq, batch, raw, reason, whole_batch)
        self.store.quarantine.append(row)
        if self.hooks.held is not None:
            self.hooks.held(row)

    # -- ingest (hub/ingest.py) --------------------------------------------------------------------------

    def ingest_frame(self, frame: bytes) -> FrameAck:
        now = self.clock()
        try:
            vb = verify_batch(frame, recipient=self.hub_id, verify_key=self.verify_key)
        except RemoteProtocolError as exc:
            self.store.rejections += 1
            return FrameAck(
                b"", _claimed_origin(frame), AckResult.REJECTED, reason=f"{exc.code}: {exc}", status=exc.status
            )
        saved = self.store.savepoint()
        try:
            return self._ingest_verified(vb, frame, now)
        except NumberTaken:
            self.store = saved  # the transaction rolls back; the request fails with a 500
            raise

    def _ingest_verified(self, vb: VerifiedBatch, frame: bytes, now: int) -> FrameAck:
        h, s = vb.header, self.store
        bhash = vb.frame.header_hash
        cursor = s.cursors.get((h.origin, h.epoch), Cursor())
        applied = {
            (b.first_seq, b.last_seq): k
            for k, b in s.batches.items()
            if b.origin == h.origin and b.epoch == h.epoch and b.first_seq <= h.last_seq and b.last_seq >= h.first_seq
        }
        decision = classify(
            cursor, first_seq=h.first_seq, last_seq=h.last_seq, prev=h.prev, batch_hash=bhash, applied=applied
        )
        if decision.verdict is Verdict.DUPLICATE:
            kept = s.batches.get(bhash)
            return FrameAck(
                bhash, h.origin, AckResult.DUPLICATE, cursor.next_seq, receipt=kept.receipt if kept else b""
            )
        if decision.verdict is Verdict.GAP:
            return FrameAck(bhash, h.origin, AckResult.GAP, decision.expected_seq, reason=decision.reason)
        if decision.verdict is Verdict.FORK and self._all_held_identically(vb):
            return FrameAck(bhash, h.origin, AckResult.DUPLICATE, cursor.next_seq)
        if decision.verdict is Verdict.FORK:
            if not any(q.batch == bhash and q.whole_batch for q in s.quarantine):
                self.hold(h.origin, h.epoch, h.first_seq, bhash, frame, f"fork: {decision.reason}", whole_batch=True)
                s.alerts.append(("fork", h.origin, f"epoch {h.epoch} seqs {h.first_seq}-{h.last_seq}"))
            return FrameAck(bhash, h.origin, AckResult.FORK, decision.expected_seq, reason=decision.reason, status=409)
        held = admitted = 0
        try:
            raw_changes = open_batch_changes(vb, unseal_key=self.unseal)
        except RemoteProtocolError as exc:
            self.hold(h.origin, h.epoch, h.first_seq, bhash, frame, f"unreadable body: {exc}", whole_batch=True)
            raw_changes, held = [], h.count
        actor = Actor(h.origin, self.tiers().get(h.origin, "field"))
        for offset, raw in enumerate(raw_changes):
            seq = h.first_seq + offset
            adm = read_change(raw, origin=h.origin, epoch=h.epoch, seq=seq)
            if adm.admitted and adm.change is not None:
                adm = admit(
                    adm.change,
                    actor=actor,
                    context=self.context(adm.change),
                    hub_wall_ms=now,
                    max_ahead_ms=HUB_QUARANTINE_AHEAD_MS,
                    facts=self.facts(adm.change),
                )
            if adm.admitted and adm.change is not None:
                admitted += 1
                if self.hooks.admitted is not None:
                    self.hooks.admitted(adm.change, now)
                self.apply([adm.change])
                self.observe_hlc(adm.change.hlc)
            else:
                self.hold(h.origin, h.epoch, seq, bhash, pack(raw), adm.reason)
                held += 1
        result = AckResult.APPLIED if held == 0 else AckResult.QUARANTINED
        receipt = sign_document(
            "receipt",
            {
                "batch": bhash,
                "origin": h.origin,
                "epoch": h.epoch,
                "first_seq": h.first_seq,
                "last_seq": h.last_seq,
                "applied": admitted,
                "quarantined": held,
                "hub": self.hub_id,
            },
            signer=self.hub_id,
            recipient=h.origin,
            signing_key=self.sign,
        )
        s.batches[bhash] = BatchRow(h.origin, h.epoch, h.first_seq, h.last_seq, result.value, receipt)
        s.cursors[(h.origin, h.epoch)] = Cursor(h.last_seq + 1, bhash)
        return FrameAck(
            bhash,
            h.origin,
            result,
            h.last_seq + 1,
            receipt=receipt,
            reason="" if held == 0 else f"{held} change(s) held for review",
        )

    def _all_held_identically(self, vb: VerifiedBatch) -> bool:
        h = vb.header
        try:
            raw_changes = open_batch_changes(vb, unseal_key=self.unseal)
        except RemoteProtocolError:
            return False
        for offset, raw in enumerate(raw_changes):
            adm = read_change(raw, origin=h.origin, epoch=h.epoch, seq=h.first_seq + offset)
            c = adm.change
            if c is None or adm.reason:
                return False
            kept = self.store.records.changes.get(c.key)
            if kept is not None and (
                kept.change.hlc,
                kept.change.entity,
                kept.change.id,
                kept.fields_packed,
                kept.base_packed,
            ) == (c.hlc, c.entity, c.id, pack(dict(c.fields)), pack(dict(c.base))):
                continue
            # A change the hub holds in quarantine, byte for byte, is held identically too (a nightly
            # repair may have taken it, and held it for a reason of its own, before the batch came in).
            if "held_identical_batch_is_fork" in self.as_is or not any(
                q.raw == pack(raw) and not q.whole_batch and (q.origin, q.epoch, q.seq) == c.key
                for q in self.store.quarantine
            ):
                return False
        return True

    def unseal(self, key: str) -> X25519PrivateKey | None:
        return self.seal if key == self.seal_key_id else None

    # -- HTTP endpoints (hub/app.py) ----------------------------------------------------------------------

    def answer_push(self, acks: list[FrameAck]) -> tuple[int, bytes]:
        """The answer to a push whose frames were ingested one by one (each its own transaction)."""
        authentic = [a for a in acks if a.batch]
        if not authentic:
            first = acks[0]
            return (first.status if first.status >= 400 else 403), first.reason.encode()
        doc = sign_document(
            "acks",
            {"acks": [a.to_wire() for a in acks]},
            signer=self.hub_id,
            recipient=authentic[0].origin,
            signing_key=self.sign,
        )
        return 200, doc

    def pull(self, request: bytes) -> tuple[int, bytes]:
        try:
            signer = str(peek_header(request).get("signer", ""))
            doc = open_document(request, kind="pull", recipient=self.hub_id, verify_key=self.verify_key)
        except RemoteProtocolError as exc:
            return exc.status, str(exc).encode()
        body = doc.body
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("at_ms"), int)
            or not isinstance(body.get("after"), int)
        ):
            return 400, b"malformed pull"
        if abs(int(body["at_ms"]) - self.clock()) > PULL_WINDOW_MS:
            return 403, b"stale: pull request is stale or from a clock far off"
        nonce = body.get("nonce")  # hub/app.py: answered in the page's signed header (a replay cannot)
        return 200, self.feed_page(
            signer,
            after=int(body["after"]),
            catalogue_version=int(str(body.get("catalogue_version", 0))),
            nonce=nonce if isinstance(nonce, bytes) and 0 < len(nonce) <= 64 else b"",
        )

    def feed_page(self, station_code: str, *, after: int, catalogue_version: int, nonce: bytes = b"") -> bytes:
        station = self.store.stations[station_code]
        rowids = [r for r in self.store.feeds.get(station_code, []) if r > after]
        rowids.sort()
        rowids = rowids[: self.page_limit]
        by_row = {e.rowid: e for e in self.store.records.changes.values() if e.rowid in set(rowids)}
        changes = [by_row[r].wire() for r in rowids]
        nxt = rowids[-1] if rowids else after
        tiers = self.tiers()
        latest = max(self.store.releases, default=0)
        body: dict[str, object] = {
            "station": station_code,
            "after": after,
            "next": nxt,
            "more": len(rowids) == self.page_limit,
            "changes": changes,
            "origins": {str(w[0]): tiers.get(str(w[0]), "field") for w in changes},
            "catalogue": self.store.releases[latest] if latest > catalogue_version else None,
            "revoked": [],
            "hub_ms": self.clock(),
            "generation": self.store.generation,
        }
        return sign_document(
            "feed",
            body,
            signer=self.hub_id,
            recipient=station_code,
            signing_key=self.sign,
            seal_to=load_seal_public(station.seal_pub) if self.sealed else None,
            recipient_key=key_id(station.seal_pub) if self.sealed else "",
            extra_header={"next": nxt, "more": len(rowids) == self.page_limit, **({"nonce": nonce} if nonce else {})},
        )

    # -- views for the checkers ------------------------------------------------------------------------

    def fingerprint(self) -> bytes:
        """Digest of everything a replay or duplicate must leave alone (not the clocks or refusal log)."""
        s = self.store
        parts: list[object] = [
            s.records.fingerprint_items(),
            sorted([o, e, c.next_seq, c.last_hash] for (o, e), c in s.cursors.items()),
            sorted(s.batches),
            [[q.origin, q.epoch, q.seq, q.batch, q.reason, q.whole_batch, q.state] for q in s.quarantine],
            sorted([k, v] for k, v in s.feeds.items()),
            [list(a) for a in s.alerts],
        ]
        return hashlib.sha256(pack(parts)).digest()


def _claimed_origin(frame: bytes) -> str:
    try:
        return str(peek_header(frame).get("signer", ""))[:64]
    except RemoteProtocolError:
        return ""
