"""Every size cap the hub and the stations share, in one table (documented in docs/protocol.md, "Limits").

Why one table: a cap the hub checks when it makes something and the cap a station checks when it
receives it must be the same number. When they drifted apart (issue 21), the hub published a catalogue
release of 8.5 MB that no station's decoder would take, and every feed page that carried it failed at
every station. So the hub's publish, its feed pages and its exports, and the station's HTTP reads, USB
reads and decoders all import their caps from here, and ``tests/protocol/test_limits.py`` checks that
the nested caps fit inside each other (a release fits in a feed page and in an enrolment answer, a
frame fits in a response and in a file).

Pure: numbers and the decoder-limit type only.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import LocalProtocolError

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one decode. Lengths count elements (arrays, maps) or bytes (str, bin)."""

    max_bytes: int
    max_str: int
    max_bin: int
    max_array: int
    max_map: int
    max_depth: int

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_str", "max_bin", "max_array", "max_map", "max_depth"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise LocalProtocolError(f"Limits.{name} must be a positive int, got {value!r}")


# -- frames -------------------------------------------------------------------------------------------

# Any signed frame of any kind (batch, feed page, acks, reconciliation answer, receipt list): the most
# a receiver parses at all, and the most a decoded (inflated) body may hold.
FRAME_MAX_BYTES = 16 * MIB
PAYLOAD_MAX_BYTES = 16 * MIB
# One byte string inside a payload. A catalogue release travels inside a feed page and inside an
# enrolment answer as one byte string, so this is what bounds a release.
BIN_MAX_BYTES = 8 * MIB
# A signed catalogue release. Below BIN_MAX_BYTES with room for the enrolment document around it.
RELEASE_FRAME_MAX_BYTES = 6 * MIB
# The enrolment document: the station's details plus the current release.
ENROLLMENT_FRAME_MAX_BYTES = RELEASE_FRAME_MAX_BYTES + 256 * KIB
# One batch receipt (a small signed frame, carried inside an acks document).
RECEIPT_FRAME_MAX_BYTES = 4 * KIB
# A station's batch; stations plan batches far smaller (BATCH_PLAN_BYTES of changes) but accept this.
BATCH_FRAME_MAX_BYTES = FRAME_MAX_BYTES
# A feed page: what the hub's pull and its USB export may send.
FEED_FRAME_MAX_BYTES = FRAME_MAX_BYTES

# -- what builders aim for (well below the caps) ------------------------------------------------------

BATCH_PLAN_BYTES = 1 * MIB  # encoded changes a station puts in one batch
BATCH_PLAN_CHANGES = 2000  # changes a station puts in one batch
FEED_PAGE_CHANGES = 2000  # changes the hub puts in one feed page (fewer when they would not fit)

# -- HTTP ---------------------------------------------------------------------------------------------

# The largest answer a station reads from the hub (a feed page, acks, a reconciliation step, an
# enrolment answer). Content-Length is checked before reading and the stream stops at the cap.
RESPONSE_MAX_BYTES = FRAME_MAX_BYTES + 64 * KIB
# A refusal (JSON with a reason) or a small JSON answer (blob upload status): never more than this.
ERROR_BODY_MAX_BYTES = 64 * KIB
# What the hub reads of one push (up to PUSH_MAX_FRAMES batch frames) and of an enrolment request.
PUSH_BODY_MAX_BYTES = 32 * MIB
PUSH_MAX_FRAMES = 256
ENROL_REQUEST_MAX_BYTES = 4 * KIB
# A signed request header (X-Sanji-Request: base64 of a small signed document, about 500 characters).
# Below the HTTP server's own header-field cap (8190 bytes), so an oversized one is refused by the hub
# with its reason rather than by the HTTP parser.
REQUEST_HEADER_MAX_CHARS = 4 * KIB

# -- files carried by hand (USB) ----------------------------------------------------------------------

# Photos and scans (content-addressed blobs) and the sealed file one travels in.
BLOB_MAX_BYTES = 10 * MIB
BLOB_FILE_MAX_BYTES = BLOB_MAX_BYTES + 1 * MIB
# Any file a station or the hub reads from a stick: checked by size before it is read.
FILE_MAX_BYTES = FRAME_MAX_BYTES
# The catalogue source (JSON) an operator hands to `sanji hub publish`: JSON is wordier than the
# msgpack it becomes, so it may be larger than a payload; the signed release is checked on its own.
CATALOGUE_SOURCE_MAX_BYTES = 64 * MIB

# -- decoders -----------------------------------------------------------------------------------------

DEFAULT_LIMITS = Limits(
    max_bytes=PAYLOAD_MAX_BYTES,
    max_str=64 * KIB,
    max_bin=BIN_MAX_BYTES,
    max_array=200_000,
    max_map=10_000,
    max_depth=16,
)

# Headers are decoded before anything is authenticated, so they get a much tighter budget.
HEADER_LIMITS = Limits(
    max_bytes=8 * KIB,
    max_str=4 * KIB,
    max_bin=256,
    max_array=64,
    max_map=64,
    max_depth=4,
)

# The hub's decoders for requests: a push is an array of frames, an enrolment request a small map.
PUSH_LIMITS = Limits(
    max_bytes=PUSH_BODY_MAX_BYTES,
    max_str=64,
    max_bin=PUSH_BODY_MAX_BYTES,
    max_array=PUSH_MAX_FRAMES,
    max_map=1,
    max_depth=2,
)
# An enrolment request: a token id, or the hub's own challenge document (a few hundred bytes) and two keys.
ENROL_LIMITS = Limits(max_bytes=ENROL_REQUEST_MAX_BYTES, max_str=64, max_bin=1024, max_array=4, max_map=8, max_depth=2)
# The body of a sealed blob file (a photo carried by hand): one blob's bytes plus a few small fields.
BLOB_FILE_LIMITS = Limits(
    max_bytes=BLOB_FILE_MAX_BYTES, max_str=4 * KIB, max_bin=BLOB_MAX_BYTES, max_array=16, max_map=16, max_depth=4
)


def mib(n: int) -> str:
    """A size for people: '6.0 MiB (6291456 字节)'. Refusals name both the figure and the cap."""
    return f"{n / MIB:.1f} MiB（{n} 字节）"


__all__ = [
    "BATCH_FRAME_MAX_BYTES",
    "BATCH_PLAN_BYTES",
    "BATCH_PLAN_CHANGES",
    "BIN_MAX_BYTES",
    "BLOB_FILE_LIMITS",
    "BLOB_FILE_MAX_BYTES",
    "BLOB_MAX_BYTES",
    "CATALOGUE_SOURCE_MAX_BYTES",
    "DEFAULT_LIMITS",
    "ENROLLMENT_FRAME_MAX_BYTES",
    "ENROL_LIMITS",
    "ENROL_REQUEST_MAX_BYTES",
    "ERROR_BODY_MAX_BYTES",
    "FEED_FRAME_MAX_BYTES",
    "FEED_PAGE_CHANGES",
    "FILE_MAX_BYTES",
    "FRAME_MAX_BYTES",
    "HEADER_LIMITS",
    "KIB",
    "MIB",
    "PAYLOAD_MAX_BYTES",
    "PUSH_BODY_MAX_BYTES",
    "PUSH_LIMITS",
    "PUSH_MAX_FRAMES",
    "RECEIPT_FRAME_MAX_BYTES",
    "RELEASE_FRAME_MAX_BYTES",
    "REQUEST_HEADER_MAX_CHARS",
    "RESPONSE_MAX_BYTES",
    "Limits",
    "mib",
]
