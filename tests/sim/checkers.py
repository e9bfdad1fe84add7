"""The properties every run must keep: checked as each step happens, and once more after healing.

Step invariants (hooked into every merge, stamp and admission): a terminal status is never replaced
by a non-terminal one; every station's HLC only moves forward and is never dragged far ahead of its own
clock; the hub admits no far-future stamp; a station's catalogue version never goes down; a replayed or
duplicated message changes nothing; nothing is merged anywhere that no one wrote, or that its author
wrote outside its rights; a station takes nothing signed by a hub key its current key list does not
name; a feed page replayed by a frozen network is never applied, and flags the station stale by the
end of the first round it answered. Final checks (after the last fault and at most three healing rounds): every
accepted application is at the hub (unless restores lost every copy of it); every station's records
equal the hub's copy of its scope, digest for digest; numbers are unique; no queue is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocol.codec import pack, unpack
from sync.change import Change
from sync.fold import Record
from sync.hlc import DEFAULT_MAX_DRIFT_MS, HUB_QUARANTINE_AHEAD_MS, wall_ms
from sync.workflow import TERMINAL, Status
from tests.sim.district import HubDoor, Node
from tests.sim.probes import Key, Watch


@dataclass(frozen=True)
class Violation:
    kind: str
    at: int
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] t+{self.at / 3_600_000:.2f}h: {self.detail}"


def _terminal(cell: object) -> bool:
    if not isinstance(cell, tuple):
        return False
    try:
        return Status(str(cell[2])) in TERMINAL
    except ValueError:
        return False


@dataclass
class Checks:
    start_ms: int
    now: int = 0
    violations: list[Violation] = field(default_factory=list)
    authored: dict[tuple[str, int, int], set[bytes]] = field(default_factory=dict)
    # Changes written outside their author's rights, by key and content (a station copied back by hand
    # reuses keys for other, honest content).
    forbidden: set[tuple[tuple[str, int, int], bytes]] = field(default_factory=set)
    # Records a compromised station forged: its own view of them may rightly differ from the hub's.
    tainted: set[tuple[str, str]] = field(default_factory=set)
    catalogue_seen: dict[str, int] = field(default_factory=dict)
    own_high: dict[str, int] = field(default_factory=dict)
    stamps: dict[str, int] = field(default_factory=dict)  # each station's HLC as of the last step
    restores: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # who -> (backup ms, restore ms)
    hub_got: dict[str, int] = field(default_factory=dict)  # application -> when the hub first merged it

    def fail(self, kind: str, detail: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(Violation(kind, self.now - self.start_ms, detail))

    # -- step invariants --------------------------------------------------------------------------------

    def watcher(self, replica: str, own: str, hub_clock: Callable[[], int] | None) -> Watch:
        """The merge probe of one replica (district.py): ``own`` is its own origin code, whose changes it
        writes itself; ``hub_clock`` is set for the hub, which admits no far-future stamp."""

        def watch(key: Key, before: Record, after: Record, change: Change) -> None:
            if key[0] == "application" and _terminal(before.get("status")) and not _terminal(after.get("status")):
                self.fail(
                    "terminal_overwritten",
                    f"{replica}: {key[1]} went from {before['status'][2]} to "
                    f"{after.get('status', (0, '', None))[2]} by {change.key}",
                )
            if change.origin == own:
                return  # its own write (authored_by is told once the write returns)
            if _content(change) not in self.authored.get(change.key, set()):
                self.fail("unexpected_change", f"{replica} merged {change.key}, which no station wrote as such")
            if hub_clock is not None and key[0] == "application" and "number" in change.fields:
                self.hub_got.setdefault(key[1], self.now)
            if (change.key, _content(change)) in self.forbidden:
                self.fail("forbidden_applied", f"{replica} applied {change.key}, written outside its author's rights")
            if hub_clock is not None:
                ahead = wall_ms(change.hlc) - hub_clock()
                if ahead > HUB_QUARANTINE_AHEAD_MS:
                    self.fail("future_admitted", f"hub admitted {change.key} stamped {ahead // 1000} s ahead")

        return watch

    def forbid(self, change: Change) -> None:
        """Register a change written outside its author's rights: no other replica may ever merge it."""
        self.forbidden.add((change.key, _content(change)))

    def authored_by(self, change: Change) -> None:
        """Register a change some replica really wrote; only these may ever be merged anywhere. A station
        copied back by hand reuses keys with new content: both versions were really written.

        Its stamp must also be later than every stamp its author wrote before, across restores too: a
        station's later write must never sort before its earlier ones."""
        self.authored.setdefault(change.key, set()).add(_content(change))
        high = self.own_high.get(change.origin, -1)
        if change.hlc <= high:
            self.fail("hlc_not_monotonic", f"{change.origin} wrote {change.key} at {change.hlc}, not after {high}")
        self.own_high[change.origin] = max(high, change.hlc)

    def clocks(self, nodes: Iterable[Node], door: HubDoor, hub_wall_high: int) -> None:
        """Every HLC only moves forward (a raw copy-back excepted: ``stamps`` forgets the station), and is
        never dragged far ahead of what its own clock showed."""
        for node in nodes:
            stamp = node.meta("hlc")
            if stamp < self.stamps.get(node.code, 0):
                self.fail("hlc_not_monotonic", f"{node.code}: stamp {stamp} after {self.stamps[node.code]}")
            self.stamps[node.code] = stamp
            if wall_ms(stamp) > node.wall_high + DEFAULT_MAX_DRIFT_MS + 1:
                self.fail(
                    "hlc_dragged",
                    f"{node.code}: HLC {wall_ms(stamp) - node.wall_high} ms ahead of anything its clock showed",
                )
        stamp = int(str(door.hub.store.get_meta("hlc", 0)))
        if wall_ms(stamp) > hub_wall_high + HUB_QUARANTINE_AHEAD_MS:
            self.fail("hlc_dragged", f"hub: HLC {wall_ms(stamp) - hub_wall_high} ms ahead of hub time")

    def catalogue(self, node: Node) -> None:
        version = node.catalogue_version
        seen = self.catalogue_seen.get(node.code, 0)
        if version < seen:
            self.fail("catalogue_rollback", f"{node.code}: catalogue release {seen} → {version}")
        self.catalogue_seen[node.code] = version  # report each fall once

    def gapless(self, door: HubDoor, origin: str) -> None:
        """The hub's cursor for an origin never passes a seq it does not hold (applied or held)."""
        conn = door.hub.store.conn
        held = {(int(e), int(n)) for e, n in conn.execute("SELECT epoch, seq FROM changes WHERE origin=?", (origin,))}
        held |= {
            (int(e), int(n))
            for e, n in conn.execute("SELECT epoch, seq FROM quarantine WHERE origin=? AND whole_batch=0", (origin,))
        }
        for epoch, next_seq in conn.execute("SELECT epoch, next_seq FROM cursors WHERE origin=?", (origin,)):
            missing = [n for n in range(1, int(next_seq)) if (int(epoch), n) not in held]
            if missing:
                self.fail(
                    "cursor_hole",
                    f"hub cursor of {origin} epoch {epoch} is at {next_seq} but seqs {missing[:5]} were never taken",
                )

    def unchanged(self, what: str, before: bytes, after: bytes) -> None:
        if before != after:
            self.fail("replay_changed_state", what)

    def signed_by_listed(self, code: str, kind: str, signer_key: str, listed_key: str) -> None:
        """A station takes from the hub only what the online key of its current key list signed (the
        key the hub's own list of that version names): never a key the root removed, nor any other."""
        if signer_key != listed_key:
            self.fail(
                "unlisted_key_accepted",
                f"{code} took a hub {kind} signed by {signer_key}, not by its listed key {listed_key}",
            )

    def unchanged_by_replay(self, code: str, before: bytes, after: bytes) -> None:
        """A page replayed by a frozen network is never applied: cursor, records and releases stay."""
        if before != after:
            self.fail("frozen_page_applied", f"{code} applied a replayed feed page")

    def flagged_stale(self, code: str, stale_rounds: int) -> None:
        """The bound: a round whose pulls only a replay answered ends with the station flagged stale."""
        if stale_rounds < 1:
            self.fail("freeze_unflagged", f"{code}: a round answered only by a replayed page left it unflagged")

    # -- after healing ----------------------------------------------------------------------------------

    def scope_mismatch(self, node: Node, door: HubDoor, lost: set[str]) -> list[str]:
        """Differences between a station's records and the hub's copy of the station's scope, leaving out
        the remnants of applications that restores lost everywhere (a decision whose application is gone)."""
        hub = door.hub
        apps = []
        for app_id, station_code, item in hub.store.conn.execute("SELECT id, station, item FROM applications"):
            station = hub.store.station(str(station_code))
            if station_code == node.code or (
                station is not None
                and station.parent == node.code
                and hub.decided_at(str(item)) in ("township", "street")
            ):
                apps.append(str(app_id))
        forged = lost | {rec_id for entity, rec_id in self.tainted if entity == "application"}
        # A station's own change the hub holds in quarantine and never applied as it was (held for its
        # clock, say, and released as a new hub change, or rejected) stays in the station's records:
        # that record may rightly differ from the hub's, which shows the held change to its operator.
        held = held_records(hub.store.conn)
        theirs = application_keys(hub.store.conn, apps) - application_keys(hub.store.conn, forged) - held
        mine = {(str(e), str(i)) for e, i in node.st.conn.execute("SELECT entity, id FROM records")}
        mine -= application_keys(node.st.conn, forged) | held
        out = [f"only at {node.code}: {k}" for k in sorted(mine - theirs)]
        out += [f"only at hub: {k}" for k in sorted(theirs - mine)]
        for k in sorted(mine & theirs):
            if record_state(node.st.conn, k) != record_state(hub.store.conn, k):
                out.append(f"digest differs: {k}")
        return out

    def restored(self, who: str, backup_ms: int, restore_ms: int) -> None:
        self.restores.setdefault(who, []).append((backup_ms, restore_ms))

    def _rolled_back(self, who: str, at: int) -> bool:
        """Whether ``who`` was put back to a backup older than ``at`` (and so lost what it held since)."""
        return any(backup < at <= restore for backup, restore in self.restores.get(who, []))

    def lost_to_restores(
        self, accepted: dict[str, tuple[str, str, int]], nodes: dict[str, Node], door: HubDoor
    ) -> set[str]:
        """Applications whose acceptance no copy holds any more, each for a reason: its station went back
        to a backup older than it, and the hub either never got it or went back to an older backup too."""
        holders = [n.st.conn for n in nodes.values()] + [door.hub.store.conn]
        lost = set()
        for app_id, (code, _number, at) in accepted.items():
            if any(holds_creation(conn, app_id) for conn in holders):
                continue
            got = self.hub_got.get(app_id)
            if self._rolled_back(code, at) and (got is None or self._rolled_back("hub", got)):
                lost.add(app_id)
        return lost

    def accepted_at_hub(
        self, accepted: dict[str, tuple[str, str, int]], nodes: dict[str, Node], door: HubDoor, cloned: set[str]
    ) -> int:
        """Every application a station committed is at the hub, unless restores lost it everywhere. A station
        copied back by hand may hand out a number again: the hub then holds that application for its
        operator (admission's ``duplicate_number``), which counts as at the hub, never dropped."""
        lost = self.lost_to_restores(accepted, nodes, door)
        conn = door.hub.store.conn
        for app_id, (code, number, _at) in accepted.items():
            if app_id in lost:
                continue
            if code in cloned and held_creation(conn, app_id):
                continue
            row = conn.execute("SELECT number FROM applications WHERE id=?", (app_id,)).fetchone()
            if row is None or not holds_creation(conn, app_id):
                self.fail("accepted_lost", f"{number} ({app_id}), accepted at {code}, is not at the hub")
                continue
            if row[0] != number:
                self.fail("accepted_changed", f"{number} ({app_id}) has another number at the hub")
        return len(lost)

    def numbers_unique(self, door: HubDoor, cloned: set[str]) -> None:
        """An application number names one application, except where a station copied back by hand
        handed out its rewound counter again (the hub's nightly report lists such repeats)."""
        seen: dict[object, str] = {}
        for app_id, number, station in door.hub.store.conn.execute(
            "SELECT id, number, station FROM applications WHERE number IS NOT NULL ORDER BY id"
        ):
            if number in seen and seen[number] != app_id and station not in cloned:
                self.fail("number_reused", f"{number} names both {seen[number]} and {app_id}")
            seen[number] = app_id


