"""The station's SQLite database: shared replica tables plus what only a station keeps.

``meta`` holds the station's settings and counters, each documented in :data:`META_FIELDS`.
``outbox`` holds every batch the station has built, byte for byte, so a retry sends exactly the same
frame (the hub recognises it as a duplicate) and the hash chain never forks by accident.
``catalogues`` keeps each signed release as received. ``origins`` remembers the tier of every origin
whose changes reach this station, which the fold needs to weigh final outcomes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import sqlite_utils
from sqlite_utils import Migrations

from node import sealing_schema, staff_schema
from protocol.codec import pack, unpack
from replica import folders, list_schema, merkle_store, records
from replica.db import connect, quick_check
from sync import outbox
from sync.outbox import BatchState

DB_NAME = "node.db"

META_FIELDS = {
    "horizon": "[epoch, seq, feed]: our changes after seq were written having applied our feed up to feed",
    "station": "this station's code, fixed at enrolment",
    "name": "this station's display name",
    "tier": "village, community, township, street or field",
    "parent": "the township or street centre above it, or ''",
    "hub_url": "where the hub listens, '' for a station that only travels by USB",
    "hub_id": "the hub's id (the district code); recipient of every batch",
    "hub_sign_pub": "the hub's online signing key (Ed25519): the one its current key list names",
    "hub_seal_pub": "the hub's X25519 public key batches are sealed to",
    "hub_seal_key_id": "key id of hub_seal_pub",
    "hub_root_pub": "the hub's root key, pinned at enrolment from the token's fingerprint (node/hubkeys.py)",
    "hub_keys_version": "version of the newest hub key list this station follows (0: none yet)",
    "hub_keys_expires": "when that key list expires (ms); past it, nothing from the hub is taken",
    "enrolled": "True once the hub holds this station's keys (false for USB-only enrolment so far)",
    "enrol_proof": "HMAC over our public keys with the one-time token, for a USB-only enrolment",
    "field_devices": "codes of the district's field devices (township/street only, from the feed)",
    "epoch": "current epoch; a restore from backup starts a new one so seqs are never reused",
    "seq": "last seq assigned in the current epoch",
    "hlc": "last HLC stamp issued or observed",
    "counter": "last application counter (for 办件编号)",
    "batched_seq": "last seq of the current epoch already put into an outbox batch",
    "chain": "hash of the last batch built in the current epoch",
    "feed_cursor": "how far into its hub feed this station has applied",
    "hub_generation": "the hub's generation the feed cursor refers to; a hub restored from backup has a new one",
    "staff_version": "the newest version of the hub's staff accounts seen in the feed; pulls ask for what is newer",
    "created_ms": "when this station folder was made (ms): the nightly catch-up counts missed runs from it",
    "last_import": "wall time (ms) of the last `node import` that took a hub file: a USB-only station's sync",
    "last_sync": "wall time (ms) of the last sync round that reached the hub",
    "last_error": "why the last sync round failed, or ''",
    "hub_time": "the newest hub time (ms) carried by a genuine feed page this station applied",
    "stale_rounds": "sync rounds since the hub last answered a pull's nonce with a genuine page",
    "catalogue_warning": "why the current catalogue is not trusted to be current, or ''",
    "relay_url": "a village's township relay listener, used when the hub is out of reach, or ''",
    "relay_nonces": "nonces of this station's pull requests left at the relay, not yet answered (hex)",
    "last_relay_round": "wall time (ms) of the last sync round that went through the township's relay",
    "relay_listen_url": "a township's relay listener as its villages reach it (node serve --relay-url/-host/-port)",
    "relay_listen_note": "why a township tells its villages no relay address, or that only its own PC can use it",
    "feed_relay_url": "the township relay the hub's feed names for this village (node/relay_address.py)",
    "feed_relay_version": "the hub's version of feed_relay_url: a lower one never replaces it",
    "relay_alert": "the township relay's last misbehaviour this station caught (node/relay_alert.py), or None",
    "relay_left": "{batch hash hex: ms} when each unsettled batch was first left at the relay (node/relay_withheld.py)",
    "relay_pull_since": "since when (ms) a pull request left at the relay has waited for a page, or None",
    "relay_quiet_since": "since when (ms) the relay has not answered (its withholding clocks stand still), or None",
    "relay_asked": "how many pull requests this station has left at its relay (node/relay_skipped.py)",
    "relay_asked_at": "{nonce hex: its place in relay_asked} for the pull requests still answerable",
    "relay_handed": "{batch hash hex: relay_asked when first left at the relay} for unsettled batches",
    "report_echo": "True once the hub's pages echo the relay report it recorded (node/relay_alert.py)",
    "at_rest_pub": "X25519 key personal values arriving with nobody signed in are sealed to (node/at_rest_arrivals.py)",
    "at_rest_priv": "its private half, sealed under the data key",
    "reseal_rowid": "the change log is sealed at rest up to this rowid (node/at_rest_arrivals.reseal)",
    "scrub_due": "True while plaintext sealed over may linger in free pages or the WAL (at_rest_arrivals.scrub)",
    "conflicts_sealed": "True once every conflicts row was walked for personal values (node/at_rest_conflicts.py)",
}


def state_list(states: Iterable[BatchState]) -> str:
    """An SQL list of outbox states, spelled by sync/outbox.py's codes (constants, never input), so a
    query keeps using the outbox_state index."""
    return "(" + ", ".join(f"'{s.value}'" for s in sorted(states)) + ")"


UNSETTLED_SQL = state_list(outbox.UNSETTLED)  # offered at every push, counted as pending
HELD_SQL = state_list(outbox.HELD)  # the hub holds their seqs and signed for them

migrations = Migrations("sanji.node")


@migrations()
def m001_node_tables(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    db.execute(
        """CREATE TABLE outbox (
            hash BLOB PRIMARY KEY,         -- sha256 of the batch header: the batch's id
            epoch INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
            frame BLOB NOT NULL,           -- the signed, sealed batch exactly as sent
            state TEXT NOT NULL,           -- a sync/outbox.py BatchState code
            reason TEXT NOT NULL DEFAULT '',  -- the hub's words when it did not apply the batch
            receipt BLOB,                  -- the hub-signed receipt, kept for citizens and audits
            created_ms INTEGER NOT NULL, receipted_ms INTEGER)"""
    )
    db.execute("CREATE INDEX outbox_state ON outbox(state, epoch, first_seq)")
    db.execute(
        """CREATE TABLE catalogues (
            version INTEGER PRIMARY KEY, frame BLOB NOT NULL,
            issued_at TEXT NOT NULL, expires_at TEXT NOT NULL, received_ms INTEGER NOT NULL)"""
    )
    db.execute("CREATE TABLE origins (code TEXT PRIMARY KEY, tier TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE sync_log (
            id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL,
            ok INTEGER NOT NULL, pushed INTEGER NOT NULL, pulled INTEGER NOT NULL, detail TEXT NOT NULL)"""
    )


