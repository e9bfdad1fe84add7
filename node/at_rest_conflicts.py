"""Personal values in the station's ``conflicts`` rows, sealed as the changes they came from (issue 16).

``replica/records.py`` records a conflict with the two cells the fold compared, values and all. At a
station those values are what the log holds: sealed under the data key when someone was signed in,
pending (HPKE-sealed to the at-rest key, ``node/at_rest_arrivals.py``) when nobody was, and plaintext
when the conflict was met before the station had a data key. :func:`seal` brings the rows of some
records to what the log's changes become at a sign-in, sealed under the data key for good; the
sign-in's walk of the log calls it for the records each chunk touched, in the same transaction, so a
row is sealed exactly when its changes are. :func:`seal_once` walks every row once, for a station whose
log was walked before conflicts were sealed.

The rows keep their ids and everything but the values: a conflict is a by-product the fold wrote,
never an input to it, so what the fold gives is unchanged. Masks stay readable, as in the lists.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

from node.at_rest import AtRest
from protocol.codec import pack, unpack
from sync import sealed_value
from sync.model import PERSONAL

# The plaintext of a pending value: (entity, record id, field, the HPKE ciphertext) -> text.
OpenPending = Callable[[str, str, str, bytes], str]

DONE = "conflicts_sealed"  # meta: every conflicts row has been walked once by seal_once


def _sealed(rest: AtRest, open_pending: OpenPending, key: tuple[str, str, str], value: object) -> object | None:
    """``value`` sealed under the data key, or None when it already is (or only its mask is left)."""
    entity, rid, name = key
    if isinstance(value, str):
        return rest.seal(entity, rid, name, value)
    if not sealed_value.is_sealed(value):
        return None  # not a personal text (an absent value): nothing to hide
    assert isinstance(value, bytes)
    _mask, siv, pending = sealed_value.decode(value)
    if siv is None and pending is not None:
        return rest.seal(entity, rid, name, open_pending(entity, rid, name, pending))
    return None


def _cell(rest: AtRest, open_pending: OpenPending, key: tuple[str, str, str], raw: bytes) -> tuple[bytes, int]:
    """A packed cell with its value sealed, and 1 when that value was plaintext (0 otherwise)."""
    cell = unpack(raw)
    assert isinstance(cell, list) and len(cell) == 4
    value = cell[2]
    sealed = _sealed(rest, open_pending, key, value)
    if sealed is None:
        return raw, 0
    return pack([cell[0], cell[1], sealed, cell[3]]), int(isinstance(value, str))


def seal(conn: sqlite3.Connection, rest: AtRest, open_pending: OpenPending, records: Iterable[tuple[str, str]]) -> int:
    """Seal the personal values in the conflicts of ``records``; returns how many were plaintext (the
    caller then scrubs, as for the log). Call inside the transaction that seals their changes."""
    plaintext = 0
    for entity, rid in records:
        personal = PERSONAL.get(entity)
        if personal is None:
            continue
        rows = conn.execute(
            "SELECT rowid, field, winner, loser FROM conflicts WHERE entity=? AND record=?", (entity, rid)
        ).fetchall()
        for rowid, field, winner_b, loser_b in rows:
            if field not in personal:
                continue
            key = (entity, rid, str(field))
            winner, plain_w = _cell(rest, open_pending, key, bytes(winner_b))
            loser, plain_l = _cell(rest, open_pending, key, bytes(loser_b))
            if winner != bytes(winner_b) or loser != bytes(loser_b):
                conn.execute("UPDATE conflicts SET winner=?, loser=? WHERE rowid=?", (winner, loser, rowid))
            plaintext += plain_w + plain_l
    return plaintext


def seal_once(conn: sqlite3.Connection, rest: AtRest, open_pending: OpenPending) -> int:
    """:func:`seal` over every record with a conflict on a personal field: for rows met before this
    station's log was walked with conflicts in mind. Call inside a transaction; returns as ``seal``."""
    entities = sorted(PERSONAL)
    rows = conn.execute(
        f"SELECT DISTINCT entity, record FROM conflicts WHERE entity IN ({','.join('?' * len(entities))})", entities
    ).fetchall()
    return seal(conn, rest, open_pending, [(str(e), str(r)) for e, r in rows])
