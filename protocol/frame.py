"""The one signed container: `b"SJF1"` + canonical msgpack `[header_bytes, body_bytes, signature]`.

The signature covers only the header, and the header pins the body by its SHA-256, so a receiver can
authenticate a frame of any size after decoding nothing but a few kilobytes of header. Opening is split
into `verify_frame` (authenticity, addressing, integrity) and `open_payload` (decrypt, inflate,
decode) so that a caller can decide, between the two, whether it wants the body at all: a revoked
station, a duplicate batch or a fork is recognised from the header alone.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from protocol.codec import DEFAULT_LIMITS, FORMAT_VERSION, HEADER_LIMITS, Limits, pack, unpack
from protocol.errors import (
    DecryptError,
    DigestError,
    LocalProtocolError,
    MalformedError,
    RemoteProtocolError,
    SignatureError,
    TooLargeError,
    UnknownKeyError,
    UnsupportedError,
    WrongRecipientError,
)
from protocol.keys import is_key_id, key_id, public_bytes
from protocol.limits import FRAME_MAX_BYTES, PAYLOAD_MAX_BYTES

MAGIC = b"SJF1"
CODEC = "zlib"
BROADCAST = "*"
SIGNATURE_BYTES = 64
DIGEST_BYTES = 32

# A distinct tag means a signature made for some other purpose with the same key can never be
# replayed as a frame signature, and a future frame version cannot be confused with this one.
_SIGN_DOMAIN = b"sanji-frame-v1\x00"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)

# seal_frame computes these; a caller supplying them would be overruled, so refuse instead.
_RESERVED = frozenset({"v", "codec", "sealed", "body_sha256", "signer_key"})

VerifyKey = Callable[[str, str], Ed25519PublicKey | None]
UnsealKey = Callable[[str], X25519PrivateKey | None]


@dataclass(frozen=True)
class VerifiedFrame:
    """A frame whose signature, recipient and body digest have been checked. The body is still opaque."""

    header: dict[str, object]
    header_bytes: bytes
    header_hash: bytes
    body: bytes

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def signer(self) -> str:
        return str(self.header["signer"])

    @property
    def sealed(self) -> bool:
        return self.header["sealed"] is True


def seal_info(recipient: str, recipient_key: str) -> bytes:
    """HPKE `info`: binds the ciphertext to the addressee and key named in the signed header."""
    return b"sanji/1|" + recipient.encode("utf-8") + b"|" + recipient_key.encode("utf-8")


def _hpke_seal(plaintext: bytes, public: X25519PublicKey, info: bytes) -> bytes:
    try:
        return _SUITE.encrypt(plaintext, public, info=info)
    except ValueError as exc:
        raise LocalProtocolError(f"cannot seal to this X25519 key: {exc}") from exc


def _hpke_open(ciphertext: bytes, private: X25519PrivateKey, info: bytes) -> bytes:
    try:
        return _SUITE.decrypt(ciphertext, private, info=info)
    except MemoryError:
        raise
    except Exception as exc:
        raise DecryptError("the sealed body could not be decrypted with our key for the recipient it names") from exc


def _sign_header(header_bytes: bytes, signing_key: Ed25519PrivateKey) -> bytes:
    return signing_key.sign(_SIGN_DOMAIN + header_bytes)


def _encode_frame(header_bytes: bytes, body: bytes, signature: bytes) -> bytes:
    return MAGIC + pack([header_bytes, body, signature])


def _require_str(header: dict[str, object], field: str, *, allow_empty: bool = False) -> str:
    value = header.get(field)
    if not isinstance(value, str) or (not allow_empty and not value):
        raise LocalProtocolError(f"frame header needs a {'' if allow_empty else 'non-empty '}str {field!r}")
    return value


def seal_frame(
    header: dict[str, object],
    payload: object,
    *,
    signing_key: Ed25519PrivateKey,
    seal_to: X25519PublicKey | None = None,
    compress_level: int = 6,
) -> bytes:
    """Encode, compress, optionally seal, and sign `payload` under `header` (see `seal_frame_hashed`)."""
    return seal_frame_hashed(header, payload, signing_key=signing_key, seal_to=seal_to, compress_level=compress_level)[
        0
    ]


def seal_frame_hashed(
    header: dict[str, object],
    payload: object,
    *,
    signing_key: Ed25519PrivateKey,
    seal_to: X25519PublicKey | None = None,
    compress_level: int = 6,
) -> tuple[bytes, bytes]:
    """Encode, compress, optionally seal, and sign `payload` under `header`: the frame and its header
    hash, so a sender never has to verify its own frame to learn the hash.

    `header` must hold `kind`, `signer`, `recipient` and `recipient_key`, plus any kind-specific
    fields; `v`, `codec`, `sealed`, `body_sha256` and `signer_key` are filled in here. When sealing,
    an empty `recipient_key` is filled with the id of `seal_to`, and a different one is refused.
    """
    if not isinstance(header, dict):
        raise LocalProtocolError("frame header must be a dict")
    clash = _RESERVED & header.keys()
    if clash:
        raise LocalProtocolError(f"frame header fields {sorted(clash)} are computed by seal_frame")
    if not isinstance(signing_key, Ed25519PrivateKey):
        raise LocalProtocolError("signing_key must be an Ed25519PrivateKey")
    if type(compress_level) is not int or not 0 <= compress_level <= 9:
        raise LocalProtocolError(f"compress_level must be an int 0..9, got {compress_level!r}")
    _require_str(header, "kind")
    _require_str(header, "signer")
    recipient = _require_str(header, "recipient")
    recipient_key = _require_str(header, "recipient_key", allow_empty=True)

    if seal_to is not None:
        if not isinstance(seal_to, X25519PublicKey):
            raise LocalProtocolError("seal_to must be an X25519PublicKey")
        if recipient == BROADCAST:
            raise LocalProtocolError("a frame for everyone ('*') cannot be sealed to one key")
        sealed_id = key_id(public_bytes(seal_to))
        if recipient_key == "":
            recipient_key = sealed_id
        elif recipient_key != sealed_id:
            raise LocalProtocolError(
                f"recipient_key {recipient_key!r} does not name the key being sealed to ({sealed_id})"
            )
    elif recipient_key != "":
        raise LocalProtocolError("recipient_key must be empty when the frame is not sealed")

    plain = pack(payload)
    if len(plain) > PAYLOAD_MAX_BYTES:
        raise LocalProtocolError(f"payload is {len(plain)} bytes encoded; receivers accept at most {PAYLOAD_MAX_BYTES}")
    body = zlib.compress(plain, compress_level)
    if seal_to is not None:
        body = _hpke_seal(body, seal_to, seal_info(recipient, recipient_key))

    full: dict[str, object] = dict(header)
    full.update(
        v=FORMAT_VERSION,
        codec=CODEC,
        sealed=seal_to is not None,
        recipient_key=recipient_key,
        body_sha256=hashlib.sha256(body).digest(),
        signer_key=key_id(public_bytes(signing_key)),
    )
    header_bytes = pack(full)
    try:
        unpack(header_bytes, HEADER_LIMITS)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(f"receivers would refuse this header: {exc}") from exc
    frame = _encode_frame(header_bytes, body, _sign_header(header_bytes, signing_key))
    if len(frame) > FRAME_MAX_BYTES:
        raise LocalProtocolError(f"frame is {len(frame)} bytes; receivers accept {FRAME_MAX_BYTES}")
    return frame, hashlib.sha256(header_bytes).digest()


def _split(data: bytes, max_bytes: int) -> tuple[bytes, bytes, bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise LocalProtocolError(f"a frame is bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise TooLargeError(f"frame is {len(data)} bytes, over the limit of {max_bytes}")
    if data[: len(MAGIC)] != MAGIC:
        raise MalformedError("not a Sanji frame: it does not start with the SJF1 magic")
    # Room for one element too many, so that a wrong shape reads as malformed rather than too large.
    outer_limits = Limits(max_bytes=max_bytes, max_str=16, max_bin=max_bytes, max_array=4, max_map=1, max_depth=1)
    outer = unpack(data[len(MAGIC) :], outer_limits)
    if not (isinstance(outer, list) and len(outer) == 3 and all(type(part) is bytes for part in outer)):
        raise MalformedError("a frame must be an array of three byte strings: header, body, signature")
    header_bytes, body, signature = outer
    assert isinstance(header_bytes, bytes) and isinstance(body, bytes) and isinstance(signature, bytes)
    if len(signature) != SIGNATURE_BYTES:
        raise MalformedError(f"signature is {len(signature)} bytes; Ed25519 signatures are 64")
    if len(header_bytes) > HEADER_LIMITS.max_bytes:
        raise TooLargeError(f"frame header is {len(header_bytes)} bytes, over {HEADER_LIMITS.max_bytes}")
    # With one encoding per frame, no byte can change without changing what is authenticated.
    if _encode_frame(header_bytes, body, signature) != data:
        raise MalformedError("frame is not canonically encoded")
    return header_bytes, body, signature


def _field(header: dict[str, object], name: str, kind: type) -> object:
    value = header.get(name)
    if type(value) is not kind:
        raise MalformedError(f"frame header field {name!r} is missing or not a {kind.__name__}")
    return value


def _decode_header(header_bytes: bytes) -> dict[str, object]:
    header = unpack(header_bytes, HEADER_LIMITS)
    if not isinstance(header, dict):
        raise MalformedError("frame header is not a map")
    version = _field(header, "v", int)
    if version != FORMAT_VERSION:
        raise UnsupportedError(f"frame format version {version} is not supported (this build speaks 1)")
    if _field(header, "codec", str) != CODEC:
        raise UnsupportedError(f"body codec {header['codec']!r} is not supported (only 'zlib')")
    for name in ("kind", "signer", "recipient"):
        if not _field(header, name, str):
            raise MalformedError(f"frame header field {name!r} is empty")
    if not is_key_id(_field(header, "signer_key", str)):
        raise MalformedError("frame header field 'signer_key' is not a key id")
    sealed = _field(header, "sealed", bool)
    recipient_key = _field(header, "recipient_key", str)
    if sealed and not is_key_id(recipient_key):
        raise MalformedError("a sealed frame must name the recipient's key id in 'recipient_key'")
    if not sealed and recipient_key != "":
        raise MalformedError("an unsealed frame must have an empty 'recipient_key'")
    digest = _field(header, "body_sha256", bytes)
    assert isinstance(digest, bytes)
    if len(digest) != DIGEST_BYTES:
        raise MalformedError("frame header field 'body_sha256' is not 32 bytes")
    if pack(header) != header_bytes:
        raise MalformedError("frame header is not canonically encoded")
    return header


def peek_header(data: bytes, *, max_bytes: int = FRAME_MAX_BYTES) -> dict[str, object]:
    """The header of a frame, decoded and shape-checked but NOT authenticated.

    For display and file naming only: anyone can write any header. Trust nothing in it until
    `verify_frame` has returned.
    """
    header_bytes, _body, _signature = _split(data, max_bytes)
    return _decode_header(header_bytes)


def verify_frame(
    data: bytes,
    *,
    recipient: str,
    verify_key: VerifyKey,
    max_bytes: int = FRAME_MAX_BYTES,
    allow_broadcast: bool = False,
) -> VerifiedFrame:
    """Authenticate a frame addressed to `recipient` without looking inside its body.

    `verify_key(signer, signer_key)` returns the trusted public key for that pair, or None when there
    is none (it may also raise a `RemoteProtocolError` itself, e.g. for a revoked key).
    `allow_broadcast` also accepts frames addressed to `"*"` (everyone).
    """
    header_bytes, body, signature = _split(data, max_bytes)
    header = _decode_header(header_bytes)
    signer = str(header["signer"])
    signer_key = str(header["signer_key"])

    public = verify_key(signer, signer_key)
    if public is None:
        # Also what a station says of a release signed by a hub key the root has since replaced.
        raise UnknownKeyError(
            f"签名密钥不受信任，未采用 (no trusted key {signer_key} is known for signer {signer!r}: "
            "a replaced or revoked key, or not one this side pinned)"
        )
    if not isinstance(public, Ed25519PublicKey):
        raise LocalProtocolError("verify_key must return an Ed25519PublicKey or None")
    try:
        public.verify(signature, _SIGN_DOMAIN + header_bytes)
    except InvalidSignature as exc:
        raise SignatureError(f"the signature does not match the header signed by {signer!r}") from exc

    addressee = header["recipient"]
    if addressee != recipient and not (allow_broadcast and addressee == BROADCAST):
        raise WrongRecipientError(f"frame is addressed to {addressee!r}, not to {recipient!r}")
    if hashlib.sha256(body).digest() != header["body_sha256"]:
        raise DigestError("the body does not match the SHA-256 in its signed header")
    return VerifiedFrame(
        header=header,
        header_bytes=header_bytes,
        header_hash=hashlib.sha256(header_bytes).digest(),
        body=body,
    )


def _inflate(body: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        # Asking for one byte more than allowed is how a bomb is told apart from a body that fits.
        plain = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise MalformedError(f"body is not valid zlib data ({exc})") from exc
    if len(plain) > max_bytes:
        raise TooLargeError(f"body inflates to more than {max_bytes} bytes")
    if not inflater.eof:
        raise MalformedError("compressed body is truncated")
    if inflater.unused_data:
        raise MalformedError("trailing bytes after the compressed body")
    return plain


def open_payload(
    frame: VerifiedFrame,
    *,
    unseal_key: UnsealKey | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> object:
    """Decrypt (if sealed), inflate within `limits.max_bytes`, and strictly decode the body.

    `unseal_key(recipient_key)` returns our X25519 private key with that id, or None. A sealed frame
    for which no key is offered raises `UnknownKeyError`; one that does not decrypt, `DecryptError`.
    """
    if not isinstance(frame, VerifiedFrame):
        raise LocalProtocolError("open_payload takes the VerifiedFrame that verify_frame returned")
    body = frame.body
    if frame.sealed:
        recipient = str(frame.header["recipient"])
        recipient_key = str(frame.header["recipient_key"])
        private = None if unseal_key is None else unseal_key(recipient_key)
        if private is None:
            raise UnknownKeyError(f"frame is sealed to key {recipient_key}, which we do not hold")
        if not isinstance(private, X25519PrivateKey):
            raise LocalProtocolError("unseal_key must return an X25519PrivateKey or None")
        body = _hpke_open(body, private, seal_info(recipient, recipient_key))
    return unpack(_inflate(body, limits.max_bytes), limits)


__all__ = [
    "BROADCAST",
    "MAGIC",
    "UnsealKey",
    "VerifiedFrame",
    "VerifyKey",
    "open_payload",
    "peek_header",
    "seal_frame",
    "seal_frame_hashed",
    "seal_info",
    "verify_frame",
]
