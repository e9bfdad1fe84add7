"""Blobs on the wire: content addresses, fixed-size chunks, and the signed blob request.

A blob (a photo or a signature scan) is named by the SHA-256 of its bytes, written as 64 lowercase
hex digits. Over HTTP it travels in chunks of :data:`CHUNK_SIZE` bytes (the last one shorter), so an
upload cut by a dropped connection resumes where it stopped: the hub says which chunk indices it
holds and the station sends only the rest. On a USB stick it travels whole, one sealed file each.

Every blob request carries a document of kind ``"blob"`` signed by the station. Its body says what
the request is (``op``), which blob (``sha256``), how big the whole blob is (``size``), and for a
chunk its ``index`` and the SHA-256 of the chunk's bytes (``chunk_sha256``), so the hub can refuse a
chunk whose bytes were changed on the way before storing anything. The whole blob is checked
against its name once every chunk is in. HTTP requests also carry ``at_ms`` so an old signed header
cannot be replayed later; files carry the bytes themselves in ``data``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from protocol.errors import MalformedError, TooLargeError
from protocol.limits import BLOB_MAX_BYTES
from protocol.wire import Field, read_fields

KIND = "blob"
CHUNK_SIZE = 256 * 1024
MAX_BLOB_BYTES = BLOB_MAX_BYTES  # the cap is in protocol/limits.py; this name stays for its importers
OPS = ("query", "chunk", "file")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(value: object) -> bool:
    """True for a content address: exactly 64 lowercase hex digits (nothing a path could abuse)."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def check_size(size: int) -> None:
    """Refuse sizes no blob may have: empty, or over the cap (a clear reason either way)."""
    if size < 1:
        raise MalformedError("a blob must hold at least one byte")
    if size > MAX_BLOB_BYTES:
        raise TooLargeError(
            f"blob of {size} bytes is over the {MAX_BLOB_BYTES // (1024 * 1024)} MiB cap for one photo or scan"
        )


def chunk_count(size: int) -> int:
    """How many chunks a blob of ``size`` bytes travels in."""
    check_size(size)
    return (size + CHUNK_SIZE - 1) // CHUNK_SIZE


def chunk_span(size: int, index: int) -> tuple[int, int]:
    """(offset, length) of chunk ``index``; every chunk is full except possibly the last."""
    count = chunk_count(size)
    if not 0 <= index < count:
        raise MalformedError(f"chunk index {index} is outside 0..{count - 1} for a blob of {size} bytes")
    offset = index * CHUNK_SIZE
    return offset, min(CHUNK_SIZE, size - offset)


def missing_chunks(size: int, held: Iterable[int]) -> list[int]:
    """The chunk indices still to send, in order, given those the receiver already holds.

    Indices the receiver claims that cannot exist are ignored: they never excuse sending a real one.
    """
    have = set(held)
    return [i for i in range(chunk_count(size)) if i not in have]


@dataclass(frozen=True)
class BlobRequest:
    """Body of a `blob` document (station -> hub): only the fields of its `op` are present."""

    KIND: ClassVar[str] = KIND
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("op", "str"),
        Field("sha256", "str"),
        Field("size", "uint"),
        Field("index", "uint", required=False),
        Field("chunk_sha256", "str", required=False),
        Field("at_ms", "uint", required=False),
        Field("data", "bin", required=False),
    )

    op: str
    sha256: str
    size: int
    index: int = -1  # chunk requests only
    chunk_sha256: str = ""  # chunk requests only
    at_ms: int = 0  # HTTP requests only
    data: bytes = b""  # files only

    def to_wire(self) -> dict[str, object]:
        return request_body(self)

    @classmethod
    def from_wire(cls, body: object) -> BlobRequest:
        return parse_request(body)


@dataclass(frozen=True)
class BlobsHeld:
    """Body of a `blobs_held` document (hub -> station): the photos the hub holds whole, so a station
    (a field device carrying sticks) may purge its copies."""

    KIND: ClassVar[str] = "blobs_held"
    FIELDS: ClassVar[tuple[Field, ...]] = (Field("station", "str"), Field("held", "[str]"))

    station: str
    held: tuple[str, ...]  # content addresses, 64 lowercase hex

    def to_wire(self) -> dict[str, object]:
        return {"station": self.station, "held": list(self.held)}

    @classmethod
    def from_wire(cls, body: object) -> BlobsHeld:
        f = read_fields(body, cls.FIELDS, "a list of held blobs")
        held = f["held"]
        assert isinstance(held, list)
        if not all(is_sha256_hex(h) for h in held):
            raise MalformedError("a list of held blobs names something that is not a content address")
        return cls(str(f["station"]), tuple(str(h) for h in held))


def request_body(req: BlobRequest) -> dict[str, object]:
    """The body to sign for ``req``: only the fields its op uses, so the encoding stays canonical."""
    body: dict[str, object] = {"op": req.op, "sha256": req.sha256, "size": req.size}
    if req.op == "chunk":
        body.update(index=req.index, chunk_sha256=req.chunk_sha256)
    if req.op in ("query", "chunk"):
        body["at_ms"] = req.at_ms
    if req.op == "file":
        body["data"] = req.data
    return body


def _int(body: dict[object, object], name: str) -> int:
    value = body.get(name)
    if type(value) is not int:
        raise MalformedError(f"blob request field {name!r} is missing or not an integer")
    return value


def parse_request(body: object) -> BlobRequest:
    """Check the shape of an authenticated blob request body. Raises MalformedError / TooLargeError."""
    if not isinstance(body, dict):
        raise MalformedError("blob request body must be a map")
    op = body.get("op")
    if op not in OPS:
        raise MalformedError(f"blob request op {op!r} is not one of {', '.join(OPS)}")
    sha = body.get("sha256")
    if not is_sha256_hex(sha):
        raise MalformedError("blob request sha256 must be 64 lowercase hex digits")
    assert isinstance(sha, str) and isinstance(op, str)
    size = _int(body, "size")
    check_size(size)
    req = BlobRequest(op, sha, size)
    if op == "chunk":
        index = _int(body, "index")
        chunk_span(size, index)
        chunk_sha = body.get("chunk_sha256")
        if not is_sha256_hex(chunk_sha):
            raise MalformedError("blob chunk request needs chunk_sha256 as 64 lowercase hex digits")
        assert isinstance(chunk_sha, str)
        req = BlobRequest(op, sha, size, index, chunk_sha)
    if op in ("query", "chunk"):
        req = BlobRequest(req.op, sha, size, req.index, req.chunk_sha256, _int(body, "at_ms"))
    if op == "file":
        data = body.get("data")
        if not isinstance(data, bytes):
            raise MalformedError("a blob file must carry its bytes in 'data'")
        if len(data) != size:
            raise MalformedError(f"a blob file says {size} bytes but carries {len(data)}")
        req = BlobRequest(op, sha, size, data=data)
    return req


__all__ = [
    "CHUNK_SIZE",
    "KIND",
    "MAX_BLOB_BYTES",
    "BlobRequest",
    "BlobsHeld",
    "check_size",
    "chunk_count",
    "chunk_span",
    "is_sha256_hex",
    "missing_chunks",
    "parse_request",
    "request_body",
]
