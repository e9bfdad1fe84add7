from __future__ import annotations

import pytest

from protocol.errors import (
    DecryptError,
    DigestError,
    LocalProtocolError,
    MalformedError,
    RemoteProtocolError,
    SanjiError,
    SignatureError,
    TooLargeError,
    UnknownKeyError,
    UnsupportedError,
    ValidationError,
    WrongRecipientError,
)

EXPECTED = [
    (MalformedError, 400, "malformed"),
    (TooLargeError, 413, "too_large"),
    (UnsupportedError, 400, "unsupported_version"),
    (UnknownKeyError, 403, "unknown_key"),
    (SignatureError, 403, "bad_signature"),
    (WrongRecipientError, 403, "wrong_recipient"),
    (DigestError, 400, "body_digest_mismatch"),
    (DecryptError, 400, "decrypt_failed"),
    (ValidationError, 422, "invalid"),
]


@pytest.mark.parametrize(("cls", "status", "code"), EXPECTED)
def test_each_remote_error_has_its_status_and_code(cls: type[RemoteProtocolError], status: int, code: str) -> None:
    err = cls("the header is not a map")
    assert isinstance(err, RemoteProtocolError) and isinstance(err, SanjiError)
    assert (err.status, err.code) == (status, code)
    assert str(err) == "the header is not a map"
    assert err.to_dict() == {"error": code, "status": status, "message": "the header is not a map"}


def test_code_and_status_can_be_overridden() -> None:
    err = UnknownKeyError("station 360802-T01-05 is revoked", code="revoked", status=403)
    assert (err.code, err.status) == ("revoked", 403)
    base = RemoteProtocolError("peer misbehaved")
    assert (base.code, base.status) == ("protocol_error", 400)
    assert "revoked" in repr(err)


def test_local_errors_are_not_remote() -> None:
    assert issubclass(LocalProtocolError, SanjiError)
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
