"""The citizen's tracking code (查询码): its shape, the hub's keyed hash of it, and the admission rule.

Theory of operation. At acceptance, offline, the station draws a random code and prints it on the
受理通知书; it is the citizen's only key to the public tracking page, so it must be unguessable
(at least 60 bits), typeable by anyone (three groups of five, case and spaces or dashes ignored) and
free of characters people confuse (no 0/O, 1/I/L; no U beside V).

The code travels in the application's creation change, as the field ``tracking``, inside the station's
sealed batch. The hub takes it out the moment it opens the batch, before it admits, logs or quarantines
anything (``hub/tracking.py``): it keeps :func:`conceal` of it (HMAC-SHA256 under a key only the hub
holds) in a lookup table of its own and logs the change with ``tracking`` = :data:`HELD_ELSEWHERE`
(""). So the hub's log, its backups and every feed hold "", and no other station ever receives the code;
the fold still depends only on the set of changes. The accepting station's own copy keeps the code,
which anti-entropy must not count as a difference: :func:`without_code` is what both sides digest.

Admission (:func:`creation_problem`): the field is written only in the creation (``sync/admission.py``
lists it among the fields no later command writes), only as a code or "". The caller supplies the
randomness; this module draws none.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from protocol.codec import pack, unpack

# 30 symbols: digits 2-9 and the letters without I, L, O, U. log2(30) * 15 = 73.6 bits.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUP = 5
GROUPS = 3
LENGTH = GROUP * GROUPS
BITS = 73  # floor(15 * log2(30)): what an attacker must search
# Enough random bytes that reducing them modulo 30**15 is unbiased to well under one part in 2**40.
RANDOM_BYTES = 15
# What the hub's log holds in place of the code: the keyed hash lives only in its lookup table.
HELD_ELSEWHERE = ""
FIELD = "tracking"
# What a citizen may type: the code, spaces or dashes between groups, lower case. Anything longer is
# not a code and is refused before it is hashed.
MAX_INPUT = 40
_SEPARATORS = str.maketrans("", "", " -\u3000\u2014\u2013\uff0d")


def draw(random_bytes: bytes) -> str:
    """A code from ``random_bytes`` (:data:`RANDOM_BYTES` of them, from the caller's CSPRNG)."""
    if len(random_bytes) < RANDOM_BYTES:
        raise ValueError(f"a tracking code needs {RANDOM_BYTES} random bytes")
    n = int.from_bytes(random_bytes[:RANDOM_BYTES], "big") % (len(ALPHABET) ** LENGTH)
    symbols = []
    for _ in range(LENGTH):
        n, r = divmod(n, len(ALPHABET))
        symbols.append(ALPHABET[r])
    return grouped("".join(symbols))


def grouped(compact: str) -> str:
    """``ABCDEFGHJK…`` → ``ABCDE-FGHJK-…``: how the code is printed and shown."""
    return "-".join(compact[i : i + GROUP] for i in range(0, len(compact), GROUP))


def normalize(text: str) -> str | None:
    """The compact code a citizen typed, or ``None`` when it cannot be a code (wrong length or symbol)."""
    if not isinstance(text, str) or len(text) > MAX_INPUT:
        return None
    compact = text.translate(_SEPARATORS).upper()
    if len(compact) != LENGTH or any(c not in ALPHABET for c in compact):
        return None
    return compact


def is_code(value: object) -> bool:
    """A code as a station writes it: grouped, upper case."""
    compact = normalize(value) if isinstance(value, str) else None
    return compact is not None and grouped(compact) == value


def conceal(key: bytes, code: str) -> str:
    """The hub's keyed hash of a code (normalised first), as 64 hex digits. Without the key a leaked
    table of these cannot be searched for codes, however small the code space might look."""
    compact = normalize(code)
    if compact is None:
        raise ValueError("not a tracking code")
    return hmac.new(key, b"sanji/track\x00" + compact.encode("ascii"), hashlib.sha256).hexdigest()


def creation_problem(fields: Mapping[str, object]) -> str | None:
    """Why a new application's ``tracking`` field is not one the accept command writes, or ``None``."""
    if FIELD not in fields:
        return None  # back-entry, and applications accepted before codes existed, carry none
    value = fields[FIELD]
    if value == HELD_ELSEWHERE or is_code(value):
        return None
    return "查询码格式不对 (the tracking code has the wrong shape)"


def without_code(fields_packed: bytes) -> bytes:
    """An application change's packed fields with the code blanked: the accepting station holds the code
    where every other copy holds "", and anti-entropy compares what they have in common."""
    if FIELD.encode() not in fields_packed:
        return fields_packed  # the common case, without unpacking
    fields = unpack(fields_packed)
    if not isinstance(fields, dict) or fields.get(FIELD, HELD_ELSEWHERE) == HELD_ELSEWHERE:
        return fields_packed
    return pack({**fields, FIELD: HELD_ELSEWHERE})
