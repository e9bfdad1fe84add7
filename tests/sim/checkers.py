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

from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol.codec import pack
from sync.change import Change
from sync.fold import Record
from sync.hlc import DEFAULT_MAX_DRIFT_MS, HUB_QUARANTINE_AHEAD_MS, wall_ms
from sync.workflow import TERMINAL, Status
from tests.sim.hub_model import SimHub
from tests.sim.node_model import SimNode
from tests.sim.replica_model import Key, MemRecords, Watch


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
    restores: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # who -> (backup ms, restore ms)
    hub_got: dict[str, int] = field(default_factory=dict)  # application -> when the hub first merged it

    def fail(self, kind: str, detail: str) -> None:
        if len(self.violations) < 50:
            self.violations.append(Violation(kind, self.now - self.start_ms, detail))

    # -- step invariants --------------------------------------------------------------------------------

    def watcher(self, replica: str) -> Watch:
        """The merge hook of one replica."""

        def watch(key: Key, before: Record, after: Record, change: Change) -> None:
            if key[0] == "application" and _terminal(before.get("status")) and not _terminal(after.get("status")):
                self.fail(
                    "terminal_overwritten",
                    f"{replica}: {key[1]} went from {before['status'][2]} to "
                    f"{after.get('status', (0, '', None))[2]} by {change.key}",
                )
            if _content(change) not in self.authored.get(change.key, set()):
                self.fail("unexpected_change", f"{replica} merged {change.key}, which no station wrote as such")
            if replica == "hub" and key[0] == "application" and "number" in change.fields:
                self.hub_got.setdefault(key[1], self.now)
            if (change.key, _content(change)) in self.forbidden and replica != change.origin:  # its author has it
                self.fail("forbidden_applied", f"{replica} applied {change.key}, written outside its author's rights")

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

    def stamped(self, who: str, previous: int, new: int) -> None:
        if new <= previous:
            self.fail("hlc_not_monotonic", f"{who}: stamp {new} after {previous}")

    def admitted(self, change: Change, hub_ms: int) -> None:
        ahead = wall_ms(change.hlc) - hub_ms
        if ahead > HUB_QUARANTINE_AHEAD_MS:
            self.fail("future_admitted", f"hub admitted {change.key} stamped {ahead // 1000} s ahead")

    def clocks(self, nodes: Iterable[SimNode], hub: SimHub, hub_wall_high: int) -> None:
        for node in nodes:
            if wall_ms(node.store.hlc) > node.wall_high + DEFAULT_MAX_DRIFT_MS + 1:
                self.fail(
                    "hlc_dragged",
                    f"{node.code}: HLC {wall_ms(node.store.hlc) - node.wall_high} ms "
                    "ahead of anything its clock showed",
                )
        if wall_ms(hub.store.hlc) > hub_wall_high + HUB_QUARANTINE_AHEAD_MS:
            self.fail("hlc_dragged", f"hub: HLC {wall_ms(hub.store.hlc) - hub_wall_high} ms ahead of hub time")

    def catalogue(self, node: SimNode) -> None:
        version = node.catalogue_version
        seen = self.catalogue_seen.get(node.code, 0)
        if version < seen:
            self.fail("catalogue_rollback", f"{node.code}: catalogue release {seen} → {version}")
        self.catalogue_seen[node.code] = version  # report each fall once

    def gapless(self, hub: SimHub, origin: str) -> None:
        """The hub's cursor for an origin never passes a seq it does not hold (applied or held)."""
        held = {k[1:] for k in hub.store.records.changes if k[0] == origin}
        held |= {(q.epoch, q.seq) for q in hub.store.quarantine if q.origin == origin and not q.whole_batch}
        for (o, epoch), cursor in hub.store.cursors.items():
            if o == origin:
                missing = [n for n in range(1, cursor.next_seq) if (epoch, n) not in held]
                if missing:
                    self.fail(
                        "cursor_hole",
                        f"hub cursor of {origin} epoch {epoch} is at {cursor.next_seq} "
                        f"but seqs {missing[:5]} were never taken",
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

    def scope_mismatch(self, node: SimNode, hub: SimHub, lost: set[str]) -> list[str]:
        """Differences between a station's records and the hub's copy of the station's scope, leaving out
        the remnants of applications that restores lost everywhere (a decision whose application is gone)."""
        apps = []
        for key in hub.store.records.records:
            if key[0] != "application":
                continue
            row = hub.projection(key[1])
            assert row is not None
            station = hub.store.stations.get(row[0])
            if row[0] == node.code or (
                station is not None and station.parent == node.code and hub.decided_at(row[1]) in ("township", "street")
            ):
                apps.append(key[1])
        forged = lost | {rec_id for entity, rec_id in self.tainted if entity == "application"}
        theirs = hub.store.records.application_keys(apps) - hub.store.records.application_keys(forged)
        mine = node.record_keys() - node.store.records.application_keys(forged)
        out = [f"only at {node.code}: {k}" for k in sorted(mine - theirs)]
        out += [f"only at hub: {k}" for k in sorted(theirs - mine)]
        for k in sorted(mine & theirs):
            if node.store.records.digest(k) != hub.store.records.digest(k):
                out.append(f"digest differs: {k}")
        return out

    def restored(self, who: str, backup_ms: int, restore_ms: int) -> None:
        self.restores.setdefault(who, []).append((backup_ms, restore_ms))

    def _rolled_back(self, who: str, at: int) -> bool:
        """Whether ``who`` was put back to a backup older than ``at`` (and so lost what it held since)."""
        return any(backup < at <= restore for backup, restore in self.restores.get(who, []))

    def lost_to_restores(
        self, accepted: dict[str, tuple[str, str, int]], nodes: dict[str, SimNode], hub: SimHub
    ) -> set[str]:
        """Applications whose acceptance no copy holds any more, each for a reason: its station went back
        to a backup older than it, and the hub either never got it or went back to an older backup too."""
        holders = [n.store.records for n in nodes.values()] + [hub.store.records]
        lost = set()
        for app_id, (code, _number, at) in accepted.items():
            if any(_holds_creation(r, app_id) for r in holders):
                continue
            got = self.hub_got.get(app_id)
            if self._rolled_back(code, at) and (got is None or self._rolled_back("hub", got)):
                lost.add(app_id)
        return lost

    def accepted_at_hub(self, accepted: dict[str, tuple[str, str, int]], nodes: dict[str, SimNode], hub: SimHub) -> int:
        """Every application a station committed is at the hub, unless restores lost it everywhere."""
        lost = self.lost_to_restores(accepted, nodes, hub)
        for app_id, (code, number, _at) in accepted.items():
            if app_id in lost:
                continue
            at_hub = hub.store.records.records.get(("application", app_id))
            if at_hub is None or not _holds_creation(hub.store.records, app_id):
                self.fail("accepted_lost", f"{number} ({app_id}), accepted at {code}, is not at the hub")
                continue
            if at_hub.get("number", (0, "", None))[2] != number:
                self.fail("accepted_changed", f"{number} ({app_id}) has another number at the hub")
        return len(lost)

    def numbers_unique(self, hub: SimHub, cloned: set[str]) -> None:
        """An application number names one application, except where a station copied back by hand
        handed out its rewound counter again: then the hub must have put the repeat on record."""
        seen: dict[object, str] = {}
        recorded = {d[0] for d in hub.store.records.duplicates}
        for key, record in hub.store.records.records.items():
            if key[0] == "application" and "number" in record:
                number = record["number"][2]
                if number in seen and seen[number] != key[1]:
                    station = record.get("station", (0, "", None))[2]
                    if station not in cloned or number not in recorded:
                        self.fail("number_reused", f"{number} names both {seen[number]} and {key[1]}")
                seen[number] = key[1]


def _holds_creation(records: MemRecords, app_id: str) -> bool:
    return any(
        e.change.entity == "application" and e.change.id == app_id and "number" in e.change.fields
        for e in records.changes.values()
    )


def _content(change: Change) -> bytes:
    return pack([change.hlc, change.entity, change.id, dict(change.fields), dict(change.base)])
