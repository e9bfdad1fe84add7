"""Epochs: how a station restored from a backup (or cloned) avoids ever reusing a seq.

Seqs are gapless within an epoch. A station whose database went back in time would hand out seqs the
hub already holds with other content: a fork. So a restore starts a new epoch at once, and a fork the
hub reports (for a raw file copy nobody told us about) does the same and re-issues, under the new
epoch, the changes the hub did not take. The hub keeps the forked batch in quarantine with an alert.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from node.station import Station
from node.store import DB_NAME
from protocol.codec import unpack
from replica.db import backup_to, connect
from replica.errors import Refused
from replica.ids import now_ms as wall_now_ms
from sync import outbox
from sync.change import Change
from sync.hlc import tick
from sync.outbox import BatchState, Event, step


def start_new_epoch(st: Station) -> int:
    """Move to the next epoch. Call inside a transaction. Returns the new epoch."""
    epoch = st.meta.int("epoch", 1) + 1
    st.meta.set("epoch", epoch)
    st.meta.set("seq", 0)
    st.meta.set("batched_seq", 0)
    st.meta.set("chain", bytes(32))
    return epoch


def reissue_after_fork(st: Station, forked_hash: bytes) -> int:
    """The hub holds other content for our seqs: re-issue what it did not take under a new epoch.
    Call inside a transaction. Returns how many changes were re-issued."""
    old = st.meta.int("epoch", 1)
    row = st.conn.execute("SELECT epoch, first_seq FROM outbox WHERE hash=?", (forked_hash,)).fetchone()
    if row is None or int(row[0]) != old:
        return 0  # unknown, or an older epoch already left behind: nothing more to re-issue
    first = int(row[1])
    moved = sorted(outbox.moved_by(Event.REISSUED))
    rows = st.conn.execute(
        f"SELECT hash, state FROM outbox WHERE epoch=? AND last_seq>=? AND state IN ({','.join('?' * len(moved))})",
        (old, first, *moved),
    ).fetchall()
    for h, state in rows:
        moved_to = step(BatchState(str(state)), Event.REISSUED).state
        st.conn.execute("UPDATE outbox SET state=? WHERE hash=?", (moved_to.value, h))
    return _reissue(st, old, first)


def _reissue(st: Station, old: int, first: int) -> int:
    """Start a new epoch and re-issue our changes of epoch ``old`` from seq ``first`` under it."""
    rows = st.conn.execute(
        "SELECT seq, hlc, entity, rid, fields, base, author, hub_seal FROM changes"
        " WHERE origin=? AND epoch=? AND seq>=? ORDER BY seq",
        (st.code, old, first),
    ).fetchall()
    st.conn.execute("DELETE FROM changes WHERE origin=? AND epoch=? AND seq>=?", (st.code, old, first))
    epoch = start_new_epoch(st)
    reissued = []
    hlc = st.meta.int("hlc")
    # Each re-issued change gets a new stamp; a later one that saw an earlier one's version now names
    # the new stamp, so the re-issued chain shows what its author saw (the hub checks it, sync/admission).
    restamped: dict[int, int] = {}
    seals: list[tuple[object, int]] = []
    for i, (_seq, old_hlc, entity, rid, fields, base, author, hub_seal) in enumerate(rows, start=1):
        hlc = tick(hlc, st.clock())
        restamped[int(old_hlc)] = hlc
        f, b = unpack(fields), unpack(base)
        assert isinstance(f, dict) and isinstance(b, dict)
        b = {name: restamped.get(seen, seen) for name, seen in b.items()}
        reissued.append(Change(st.code, epoch, i, hlc, entity, rid, f, b, str(author)))  # still who did it
        if hub_seal is not None:
            seals.append((hub_seal, i))
    st.records.apply(reissued)
    # Sealed personal values travel with the same hub seal (it binds the record, not epoch, seq or
    # HLC). The plaintext digest names the old stamp: it is computed again at the next sign-in
    # (node/at_rest.refresh_digests); until then the record's leaf is the sealed one.
    st.conn.executemany(
        "UPDATE changes SET hub_seal=? WHERE origin=? AND epoch=? AND seq=?",
        [(seal, st.code, epoch, seq) for seal, seq in seals],
    )
    st.meta.set("seq", len(reissued))
    st.meta.set("hlc", hlc)
    return len(reissued)


def backup(st: Station, out: Path) -> int:
    return backup_to(st.db, out)


def restore(folder: Path, source: Path, *, clock: Callable[[], int] = wall_now_ms) -> dict[str, object]:
    """Put a backup back and start a new epoch before anything else can write. ``clock`` stamps the
    re-issued changes (tests and the simulator pass their own, as to ``Station``)."""
    if not source.is_file():
        raise Refused(f"{source} 不是文件：请核对备份文件的路径 (not a file)")
    current = Station(folder, clock=clock)
    code = current.code
    # What must not go back in time with the backup: the catalogue (never a lower release) and the
    # clock (never a stamp already used).
    newer_catalogues = current.conn.execute(
        "SELECT version, frame, issued_at, expires_at, received_ms FROM catalogues"
    ).fetchall()
    hlc_now = current.meta.int("hlc")
    # Nor the pull requests left at the township's relay since the backup: the pages answering them
    # are the hub's, and a nonce forgotten would make each look like the relay replaying (naming it).
    relay_nonces = current.meta.get("relay_nonces", [])
    current.close()
    try:
        probe = connect(source)
        row = probe.conn.execute("SELECT value FROM meta WHERE key='station'").fetchone()
        probe.conn.close()
    except sqlite3.DatabaseError as exc:
        raise Refused(f"{source} 不是站点的备份文件：请核对备份文件的路径 (not a station backup: {exc})") from exc
    if row is None or unpack(row[0]) != code:
        raise Refused(
            f"{source} 是别的站点的备份，不是 {code} 的：这个文件夹的密钥属于 {code}，请用本站的备份"
            " (a backup of another station)"
        )
    target = folder / DB_NAME
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)
    st = Station(folder, clock=clock)
    try:
        with st.transaction():
            for row in newer_catalogues:
                st.conn.execute(
                    "INSERT OR IGNORE INTO catalogues (version, frame, issued_at, expires_at, received_ms)"
                    " VALUES (?,?,?,?,?)",
                    row,
                )
            st.meta.set("hlc", max(hlc_now, st.meta.int("hlc")))
            if relay_nonces:
                st.meta.set("relay_nonces", relay_nonces)
            old = st.meta.int("epoch", 1)
            first = st.meta.int("batched_seq") + 1
            # Changes the backup holds but never put in a batch: re-issue them in the new epoch so
            # they travel (the old epoch's seqs after the backup point may have been used already).
            reissued = _reissue(st, old, first)
            epoch = st.meta.int("epoch")
        return {"restored": True, "station": st.code, "epoch": epoch, "reissued": reissued}
    finally:
        st.close()
