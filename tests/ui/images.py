"""Made-up pictures for the field-device tests: real, decodable PNGs built with zlib and struct, and a
JPEG-looking blob. No photos of anything, no imaging library."""

from __future__ import annotations

import hashlib
import struct
import zlib


def png(width: int, height: int, rgb: tuple[int, int, int] = (200, 60, 40), *, noise: int = 0) -> bytes:
    """A ``width`` x ``height`` RGB PNG of one colour; ``noise`` > 0 varies the pixels (seeded, so the
    same call gives the same bytes) and keeps the file about as big as its pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = bytearray()
    seed = hashlib.sha256(f"{width}x{height}{rgb}{noise}".encode()).digest()
    stream = b""
    if noise:
        while len(stream) < width * height * 3:
            seed = hashlib.sha256(seed).digest()
            stream += seed
    for y in range(height):
        rows.append(0)  # filter: none
        if noise:
            rows += stream[y * width * 3 : (y + 1) * width * 3]
        else:
            rows += bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 1 if noise else 9))
        + chunk(b"IEND", b"")
    )


def jpeg_like(size: int = 2048, tag: bytes = b"field") -> bytes:
    """Bytes that start like a JPEG (SOI, APP0 JFIF) and end with EOI; only the content sniffing reads it."""
    body = hashlib.sha256(tag).digest() * (size // 32 + 1)
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + body[:size] + b"\xff\xd9"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