def application_keys(conn: object, apps: Iterable[str]) -> set[Key]:
    """Every record belonging to one of ``apps`` (the application itself and its ratings etc.)."""
    wanted = sorted(set(apps))
    out: set[Key] = set()
    for i in range(0, len(wanted), 500):
        part = wanted[i : i + 500]
        out |= {
            (str(e), str(r))
            for e, r in conn.execute(  # type: ignore[attr-defined]
                f"SELECT DISTINCT entity, rid FROM changes WHERE application IN ({','.join('?' * len(part))})", part
            )
        }
    return out


def held_creation(conn: object, app_id: str) -> bool:
    """Whether the hub holds the creation of this application in quarantine, open for its operator."""
    for (raw,) in conn.execute("SELECT raw FROM quarantine WHERE state='open' AND whole_batch=0"):  # type: ignore[attr-defined]
        wire = unpack(bytes(raw))
        creation = isinstance(wire, list) and len(wire) > 6 and isinstance(wire[6], dict) and "number" in wire[6]
        if creation and wire[4:6] == ["application", app_id]:  # type: ignore[index]
            return True
    return False


def held_records(conn: object) -> set[Key]:
    """Records with a change the hub holds in quarantine (not a whole batch) but never applied as it was."""
    out: set[Key] = set()
    for origin, epoch, seq, raw in conn.execute(  # type: ignore[attr-defined]
        "SELECT origin, epoch, seq, raw FROM quarantine WHERE whole_batch=0"
    ):
        applied = conn.execute(  # type: ignore[attr-defined]
            "SELECT 1 FROM changes WHERE origin=? AND epoch=? AND seq=?", (origin, epoch, seq)
        ).fetchone()
        wire = unpack(bytes(raw)) if applied is None else None
        if isinstance(wire, list) and len(wire) > 5:
            out.add((str(wire[4]), str(wire[5])))
    return out


