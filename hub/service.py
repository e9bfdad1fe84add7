"""The hub as a library: one object per hub folder, used by the CLI and the aiohttp app alike.

It owns the store, the hub's keys, its own HLC and seq (the hub is an origin too: its decisions are
changes like any station's), and the catalogue release it currently publishes. What it knows is
:class:`hub.state.HubState`; :class:`Hub` adds what it does with the modules that read that state
(creating and opening a folder with its keyring, publishing a release, writing its own change).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from hub import keyring
from hub.admission import Gate
from hub.feed import Lookup, fan_out
from hub.release import sign_release
from hub.state import PUBLISHED_FILE, HubState, RevokedError
from hub.store import HubStore
from protocol.release import Release
from replica import folders
from replica.errors import NotApplied, Refused
from replica.ids import now_ms as wall_now_ms
from replica.keyfile import create_keys, load_keys
from sync.catalogue import CatalogueError, catalogue_to_doc, parse_catalogue
from sync.change import Change
from sync.model import Actor

BUILTIN_CATALOGUE = Path(__file__).resolve().parent.parent / "sanji" / "data" / "catalogue-sample.json"
CATALOGUE_VALID_DAYS = 180


def new_generation() -> str:
    """A fresh id for this copy of the hub's history; a restore from backup takes a new one so that
    stations know their feed cursors no longer apply."""
    return os.urandom(8).hex()


__all__ = ["BUILTIN_CATALOGUE", "Hub", "RevokedError", "new_generation"]


class Hub(HubState):
    """One hub folder, opened. ``clock`` returns wall time in ms (tests pass a fake one)."""

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
        database: str | None = None,
    ) -> Hub:
        """A new hub in ``folder``: its store is ``hub.db`` there, or with ``database`` (a PostgreSQL
        DSN) that database, which the folder then names; the keys stay in the folder either way."""
        doc = dict(catalogue) if catalogue is not None else json.loads(BUILTIN_CATALOGUE.read_text("utf-8"))
        try:
            parse_catalogue(doc)
        except CatalogueError as exc:
            raise Refused(f"事项目录有误，区局未建立：请改正目录文件后重试 (catalogue refused: {exc})") from exc
        folders.need_new(folder, "区局")  # never a hub mixed into a station's folder, or a second one
        with folders.made_whole(folder):  # a failure half-way leaves nothing behind
            return cls._create(folder, district=district, name=name, doc=doc, clock=clock, database=database)

    @classmethod
    def _create(
        cls,
        folder: Path,
        *,
        district: str,
        name: str,
        doc: dict[str, object],
        clock: Callable[[], int],
        database: str | None,
    ) -> Hub:
        store = HubStore.create(folder, database=database)
        keys = create_keys(folder)
        with store.transaction():
            store.set_meta("hub_id", district)
            store.set_meta("name", name)
            store.set_meta("hlc", 0)
            store.set_meta("seq", 0)
            store.set_meta("generation", new_generation())
            store.set_meta("created_ms", clock())  # the nightly catch-up counts missed runs from here
        hub = cls(folder, store, keys, clock)
        keyring.create(folder, keys, hub_id=district, now_ms=clock(), legacy=False)  # the root and key list 1
        hub.publish(doc)
        return hub

    @classmethod
    def open(cls, folder: Path, *, clock: Callable[[], int] = wall_now_ms) -> Hub:
        store = HubStore.open(folder)
        hub = cls(folder, store, load_keys(folder), clock)
        keyring.ensure(hub)  # a hub folder from before root keys gets its root here, once
        return hub

    def publish(self, doc: Mapping[str, object], *, valid_days: int = CATALOGUE_VALID_DAYS) -> int:
        """Sign and store the next catalogue release. Versions only go up, without gaps or repeats."""
        from replica.ids import iso_from_ms

        now = self.clock()
        issued_at = iso_from_ms(now)
        expires_at = iso_from_ms(now + valid_days * 86_400_000)
        # The version is taken inside the write transaction: another process (a second hub worker, the
        # CLI) publishing at the same moment waits for this one and then takes the next number.
        with self.store.transaction():
            # Past every version ever published, even those a restore from backup lost: a version number
            # names one release only, and stations may hold the lost one.
            version = self.published_up_to() + 1
            body = dict(doc)
            body["version"] = version
            body["issued_at"], body["expires_at"] = issued_at, expires_at
            try:
                cat = parse_catalogue(body)
            except CatalogueError as exc:
                raise Refused(f"事项目录有误，未发布：请改正目录文件后重试 (catalogue refused: {exc})") from exc
            # Refused (exit 2, with the figures) unless every station could receive and open it.
            frame = sign_release(self, Release(version, issued_at, expires_at, catalogue_to_doc(cat)))
            self.store.add_release(version, frame, issued_at, expires_at, now)
            # Written while the transaction still holds the write lock, so two publishers never write it
            # out of order; if the commit then failed, the number is skipped, never reused.
            high = self.folder / PUBLISHED_FILE
            high.with_suffix(".tmp").write_text(str(version))
            high.with_suffix(".tmp").replace(high)
        return version

    # -- the hub's own changes ---------------------------------------------------------------------

    def write(
        self, entity: str, rec_id: str, fields: Mapping[str, object], base: Mapping[str, int], *, check: bool = True
    ) -> Change:
        """One hub change, logged, merged and fanned out. Call inside a transaction.

        The hub's own commands ask the same admission question as a station's change (the hub may make
        every move, but only moves the workflow has), and a change that does not take effect raises
        :class:`NotApplied` so no command reports a success it did not have; raising rolls back the
        caller's transaction. ``check=False`` is for choosing between two values the hub already
        admitted (conflict override), which is not a new move; that caller checks the effect itself."""
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
