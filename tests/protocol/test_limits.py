"""The shared table of caps (protocol/limits.py): the nested caps must fit inside each other, or something
the hub makes within its cap is refused by every station (issue 21: an 8.5 MB release)."""

from __future__ import annotations

import hmac

import pytest

from protocol import limits
from protocol.codec import DEFAULT_LIMITS, HEADER_LIMITS, Limits, pack, unpack
from protocol.document import open_document, sign_document
from protocol.errors import LocalProtocolError, TooLargeError
from protocol.keys import signing_key_from_seed


def test_old_import_paths_name_the_same_caps() -> None:
    from hub import blobindex, feed
    from hub.web import sync as app
    from node import uplink
    from protocol import blob

    assert DEFAULT_LIMITS is limits.DEFAULT_LIMITS and HEADER_LIMITS is limits.HEADER_LIMITS
    assert Limits is limits.Limits
    assert blob.MAX_BLOB_BYTES == limits.BLOB_MAX_BYTES
    assert app.MAX_PUSH_BYTES == limits.PUSH_BODY_MAX_BYTES and app.PUSH_LIMITS is limits.PUSH_LIMITS
    assert blobindex.FILE_LIMITS is limits.BLOB_FILE_LIMITS
    assert feed.PAGE_LIMIT == limits.FEED_PAGE_CHANGES
    assert uplink.MAX_BATCH_BYTES == limits.BATCH_PLAN_BYTES


def test_nested_caps_fit_inside_each_other() -> None:
    # A release travels as one byte string in a feed page and inside the enrolment document, which
    # itself travels as one byte string in the enrolment answer.
    assert limits.RELEASE_FRAME_MAX_BYTES < limits.ENROLLMENT_FRAME_MAX_BYTES <= limits.BIN_MAX_BYTES
    assert DEFAULT_LIMITS.max_bin >= limits.BIN_MAX_BYTES
    assert limits.BIN_MAX_BYTES < limits.PAYLOAD_MAX_BYTES == DEFAULT_LIMITS.max_bytes
    # Every frame a station receives fits in one HTTP answer and in one file from a stick.
    for frame_cap in (limits.FEED_FRAME_MAX_BYTES, limits.BATCH_FRAME_MAX_BYTES, limits.ENROLLMENT_FRAME_MAX_BYTES):
        assert frame_cap <= limits.FRAME_MAX_BYTES <= limits.RESPONSE_MAX_BYTES
        assert frame_cap <= limits.FILE_MAX_BYTES
    assert limits.BLOB_FILE_MAX_BYTES <= limits.FILE_MAX_BYTES
    assert limits.ERROR_BODY_MAX_BYTES < limits.RESPONSE_MAX_BYTES
    # A push carries whole batches.
    assert limits.BATCH_FRAME_MAX_BYTES <= limits.PUSH_BODY_MAX_BYTES == limits.PUSH_LIMITS.max_bytes
    assert limits.BATCH_PLAN_BYTES < limits.BATCH_FRAME_MAX_BYTES


def test_a_byte_string_at_the_bin_cap_decodes_and_one_byte_more_does_not() -> None:
    at_cap = pack({"catalogue": bytes(limits.BIN_MAX_BYTES)})
    assert isinstance(unpack(at_cap), dict)
    with pytest.raises(TooLargeError):
        unpack(pack({"catalogue": bytes(limits.BIN_MAX_BYTES + 1)}))


def test_nothing_over_the_payload_cap_is_signed() -> None:
    key = signing_key_from_seed(bytes(32))
    with pytest.raises(LocalProtocolError):
        sign_document("feed", {"x": [bytes(limits.BIN_MAX_BYTES)] * 3}, signer="360802", recipient="*", signing_key=key)


def test_a_release_at_its_cap_opens_inside_a_feed_page() -> None:
    key = signing_key_from_seed(b"\x01" * 32)
    release = b"\x00" * (limits.RELEASE_FRAME_MAX_BYTES - 1024)  # stands in for a release frame near the cap
    page = sign_document("feed", {"catalogue": release, "changes": []}, signer="360802", recipient="V", signing_key=key)
    doc = open_document(page, kind="feed", recipient="V", verify_key=lambda s, k: key.public_key())
    assert isinstance(doc.body, dict) and hmac.compare_digest(doc.body["catalogue"], release)


def test_mib_names_the_figure_and_the_bytes() -> None:
    assert limits.mib(6 * limits.MIB) == "6.0 MiB（6291456 字节）"