def record_state(conn: object, key: Key) -> bytes | None:
    """A record's stored state, but for the citizen's tracking code: the accepting station keeps it where
    the hub and every other station hold "" (sync/tracking.py), so it is compared blanked."""
    row = conn.execute("SELECT state FROM records WHERE entity=? AND id=?", key).fetchone()  # type: ignore[attr-defined]
    if row is None:
        return None
    state = unpack(bytes(row[0]))
    cell = state.get("tracking") if isinstance(state, dict) else None
    if isinstance(cell, list) and len(cell) == 4 and cell[2] != "":
        return pack({**state, "tracking": [*cell[:2], "", cell[3]]})  # type: ignore[dict-item]
    return bytes(row[0])


def holds_creation(conn: object, app_id: str) -> bool:
    for (fields,) in conn.execute(  # type: ignore[attr-defined]
        "SELECT fields FROM changes WHERE entity='application' AND rid=?", (app_id,)
    ):
        value = unpack(bytes(fields))
        if isinstance(value, dict) and "number" in value:
            return True
    return False


def _content(change: Change) -> bytes:
    # What the author wrote, as every replica holds it: the hub takes the citizen's tracking code out of
    # a creation before it merges it (hub/tracking.py), so the code is compared blanked.
    fields = dict(change.fields)
    if fields.get("tracking"):
        fields["tracking"] = ""
    return pack([change.hlc, change.entity, change.id, fields, dict(change.base)])
