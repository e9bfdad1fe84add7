"""Staff password hashes: one format the hub writes and a station checks, offline.

Issue 16: the hub creates a station's staff accounts and sends them down the station's sealed feed as
password hashes, never as passwords, and a station with no hub yet makes its first administrator
itself. Both ends must therefore agree on one hash format without importing each other (node/ and
hub/ never do), so it lives here, below both. The format is the one the hub's operator passwords
already use (``hub/passwords.py``): ``scrypt$N$r$p$<salt base64>$<digest base64>``, a 32-byte digest
from ``hashlib.scrypt``; the hub's operator passwords use these functions too, so no stored hash changed.

Pure, like the rest of sync/: the salt is drawn by the caller and handed in.

A hash arrives from a feed or sits in a database file somebody could edit, so reading one is strict:
the cost parameters are bounded (a hash naming N = 2**30 would make one sign-in take gigabytes of
memory) and anything malformed simply fails to match instead of raising.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

SCHEME = "scrypt"
DIGEST_BYTES = 32
SALT_BYTES = 16
# The shortest password staff may choose; the same floor as the hub's operators (hub/passwords.py).
MIN_LENGTH = 8
# Bounds on parameters read back from a stored hash. N = 2**17 with r = 8 needs 128 MiB, which a
# station PC still has; anything above is refused rather than attempted.
MAX_LOG2_N = 17
MAX_R = 16
MAX_P = 4
# hashlib.scrypt refuses by default above 32 MiB; let the largest accepted parameters through.
_MAXMEM = 129 * 1024 * 1024 * MAX_P


@dataclass(frozen=True)
class ScryptParams:
    """scrypt's cost: N (a power of two), r, p. Recorded beside every hash and wrapped key, so the
    defaults can be raised later without making old ones unreadable."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def valid(self) -> bool:
        return (
            2 <= self.n <= 2**MAX_LOG2_N
            and self.n & (self.n - 1) == 0
            and 1 <= self.r <= MAX_R
            and 1 <= self.p <= MAX_P
        )


DEFAULT_PARAMS = ScryptParams()


def scrypt(secret: bytes, salt: bytes, params: ScryptParams, length: int = DIGEST_BYTES) -> bytes:
    """scrypt with the bounds above; ``ValueError`` for parameters outside them."""
    if not params.valid():
        raise ValueError(f"scrypt parameters out of bounds: {params}")
    return hashlib.scrypt(secret, salt=salt, n=params.n, r=params.r, p=params.p, maxmem=_MAXMEM, dklen=length)


def hash_password(password: str, salt: bytes, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """The stored form of ``password`` under ``salt`` (16 random bytes the caller draws)."""
    if len(salt) < SALT_BYTES:
        raise ValueError("a password salt has at least 16 bytes")
    digest = scrypt(password.encode("utf-8"), salt, params)
    b64 = base64.b64encode
    return f"{SCHEME}${params.n}${params.r}${params.p}${b64(salt).decode()}${b64(digest).decode()}"


def parse_hash(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    """``(params, salt, digest)`` of a stored hash, or None when it is not one this build can check."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        params = ScryptParams(int(parts[1]), int(parts[2]), int(parts[3]))
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    if not params.valid() or len(salt) < SALT_BYTES or len(digest) != DIGEST_BYTES:
        return None
    return params, salt, digest


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``. A malformed or out-of-bounds hash matches nothing."""
    parsed = parse_hash(stored)
    if parsed is None:
        return False
    params, salt, digest = parsed
    return hmac.compare_digest(scrypt(password.encode("utf-8"), salt, params), digest)


def well_formed(stored: str) -> bool:
    """Whether a hash (from a feed, say) is one a station could check at sign-in."""
    return parse_hash(stored) is not None
