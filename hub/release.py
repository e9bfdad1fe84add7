"""Signing a catalogue release that every station can receive, or refusing it at publish with the figures.

A release travels to stations inside feed pages and enrolment answers, as one byte string, and is
opened there with the stations' decoder limits. The hub once published an 8.5 MB release (exit 0) that
no station's decoder would take, and from then on every feed page failed at every station; a 70 MB one
failed at signing with "unexpected error" (exit 1) (issue 21). So the hub checks here, against the one
table of caps stations use (protocol/limits.py), before anything is stored:

1. the encoded release fits a station's payload cap;
2. the signed frame fits the release cap (room for it in a feed page and an enrolment answer);
3. the frame opens with a station's own decoder limits (element counts, string sizes, nesting).

Each refusal is :class:`Refused` (exit 2) naming the figure, the cap and what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from protocol.codec import pack
from protocol.document import open_document
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.limits import DEFAULT_LIMITS, PAYLOAD_MAX_BYTES, RELEASE_FRAME_MAX_BYTES, mib
from protocol.release import Release
from protocol.wire import sign_message
from replica.errors import Refused

if TYPE_CHECKING:
    from hub.state import HubState

_ADVICE = "请精简目录（删去不再受理的事项、缩短说明文字）或分批发布后重试"


def sign_release(hub: HubState, release: Release) -> bytes:
    """The signed release frame, checked to be receivable by every station."""
    encoded = len(pack(release.to_wire()))
    if encoded > PAYLOAD_MAX_BYTES:
        raise Refused(
            f"事项目录发布被拒：目录编码后 {mib(encoded)}，超过站点可解码的上限 {mib(PAYLOAD_MAX_BYTES)} "
            f"(release is {encoded} bytes encoded, over the {PAYLOAD_MAX_BYTES}-byte cap stations "
            f"decode)；{_ADVICE}",
            code="too_large",
        )
    try:
        frame = sign_message(
            release, signer=hub.hub_id, recipient="*", signing_key=hub.keys.sign, extra_header=release.header
        ).frame
    except LocalProtocolError as exc:
        raise Refused(f"事项目录发布被拒：无法签成站点可接收的版本（{exc}）；{_ADVICE}", code="too_large") from exc
    if len(frame) > RELEASE_FRAME_MAX_BYTES:
        raise Refused(
            f"事项目录发布被拒：签名后的目录为 {mib(len(frame))}，超过站点能接收的上限 "
            f"{mib(RELEASE_FRAME_MAX_BYTES)} (signed release is {len(frame)} bytes, over the "
            f"{RELEASE_FRAME_MAX_BYTES}-byte cap a station receives)；{_ADVICE}",
            code="too_large",
        )
    own = hub.keys.sign.public_key()
    try:
        open_document(frame, kind=Release.KIND, recipient="*", verify_key=lambda s, k: own, limits=DEFAULT_LIMITS)
    except RemoteProtocolError as exc:
        raise Refused(
            f"事项目录发布被拒：站点的解码器会拒收这个版本（{exc}） (stations' decoders would refuse "
            f"this release)；{_ADVICE}",
            code="too_large",
        ) from exc
    return frame
