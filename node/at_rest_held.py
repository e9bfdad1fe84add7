"""Feed pages a station set aside, kept sealed at rest (issue 16).

A genuine feed page that cannot be applied is kept whole in ``feed_quarantine.frame``
(``node/feed_quarantine.py``), to look at or apply later. The hub sealed it to the station's own key,
but that key lies in the same folder (``keys.bin``): a thief who copies the folder opens the page as
the station does and reads every applicant's name, ID number, phone and address in it. So a station
that seals at rest keeps such a page HPKE-sealed to its at-rest key (``meta.at_rest_pub``,
``node/at_rest_arrivals.py``), whose private half only a signed-in person's data key unwraps: the
page is opened again only through a live session (:func:`opened`).

The page is kept whole rather than cut down to "what the review needs" because which change made it
fail is what the review is looking for, and only the whole signed page can still be verified.

A station that has a data key but whose first sign-in has not drawn the at-rest key yet keeps the page
as it came until that sign-in seals it (:func:`seal_kept`, from ``at_rest_arrivals.on_sign_in``); a
station without a data key keeps it as it always did.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from node import at_rest
from node.store import Meta
from protocol.codec import pack
from replica.errors import Refused

MAGIC = b"\x00sanji-held-page-1\x00"
DAMAGED = (
    "这份隔离的区局数据页无法解开（被挪动或改动过），请联系区局重新导出该页"
    " (a feed page kept sealed at rest does not open here)"
)
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


class Station(Protocol):
    conn: sqlite3.Connection
    meta: Meta

    @property
    def code(self) -> str: ...

    def at_rest(self) -> at_rest.AtRest | None: ...


def _info(station: str, digest: bytes) -> bytes:
    # Bound to the row's key (the SHA-256 of the page as received): a sealed page moved to another
    # row does not open.
    return b"sanji-at-rest-held/1|" + pack([station, digest])


def is_sealed(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def kept_form(st: Station, digest: bytes, page: bytes) -> bytes:
    """How a page set aside is stored: sealed to the at-rest key at a station that has one, else as
    it came (no data key: the station runs as before issue 16; no at-rest key yet: sealed at the
    first sign-in)."""
    if not at_rest.has_data_key(st.conn):
        return page
    pub = st.meta.bytes("at_rest_pub")
    if not pub:
        return page
    return MAGIC + _SUITE.encrypt(page, X25519PublicKey.from_public_bytes(pub), info=_info(st.code, digest))


def private_key(st: Station, rest: at_rest.AtRest) -> X25519PrivateKey:
    """The at-rest private key, unwrapped with the signed-in session's data key."""
    return X25519PrivateKey.from_private_bytes(rest.unwrap(st.meta.bytes("at_rest_priv")))


def opened(st: Station, digest: bytes) -> bytes | None:
    """The page kept under ``digest`` as it was received (None when none is kept). Needs a signed-in
    person at a station that seals (``Refused`` ``staff_required``/``session_locked`` otherwise)."""
    row = st.conn.execute("SELECT frame FROM feed_quarantine WHERE sha256=?", (digest,)).fetchone()
    if row is None or row[0] is None:
        return None
    blob = bytes(row[0])
    if not is_sealed(blob):
        return blob
    rest = st.at_rest()
    if rest is None:  # sealed once, and the data key is gone: nothing can open it any more
        raise Refused(DAMAGED, code="sealed_misplaced")
    try:
        return _SUITE.decrypt(blob[len(MAGIC) :], private_key(st, rest), info=_info(st.code, digest))
    except Exception as exc:  # cryptography raises its own InvalidTag/ValueError for a damaged seal
        raise Refused(DAMAGED, code="sealed_misplaced") from exc


def seal_kept(st: Station) -> int:
    """Seal every page still kept as it came (kept before the at-rest key was drawn). Call inside a
    transaction, once the at-rest key exists; returns how many were sealed."""
    rows = st.conn.execute("SELECT sha256, frame FROM feed_quarantine WHERE frame IS NOT NULL").fetchall()
    sealed = 0
    for digest, frame in rows:
        blob = bytes(frame)
        if is_sealed(blob):
            continue
        kept = kept_form(st, bytes(digest), blob)
        st.conn.execute("UPDATE feed_quarantine SET frame=? WHERE sha256=?", (kept, digest))
        sealed += 1
    return sealed
