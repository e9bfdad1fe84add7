"""Operator passwords: scrypt hashes, never the password itself.

One format with the stations' staff accounts, so it lives once, in ``sync/staff_password.py``
(``scrypt$N$r$p$<salt base64>$<digest base64>``, N=2^14, r=8, p=1): the hashes stored before this
module used it keep checking, and a hash read back is bounded there (a stored hash naming a huge N
matches nothing instead of taking gigabytes). This module only draws the salt, which sync/ may not.
"""

from __future__ import annotations

import os

from sync import staff_password
from sync.staff_password import MIN_LENGTH, check_password

__all__ = ["MIN_LENGTH", "check_password", "hash_password"]


def hash_password(password: str) -> str:
    return staff_password.hash_password(password, os.urandom(staff_password.SALT_BYTES))
