"""Personal values in the station's ``conflicts`` rows, sealed as the changes they came from (issue 16).

``replica/records.py`` records a conflict with the two cells the fold compared, values and all. At a
station those values are what the log holds: sealed under the data key when someone was signed in,
pending (HPKE-sealed to the at-rest key, ``node/at_rest_arrivals.py``) when nobody was, and plaintext
when the conflict was met before the station had a data key. :func:`seal` brings the rows of some
records to what the log's changes become at a sign-in, sealed under the data key for good; the
sign-in's walk of the log calls it for the records each chunk touched, in the same transaction, so a
row is sealed exactly when its changes are. :func:`seal_once` walks every row once, for a station whose
log was walked before conflicts were sealed. :func:`cut` leaves only the masks, with minimisation
(``node/at_rest_minimise.py``).

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


# What becomes of one personal value: (entity, record id, field), value -> the new value, None to keep it.
Rewrite = Callable[[tuple[str, str, str], object], object | None]


def _cell(rewrite: Rewrite, key: tuple[str, str, str], raw: bytes) -> tuple[bytes, int]:
    """A packed cell with its value rewritten, and 1 when that value was plaintext (0 otherwise)."""
    cell = unpack(raw)
    assert isinstance(cell, list) and len(cell) == 4
    value = cell[2]
    new = rewrite(key, value)
    if new is None:
        return raw, 0
    return pack([cell[0], cell[1], new, cell[3]]), int(isinstance(value, str))


def seal(conn: sqlite3.Connection, rest: AtRest, open_pending: OpenPending, records: Iterable[tuple[str, str]]) -> int:
    """Seal the personal values in the conflicts of ``records``; returns how many were plaintext (the
    caller then scrubs, as for the log). Call inside the transaction that seals their changes."""
    return _rewrite(conn, records, lambda key, value: _sealed(rest, open_pending, key, value))


def cut(conn: sqlite3.Connection, records: Iterable[tuple[str, str]]) -> None:
    """Leave only the masks of the sealed values in the conflicts of ``records`` (no key needed: nothing
    is opened). Call inside the transaction that cuts their changes."""
    _rewrite(conn, records, lambda _key, value: _masked(value))


def _masked(value: object) -> object | None:
    if not sealed_value.is_sealed(value):
        return None
    assert isinstance(value, bytes)
    mask, siv, pending = sealed_value.decode(value)
    return None if siv is None and pending is None else sealed_value.encode(mask, None)


def _rewrite(conn: sqlite3.Connection, records: Iterable[tuple[str, str]], rewrite: Rewrite) -> int:
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
            winner, plain_w = _cell(rewrite, key, bytes(winner_b))
            loser, plain_l = _cell(rewrite, key, bytes(loser_b))
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
