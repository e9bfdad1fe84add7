"""Strategies and the station world shared by several hostile-input test modules.

``MSGPACK_VALUES`` and ``HEADER_VALUES`` feed the route tests (``test_routes``, ``test_sync_routes``);
``World`` is what the ``world`` fixture in ``conftest.py`` enrols for the signed-content tests
(``test_signed_content``, ``test_signed_batches``, ``test_signed_requests``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from hypothesis import strategies as st

from protocol.frame import MAGIC

from .harness import TOWNSHIP, Sender, Served

# -- what a route is fed ---------------------------------------------------------------------------------

# What a sender can encode at all: msgpack has no integers outside int64/uint64.
MSGPACK_INTS = st.integers(-(2**63), 2**64 - 1)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    MSGPACK_INTS,
    st.text(max_size=30),
    st.binary(max_size=30),
    st.floats(allow_nan=False, allow_infinity=False),
)
MSGPACK_VALUES = st.recursive(
    _SCALAR,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10), kids, max_size=4)),
    max_leaves=10,
)

HEADER_VALUES = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=300),
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=200).map(lambda b: base64.b64encode(MAGIC + b).decode()),
)


# -- who sends signed content ------------------------------------------------------------------------------

V1, V2 = f"{TOWNSHIP}-01", f"{TOWNSHIP}-02"


@dataclass
class World:
    served: Served
    township: Sender
    v1: Sender
    v2: Sender
    own_app: dict[str, str]  # station code -> id of an application it created
    serial: int = 0

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial
