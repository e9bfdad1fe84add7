"""The public half of a staff member's grant key: how a hub-made account receives the station's data
key without anyone at the station knowing its password.

The hub makes a station's accounts (``sanji hub add-staff``) and sends them down the feed as password
hashes, but the data key never leaves the station, so the hub cannot wrap it for the new person, and
the station cannot wrap it under a password it never sees. The way round is a key pair both ends can
reach from the password: at ``add-staff`` the hub, which holds the password for that moment, derives
an X25519 key pair from it (scrypt under a salt of its own, distinct from the hash's salt) and sends
only the public half with the account. Any signed-in colleague's session at the station can then seal
the data key to that public key (a pending grant); at the person's first sign-in the station derives
the private half from the password just typed, opens the grant, and wraps the key under the password
like any other copy (``node/staff_grants.py``).

Pure: the salt is handed in, and the derivation is the same on both sides by construction.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from protocol.keys import public_bytes, sealing_key_from_seed
from sync.staff_password import DEFAULT_PARAMS, SALT_BYTES, SCHEME, ScryptParams, parse_hash, scrypt

# Prefixed to the password so a grant seed can never equal a password digest, whatever the salts.
_LABEL = b"sanji/staff-grant/1|"


def grant_private(password: str, salt: bytes, params: ScryptParams = DEFAULT_PARAMS) -> X25519PrivateKey:
    """The private half, made from scrypt of the password under the grant's own salt."""
    if len(salt) < SALT_BYTES:
        raise ValueError("a grant salt has at least 16 bytes")
    return sealing_key_from_seed(scrypt(_LABEL + password.encode("utf-8"), salt, params))


def grant_key(password: str, salt: bytes, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """What the hub sends with the account: ``scrypt$N$r$p$<salt>$<X25519 public key>``, the shape of
    a password hash, so the cost travels with it and can be raised later."""
    public = public_bytes(grant_private(password, salt, params))
    b64 = base64.b64encode
    return f"{SCHEME}${params.n}${params.r}${params.p}${b64(salt).decode()}${b64(public).decode()}"


def parse_grant_key(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    """``(params, salt, public key)``, or None for anything that is not a grant key this build reads."""
    return parse_hash(stored)  # same shape: the 32-byte digest's place holds the 32-byte public key
