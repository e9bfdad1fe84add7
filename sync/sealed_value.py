"""The shape of a personal value as a station stores it at rest (issue 16): no keys, no crypto here.

A sealed value is a msgpack ``bin`` that starts with :data:`MAGIC` and carries ``[mask, siv, pending]``:

- ``mask``: the masked form (``sync/identity.py``), what lists show with nobody signed in;
- ``siv``: AES-SIV of the padded plaintext under the station's sealing key (``node/at_rest.py``), or
  ``None`` once minimised or while pending;
- ``pending``: a value that arrived with nobody signed in, HPKE-sealed to the station's at-rest key
  until the next sign-in seals it properly (``None`` otherwise).

Why a ``bin`` and not a msgpack extension type: every reader of ``changes``/``records`` goes through
``protocol.codec.unpack``, which refuses extension types by design (it is the wire decoder), and a
``bin`` in a text field is already refused on the wire by the model (``sync/model.check_value``), so
the hub gets plaintext or refuses without a new rule in the decoder. Personal fields are text, so a
``bin`` there is never ambiguous.
"""

from __future__ import annotations

from protocol.codec import pack, unpack
from protocol.errors import SanjiError
from sync.identity import mask_id, mask_name, mask_phone

MAGIC = b"\x00sanji-sealed-1\x00"


def is_sealed(value: object) -> bool:
    return type(value) is bytes and value.startswith(MAGIC)


def encode(mask: str, siv: bytes | None, pending: bytes | None = None) -> bytes:
    return MAGIC + pack([mask, siv, pending])


def decode(value: bytes) -> tuple[str, bytes | None, bytes | None]:
    """``(mask, siv, pending)``; a value that is not a well formed sealed value reads as an empty
    mask with nothing to open (a station's own storage, so this is damage, never an attack)."""
    try:
        raw = unpack(value[len(MAGIC) :]) if is_sealed(value) else None
    except SanjiError:
        raw = None
    if not isinstance(raw, list) or len(raw) != 3 or not isinstance(raw[0], str):
        return "", None, None
    siv = raw[1] if isinstance(raw[1], bytes) else None
    pending = raw[2] if isinstance(raw[2], bytes) else None
    return raw[0], siv, pending


def mask_of(value: object) -> object:
    """What a list shows for a stored value: the mask of a sealed one, anything else as it is."""
    return decode(value)[0] if is_sealed(value) else value  # type: ignore[arg-type]


def mask_address(address: str) -> str:
    """The first three characters (the township, typically) and stars: enough to tell two apart."""
    value = address.strip()
    if not value:
        return ""
    keep = min(3, max(0, len(value) - 2))
    return value[:keep] + "*" * (len(value) - keep)


def mask_for(name: str, plaintext: str) -> str:
    """The mask of a personal field's plaintext (the same function at station and hub)."""
    if name == "applicant_name":
        return mask_name(plaintext)
    if name == "applicant_id":
        return mask_id(plaintext)
    if name in ("applicant_phone", "phone"):
        return mask_phone(plaintext)
    return mask_address(plaintext)