@migrations()
def m002_nightly(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE nightly_runs (
            id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL, ended_ms INTEGER, trigger TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT 'running', figures BLOB)"""
    )
    db.execute("DROP INDEX applications_number")
    db.execute("CREATE INDEX applications_number ON applications(number)")


# Tables of node/blobs.py and node/feed_quarantine.py. They were created on first use, behind a lock, with
# a race between two processes opening a new folder; as sets of the store they exist from its first open,
# and a folder made before gains them at its next open. The set names are the ones the folders recorded.
blob_migrations = Migrations("sanji.node.blobs")
feed_quarantine_migrations = Migrations("sanji.node.feed_quarantine")


@blob_migrations()
def m001_blob_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE blobs (
            sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, added_ms INTEGER NOT NULL,
            at_hub_ms INTEGER,            -- when the hub confirmed it holds the whole blob
            purged_ms INTEGER)            -- when the local copy was deleted after the retention period"""
    )
    db.execute(
        """CREATE TABLE blob_refs (
            report TEXT NOT NULL, sha256 TEXT NOT NULL, role TEXT NOT NULL,   -- photo | signature
            PRIMARY KEY (report, sha256, role)) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX blob_refs_sha ON blob_refs(sha256)")
    # Records whose citizen details were redacted here (local only; see node/purge.py).
    db.execute(
        "CREATE TABLE purged (entity TEXT NOT NULL, id TEXT NOT NULL, purged_ms INTEGER NOT NULL,"
        " PRIMARY KEY (entity, id)) WITHOUT ROWID"
    )


@blob_migrations()
def m002_purged_leaf(db: sqlite_utils.Database) -> None:
    # The Merkle leaf the record had before its details were cut here, so that anti-entropy keeps
    # comparing what both sides agreed on instead of flagging the local redaction every night.
    db.execute("ALTER TABLE purged ADD COLUMN leaf BLOB")


@feed_quarantine_migrations()
def m001_feed_quarantine(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE feed_quarantine (
            sha256 BLOB PRIMARY KEY,        -- of the page as received (of the reason, for one never read)
            first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, times INTEGER NOT NULL,
            source TEXT NOT NULL,           -- 'http' or 'file:NAME'
            authentic INTEGER NOT NULL,     -- 1: signed by the pinned hub key, and skipped
            skipped_from INTEGER, skipped_to INTEGER,  -- the feed cursor before and after, when skipped
            reason TEXT NOT NULL,
            frame BLOB)                     -- kept only for a genuine page, to look at or apply later"""
    )


# The staff UI's audit of revealed ID numbers and phones (node/ui.py). It was created when `node serve`
# started the UI; as a set of the store it exists from its first open. The set name is the recorded one.
ui_migrations = Migrations("sanji.node.ui")


@ui_migrations()
def m001_ui_audit(db: sqlite_utils.Database) -> None:
    # Who looked at a citizen's full ID number or phone at this window, and why.
    db.execute(
        "CREATE TABLE ui_audit (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, staff TEXT NOT NULL,"
        " action TEXT NOT NULL, target TEXT NOT NULL, reason TEXT NOT NULL)"
    )


def open_store(folder: Path) -> sqlite_utils.Database:
    path = folder / DB_NAME
    folders.need_station(folder)  # names what the folder is instead, and what to type
    return _open(path)


def create_store(folder: Path) -> sqlite_utils.Database:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DB_NAME
    if path.exists():
        raise FileExistsError(f"{folder} 里已经有站点了：请换一个新的空文件夹 (already holds a Sanji node)")
    return _open(path)


def _open(path: Path) -> sqlite_utils.Database:
    db = connect(path)
    sets = (records.migrations, list_schema.migrations, merkle_store.migrations, migrations, blob_migrations)
    # staff_schema: staff accounts and the data key's check (issue 16); empty until someone is made.
    for migration_set in (
        *sets,
        feed_quarantine_migrations,
        ui_migrations,
        staff_schema.migrations,
        sealing_schema.migrations,
    ):
        migration_set.apply(db)
    return db


def check(db: sqlite_utils.Database) -> str:
    return quick_check(db)


class Meta:
    """Typed access to the ``meta`` table. Writes join the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, key: str, default: object = None) -> object:
        if key not in META_FIELDS:
            raise KeyError(key)
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else unpack(row[0])

    def text(self, key: str, default: str = "") -> str:
        v = self.get(key, default)
        return v if isinstance(v, str) else default

    def int(self, key: str, default: int = 0) -> int:
        v = self.get(key, default)
        return v if isinstance(v, int) and not isinstance(v, bool) else default

    def bytes(self, key: str, default: bytes = b"") -> bytes:
        v = self.get(key, default)
        return v if isinstance(v, bytes) else default

    def set(self, key: str, value: object) -> None:
        if key not in META_FIELDS:
            raise KeyError(key)
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, pack(value)),
        )
