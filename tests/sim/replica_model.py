"""The in-memory stand-in for ``replica/records.py``: a change log keyed by ``(origin, epoch, seq)`` and
the merged records, both fed only through ``sync.fold.apply_change``.

This is the one piece of storage node and hub share, so it mirrors ``RecordStore.apply`` exactly: a
change whose key is already logged is a duplicate and is skipped, whatever its content; every new one
is logged with the next row id (the hub's feeds page by it) and merged by the real fold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from protocol.codec import pack
from sync.change import Change, change_to_wire
from sync.fold import Conflict, Record, apply_change, record_digest, values
from sync.scope import change_digest

Key = tuple[str, str]
Watch = Callable[[Key, Record, Record, Change], None]


@dataclass(frozen=True)
class Logged:
    """One logged change, with the canonical bytes both sides hash for anti-entropy."""

    rowid: int
    change: Change
    application: str
    fields_packed: bytes
    base_packed: bytes

    @property
    def digest(self) -> bytes:
        c = self.change
        return change_digest(c.origin, c.epoch, c.seq, c.hlc, c.entity, c.id, self.fields_packed, self.base_packed)

    def wire(self) -> list[object]:
        return change_to_wire(self.change)


class NumberTaken(Exception):
    """The ``applications.number`` unique index refusing a second application with the same number
    (sqlite3.IntegrityError in the real store): the whole transaction rolls back. Only a station copied
    back by hand can repeat a number (see adapter_issues.py); by default the model records the repeat
    for the operator instead (``MemRecords.duplicates``)."""


@dataclass(frozen=True)
class Applied:
    applied: int
    duplicates: int
    conflicts: tuple[Conflict, ...]
    logged: tuple[Logged, ...]


def application_of(change: Change, record: Record) -> str:
    """The application a record belongs to (replica/records.py ``application_of``)."""
    if change.entity == "application":
        return change.id
    named = change.fields.get("application")
    if isinstance(named, str):
        return named
    cell = record.get("application")
    return str(cell[2]) if cell else ""


@dataclass
class MemRecords:
    changes: dict[tuple[str, int, int], Logged] = field(default_factory=dict)
    records: dict[Key, Record] = field(default_factory=dict)
    conflicts: dict[str, Conflict] = field(default_factory=dict)
    numbers: dict[object, str] = field(default_factory=dict)  # the projection's number index
    next_rowid: int = 1
    unique_numbers: bool = True  # refuse a repeated number (the real index) or record it in duplicates
    duplicates: list[tuple[object, str, str]] = field(default_factory=list)  # (number, first id, other id)

    def apply(self, changes: Sequence[Change], authority: Callable[[str], int], watch: Watch | None = None) -> Applied:
        """Log and merge ``changes`` as one transaction: all of them, or (NumberTaken) none."""
        conflicts: list[Conflict] = []
        logged: list[Logged] = []
        merged: list[tuple[Key, Record, Record, Change]] = []
        records: dict[Key, Record] = {}
        numbers: dict[object, str | None] = {}
        repeats: list[tuple[object, str, str]] = []
        rowid = self.next_rowid
        dups = 0
        keys: set[tuple[str, int, int]] = set()
        for change in changes:
            if change.key in self.changes or change.key in keys:
                dups += 1
                continue
            keys.add(change.key)
            key = (change.entity, change.id)
            before = records[key] if key in records else self.records.get(key, {})
            entry = Logged(
                rowid, change, application_of(change, before), pack(dict(change.fields)), pack(dict(change.base))
            )
            rowid += 1
            after, found = apply_change(before, change, authority)
            if key[0] == "application":
                self._index_number(key[1], before, after, numbers, repeats)
            records[key] = after
            merged.append((key, before, after, change))
            conflicts.extend(found)
            logged.append(entry)
        # Commit: nothing above touched the store, so a refusal leaves it as it was.
        self.next_rowid = rowid
        for entry in logged:
            self.changes[entry.change.key] = entry
        self.records.update(records)
        for number, owner in numbers.items():
            if owner is None:
                self.numbers.pop(number, None)
            else:
                self.numbers[number] = owner
        for c in conflicts:
            self.conflicts.setdefault(c.conflict_id, c)
        self.duplicates.extend(repeats)
        if watch is not None:
            for key, before, after, change in merged:
                watch(key, before, after, change)
        return Applied(len(logged), dups, tuple(conflicts), tuple(logged))

    def _index_number(
        self,
        app_id: str,
        before: Record,
        after: Record,
        staged: dict[object, str | None],
        repeats: list[tuple[object, str, str]],
    ) -> None:
        old = before["number"][2] if "number" in before else None
        new = after["number"][2] if "number" in after else None
        if new == old:
            return
        if new is not None:
            owner = staged[new] if new in staged else self.numbers.get(new)
            if owner is not None and owner != app_id:
                if self.unique_numbers:
                    raise NumberTaken(f"application number {new} already names {owner}, not {app_id}")
                repeats.append((new, owner, app_id))
                return  # the number keeps naming the first application; the repeat is on record
            staged[new] = app_id
        if old is not None:
            staged[old] = None

    def copy(self) -> MemRecords:
        """A savepoint: records are replaced, never mutated, so copying the containers is enough."""
        return MemRecords(
            dict(self.changes),
            dict(self.records),
            dict(self.conflicts),
            dict(self.numbers),
            self.next_rowid,
            self.unique_numbers,
            list(self.duplicates),
        )

    def values(self, entity: str, rec_id: str) -> dict[str, object]:
        return values(self.records.get((entity, rec_id), {}))

    def has(self, origin: str, epoch: int, seq: int) -> bool:
        return (origin, epoch, seq) in self.changes

    def digest(self, key: Key) -> bytes:
        return record_digest(key[0], key[1], self.records.get(key, {}))

    def digests(self, keys: Iterable[Key]) -> dict[Key, bytes]:
        return {k: self.digest(k) for k in keys}

    def application_keys(self, apps: Iterable[str]) -> set[Key]:
        """Every record belonging to one of ``apps`` (the application itself and its ratings etc.)."""
        wanted = set(apps)
        out: set[Key] = set()
        for entry in self.changes.values():
            if entry.application in wanted:
                out.add((entry.change.entity, entry.change.id))
        return out

    def fingerprint_items(self) -> list[object]:
        """Everything a replayed or duplicated message must leave untouched, in a canonical order."""
        recs = sorted((k[0], k[1], self.digest(k)) for k in self.records)
        return [sorted(self.changes), recs, sorted(self.conflicts)]


def field_values(records: Mapping[Key, Record], key: Key) -> dict[str, object]:
    return values(records.get(key, {}))
