from __future__ import annotations

import pytest

from protocol.document import Document, open_document, sign_document
from protocol.errors import (
    DecryptError,
    LocalProtocolError,
    SignatureError,
    UnknownKeyError,
    ValidationError,
    WrongRecipientError,
)
from protocol.frame import seal_frame

from .helpers import (
    HUB,
    HUB_SEAL_KEY,
    HUB_SIGN_KEY,
    OTHER_SEAL_KEY,
    STATION,
    STATION_KEY,
    STRANGER_KEY,
    trusted,
)
from .test_batch import UNSEALED

STATION_SEAL = OTHER_SEAL_KEY  # stands in for a station's own sealing key here


def test_addressed_document_round_trip() -> None:
    data = sign_document(
        "receipt", {"batch": b"\x01" * 32, "text": "已送达区行政审批局"}, signer=HUB, recipient=STATION,
        signing_key=HUB_SIGN_KEY, extra_header={"seq": 3},
    )  # fmt: skip
    doc = open_document(data, kind="receipt", recipient=STATION, verify_key=trusted)
    assert isinstance(doc, Document)
    assert (doc.kind, doc.signer, doc.recipient) == ("receipt", HUB, STATION)
    assert doc.body == {"batch": b"\x01" * 32, "text": "已送达区行政审批局"}
    assert doc.header["seq"] == 3 and len(doc.header_hash) == 32


def test_broadcast_opens_for_anyone() -> None:
    data = sign_document("catalogue", {"version": 2}, signer=HUB, recipient="*", signing_key=HUB_SIGN_KEY)
    for who in (STATION, "360802-V01-01", "anyone"):
        assert open_document(data, kind="catalogue", recipient=who, verify_key=trusted).body == {"version": 2}


def test_addressed_document_is_refused_by_others() -> None:
    data = sign_document("feed", [], signer=HUB, recipient=STATION, signing_key=HUB_SIGN_KEY)
    with pytest.raises(WrongRecipientError):
        open_document(data, kind="feed", recipient="360802-V01-01", verify_key=trusted)


def test_sealed_document() -> None:
    data = sign_document(
        "feed",
        [1, 2],
        signer=HUB,
        recipient=STATION,
        signing_key=HUB_SIGN_KEY,
        seal_to=STATION_SEAL.public_key(),
    )
    doc = open_document(data, kind="feed", recipient=STATION, verify_key=trusted, unseal_key=lambda kid: STATION_SEAL)
    assert doc.body == [1, 2]
    with pytest.raises(UnknownKeyError):
        open_document(data, kind="feed", recipient=STATION, verify_key=trusted)
    with pytest.raises(DecryptError):
        open_document(data, kind="feed", recipient=STATION, verify_key=trusted, unseal_key=lambda kid: HUB_SEAL_KEY)


def test_wrong_kind_is_refused() -> None:
    data = sign_document("feed", [], signer=HUB, recipient=STATION, signing_key=HUB_SIGN_KEY)
    with pytest.raises(ValidationError):
        open_document(data, kind="catalogue", recipient=STATION, verify_key=trusted)
    with pytest.raises(ValidationError):
        open_document(UNSEALED, kind="feed", recipient=HUB, verify_key=trusted)


def test_forged_document_is_refused() -> None:
    data = sign_document("catalogue", {"v": 9}, signer=HUB, recipient="*", signing_key=STRANGER_KEY)
    with pytest.raises(UnknownKeyError):
        open_document(data, kind="catalogue", recipient=STATION, verify_key=trusted)
    tampered = bytearray(sign_document("catalogue", {}, signer=HUB, recipient="*", signing_key=HUB_SIGN_KEY))
    tampered[30] ^= 0x40
    with pytest.raises((SignatureError, ValidationError)):
        open_document(bytes(tampered), kind="catalogue", recipient=STATION, verify_key=trusted)


def test_broadcast_document_may_not_be_sealed() -> None:
    with pytest.raises(LocalProtocolError):
        sign_document("catalogue", {}, signer=HUB, recipient="*", signing_key=HUB_SIGN_KEY,
                      seal_to=STATION_SEAL.public_key())  # fmt: skip


def test_document_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        sign_document("batch", [1], signer=STATION, recipient=HUB, signing_key=STATION_KEY)
    with pytest.raises(LocalProtocolError):
        sign_document("feed", [1], signer=HUB, recipient=STATION, signing_key=HUB_SIGN_KEY,
                      extra_header={"recipient": "*"})  # fmt: skip
    with pytest.raises(LocalProtocolError):
        sign_document("feed", [1], signer=HUB, recipient=STATION, signing_key=HUB_SIGN_KEY,
                      extra_header={"sealed": True})  # fmt: skip
    with pytest.raises(LocalProtocolError):
        open_document(UNSEALED, kind="batch", recipient=HUB, verify_key=trusted)


def test_a_document_is_an_ordinary_frame() -> None:
    header: dict[str, object] = {"kind": "ack", "signer": HUB, "recipient": STATION, "recipient_key": ""}
    data = seal_frame(header, {"ok": True}, signing_key=HUB_SIGN_KEY)
    assert open_document(data, kind="ack", recipient=STATION, verify_key=trusted).body == {"ok": True}
