"""Personal values that arrive with nobody signed in, and sealing what is not sealed yet (issue 16).

Feed pages, reconciliation repair and USB imports bring the hub's plaintext changes in unattended, so
there is no data key to seal them with. :func:`incoming` (``StationRecords``' hook on every change
applied) stores such a value as *pending*: its mask, and the plaintext HPKE-sealed to the station's
at-rest key (``meta.at_rest_pub``, X25519; the private half is kept in meta sealed under the data
key), which a thief's copy cannot open. With someone signed in, it is sealed at once instead.

:func:`reseal` runs when someone signs in: it walks the change log above ``meta.reseal_rowid`` in
short transactions (resumable, the mark moves per chunk) and seals under the data key every value
still pending or still plaintext (a station that had data before it had a key: the migration), gives
each such change its plaintext digest and a hub seal (of any origin: a repair may re-send it), writes
the exact-search tokens, and re-folds the touched records so their state and lists are what a fold
of the sealed changes gives.
When it sealed plaintext it then vacuums and truncates the WAL, so no old page keeps it. The
``conflicts`` rows of the records it touched are sealed with their changes (``node/at_rest_conflicts.py``).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Protocol

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from node import at_rest, at_rest_conflicts, at_rest_held
from node.sealed_fields import Sealer
from node.staff_session import StaffSession
from node.store import Meta
from protocol.codec import pack, pack_map, unpack
from protocol.hub_seal import seal_values
from protocol.keys import load_seal_public
from replica import refold
from replica.records import RecordStore
from sync import sealed_value
from sync.change import Change
from sync.model import PERSONAL
from sync.scope import change_digest


class Station(Protocol):
    """What of ``node.station.Station`` this module uses (it is imported by the station)."""

    conn: sqlite3.Connection
    meta: Meta
    records: RecordStore
    session: StaffSession | None

    @property
    def code(self) -> str: ...

    def clock(self) -> int: ...

    def transaction(self) -> AbstractContextManager[object]: ...

    def at_rest(self) -> at_rest.AtRest | None: ...

    def search_sealer(self) -> Sealer: ...


_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
CHUNK = 500
BACKUP_NOTICE = (
    "本站已有的群众信息已加密保存。注意：此前做的备份（sanji node backup 或复制的文件夹）仍含明文，请妥善销毁"
    " (personal data is now sealed at rest; backups taken before still hold it in plaintext)"
)


def _info(station: str, entity: str, rec_id: str, name: str) -> bytes:
    return b"sanji-at-rest-pending/1|" + pack([station, entity, rec_id, name])


def ensure_keys(st: Station, rest: at_rest.AtRest) -> int:
    """Draw the at-rest key pair once (a session is live): the public half in clear, the private
    half sealed under the data key. Feed pages set aside before it existed are sealed to it in the
    same transaction (``node/at_rest_held.py``); returns how many."""
    if st.meta.bytes("at_rest_pub"):
        return 0
    priv = X25519PrivateKey.generate()
    raw = priv.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    with st.transaction():
        st.meta.set("at_rest_pub", priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        st.meta.set("at_rest_priv", rest.wrap(raw))
        sealed = at_rest_held.seal_kept(st)
        if sealed:
            st.meta.set("scrub_due", True)  # the pages were kept as they came: no old copy may stay
    return sealed


def _plain(change: Change) -> dict[str, str]:
    personal = PERSONAL.get(change.entity, frozenset())
    return {k: v for k, v in change.fields.items() if k in personal and isinstance(v, str)}


def hub_seal_of(st: Station, origin: str, entity: str, rec_id: str, plain: dict[str, str]) -> bytes | None:
    """``plain`` sealed to the hub (``protocol/hub_seal.py``), kept beside a change of any origin whose
    values are sealed here: a repair may have to re-send it to a hub restored from an older backup, and
    only the hub can open it (a thief's copy cannot). None before the station knows the hub's key."""
    pub = st.meta.bytes("hub_seal_pub")
    if not pub or not plain:
        return None
    key = st.meta.text("hub_seal_key_id")
    return pack(seal_values(plain, load_seal_public(pub), key, origin=origin, entity=entity, rec_id=rec_id))


def incoming(st: Station, change: Change) -> tuple[Change, bytes | None, bytes | None]:
    """How a change about to be logged is stored: its plaintext personal values sealed (someone is
    signed in) or pending (nobody is), with the plaintext's digest and its values sealed to the hub.
    Unchanged at a station without a data key, and before its first sign-in drew the at-rest key
    (``reseal`` seals those then)."""
    plain = _plain(change)
    if not plain or not at_rest.has_data_key(st.conn):
        return change, None, None
    c = change
    digest = change_digest(
        c.origin, c.epoch, c.seq, c.hlc, c.entity, c.id, pack_map(dict(c.fields)), pack_map(dict(c.base))
    )
    fields = dict(c.fields)
    if st.session is not None and st.session.live(st.clock()):
        rest = st.at_rest()
        assert rest is not None
        for name, value in plain.items():
            fields[name] = rest.seal(c.entity, c.id, name, value)
        return replace(c, fields=fields), digest, hub_seal_of(st, c.origin, c.entity, c.id, plain)
    pub = st.meta.bytes("at_rest_pub")
    if not pub:
        return change, None, None
    public = X25519PublicKey.from_public_bytes(pub)
    for name, value in plain.items():
        pending = _SUITE.encrypt(value.encode("utf-8"), public, info=_info(st.code, c.entity, c.id, name))
        fields[name] = sealed_value.encode(sealed_value.mask_for(name, value), None, pending)
    return replace(c, fields=fields), digest, hub_seal_of(st, c.origin, c.entity, c.id, plain)


NOTHING = {"records": 0, "refolded": 0, "walked": 0, "plaintext": 0}


def on_sign_in(st: Station, progress: object = None, *, chunk: int = CHUNK) -> dict[str, int]:
    """What a sign-in does for sealing: draw the at-rest key pair if there is none yet (so values that
    arrive later, unattended, are held pending rather than plain), then :func:`reseal` if the log grew."""
    rest = st.at_rest() if at_rest.has_data_key(st.conn) else None
    if rest is None:
        return dict(NOTHING)
    ensure_keys(st, rest)
    if not pending_work(st):
        finish_scrub(st)  # a scrub a killed process left due
        return dict(NOTHING)
    return reseal(st, progress, chunk=chunk)


def pending_work(st: Station) -> bool:
    """Whether the log has grown past what :func:`reseal` last walked, or its conflicts rows were never
    walked (a cheap check per request)."""
    if not at_rest.has_data_key(st.conn):
        return False
    if not st.meta.get(at_rest_conflicts.DONE):
        return True
    top = st.conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM changes").fetchone()[0]
    return int(top) > st.meta.int("reseal_rowid")


def remaining(st: Station) -> int:
    """How many changes :func:`reseal` has still to walk (the window's progress page counts them)."""
    mark = st.meta.int("reseal_rowid")
    return int(st.conn.execute("SELECT COUNT(*) FROM changes WHERE rowid > ?", (mark,)).fetchone()[0])


def reseal(st: Station, progress: object = None, *, chunk: int = CHUNK) -> dict[str, int]:
    """Seal, under the signed-in session's data key, everything in the log above the mark that is
    pending or plaintext. Returns counts; ``progress(done_rows)`` is called per chunk when given.

    Each chunk is one transaction: its changes sealed, the records they touch refolded from them, and
    the mark moved, together or not at all. A process killed between chunks (the window closed, the
    PC switched off) leaves every record either still as it was or sealed exactly once, never a
    sealed log under a plaintext record; the next sign-in goes on from the mark."""
    rest = st.at_rest()
    if rest is None:
        return dict(NOTHING)
    ensure_keys(st, rest)
    priv = at_rest_held.private_key(st, rest)

    def open_pending(entity: str, rid: str, name: str, pending: bytes) -> str:
        return _SUITE.decrypt(pending, priv, info=_info(st.code, entity, rid, name)).decode("utf-8")

    if not st.meta.get(at_rest_conflicts.DONE):  # rows met before the walk sealed conflicts too
        with st.transaction():
            if at_rest_conflicts.seal_once(st.conn, rest, open_pending):
                st.meta.set("scrub_due", True)
            st.meta.set(at_rest_conflicts.DONE, True)
    done = dict(NOTHING)
    while True:
        with st.transaction():
            mark = st.meta.int("reseal_rowid")
            rows = st.conn.execute(
                "SELECT rowid, origin, epoch, seq, hlc, entity, rid, fields, base, digest, hub_seal FROM changes"
                " WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (mark, chunk),
            ).fetchall()
            if not rows:
                break
            touched: set[tuple[str, str]] = set()
            plaintext = 0
            for row in rows:
                found = _reseal_one(st, rest, priv, row)
                if found is not None:
                    touched.add(found[0])
                    plaintext += int(found[1])
            done["refolded"] += len(refold.fix(st.records, sorted(touched), write=nullcontext))
            # The conflicts these changes met hold the same values: sealed with them, in this transaction.
            if at_rest_conflicts.seal(st.conn, rest, open_pending, sorted(touched)) or plaintext:
                st.meta.set("scrub_due", True)  # kept across a kill: the scrub runs at the next sign-in
            st.meta.set("reseal_rowid", int(rows[-1][0]))
        done["records"] += len(touched)
        done["plaintext"] += plaintext
        done["walked"] += len(rows)
        if callable(progress):
            progress(done["walked"])
    finish_scrub(st)
    return done


def _reseal_one(
    st: Station, rest: at_rest.AtRest, priv: X25519PrivateKey, row: tuple[object, ...]
) -> tuple[tuple[str, str], bool] | None:
    rowid, origin, epoch, seq, hlc, entity, rid, fields_b, base_b, digest, hub_seal = row
    entity, rid, origin = str(entity), str(rid), str(origin)
    personal = PERSONAL.get(entity)
    if personal is None:
        return None
    fields = unpack(bytes(fields_b))  # type: ignore[arg-type]
    assert isinstance(fields, dict)
    names = [k for k in fields if k in personal]
    if not names:
        return None
    plain: dict[str, str] = {}
    changed = was_plaintext = False
    for name in names:
        value = fields[name]
        if isinstance(value, str):
            plain[name], changed, was_plaintext = value, True, True
        elif sealed_value.is_sealed(value):
            _mask, siv, pending = sealed_value.decode(value)
            if pending is not None:
                text = _SUITE.decrypt(pending, priv, info=_info(st.code, entity, rid, name)).decode("utf-8")
                plain[name], changed = text, True
            elif siv is not None:
                plain[name] = str(rest.open(entity, rid, name, value))
            else:
                return None  # minimised: only the mask is left, nothing to seal or digest
    if not changed and digest is not None:
        return None
    for name, text in plain.items():
        fields[name] = rest.seal(entity, rid, name, text)
    base = unpack(bytes(base_b))  # type: ignore[arg-type]
    assert isinstance(base, dict)
    plain_fields = {**fields, **plain}
    new_digest = change_digest(
        origin,
        int(epoch),
        int(seq),
        int(hlc),
        entity,
        rid,
        pack_map(plain_fields),
        pack_map(base),  # type: ignore[call-overload]
    )
    seal = hub_seal if hub_seal is not None else hub_seal_of(st, origin, entity, rid, plain)  # any origin's
    st.conn.execute(
        "UPDATE changes SET fields=?, digest=?, hub_seal=? WHERE rowid=?",
        (pack_map(fields), new_digest, seal, rowid),
    )
    if entity == "application":
        at_rest.write_tokens(st.conn, st.search_sealer(), rid, plain_fields)
    return (entity, rid), was_plaintext


def scrub(st: Station) -> None:
    """No plaintext left in free pages or the WAL: secure_delete is on at every station; vacuum and
    truncate the WAL."""
    st.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    st.conn.execute("VACUUM")
    st.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def finish_scrub(st: Station) -> None:
    """The scrub plaintext sealed over made due (``meta.scrub_due``), if it has not run yet. Outside a
    transaction (VACUUM cannot run inside one)."""
    if st.meta.get("scrub_due"):
        scrub(st)
        with st.transaction():
            st.meta.set("scrub_due", False)
