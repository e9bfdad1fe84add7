"""Typed document bodies: from_wire checks once, to_wire writes back what was read."""

from __future__ import annotations

import pytest

from protocol.acks import Ack, Acks, Receipt
from protocol.blob import BlobsHeld
from protocol.errors import MalformedError
from protocol.feed import FeedPage, FeedSpan, PullRequest
from protocol.hubkey_docs import KeyBundle
from protocol.limits import RECEIPT_FRAME_MAX_BYTES
from protocol.messages import BODIES
from protocol.reconciliation import MAX_KEYS, ReconcileRequest
from protocol.wire import TYPES
from tests.protocol.document_vectors import document_frames

H = bytes(range(32))


def test_every_body_names_its_fields_with_known_types_and_no_name_twice() -> None:
    for cls in BODIES:
        names = [f.name for f in cls.FIELDS]  # type: ignore[attr-defined]
        assert len(names) == len(set(names)), cls.__name__
        assert all(f.type in TYPES for f in cls.FIELDS), cls.__name__  # type: ignore[attr-defined]


def test_what_is_read_is_written_back_the_same() -> None:
    for name, body, _, _ in document_frames():
        wire = body.to_wire()
        assert type(body).from_wire(wire).to_wire() == wire, name  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "cls, body",
    [
        (Acks, {"acks": "x"}),
        (Acks, [1]),
        (Ack, {"batch": H, "result": "maybe"}),
        (Ack, {"batch": b"short", "result": "applied"}),
        (Ack, {"result": "applied"}),
        (Receipt, {"batch": H}),
        (PullRequest, {"after": 0}),
        (PullRequest, {"after": -1, "at_ms": 1}),
        (PullRequest, {"after": 2**62, "at_ms": 1}),
        (PullRequest, {"after": 0, "at_ms": 1, "pending": "x"}),
        (PullRequest, {"after": 0, "at_ms": 1, "catalogue_version": 1.5}),
        (FeedPage, {"station": "S", "after": 0, "next": 1, "more": True}),
        (FeedPage, {"station": "S", "after": 0, "next": 1, "more": 1, "changes": []}),
        (FeedSpan, {"after": 0, "next": 1}),
        (ReconcileRequest, {"op": "nonsense", "at_ms": 1}),
        (ReconcileRequest, {"op": "records", "at_ms": 1}),
        (ReconcileRequest, {"op": "records", "at_ms": 1, "keys": ["k"] * (MAX_KEYS + 1)}),
        (ReconcileRequest, {"op": "repair", "at_ms": 1, "changes": []}),
        (ReconcileRequest, {"op": "done", "at_ms": 1, "repaired": 2**64 - 1}),
        (KeyBundle, {"roots": [], "docs": ["not a frame"]}),
        (BlobsHeld, {"station": "S", "held": ["../etc/passwd"]}),
    ],
)
def test_a_body_that_breaks_its_table_is_malformed(cls: type, body: object) -> None:
    with pytest.raises(MalformedError):
        cls.from_wire(body)  # type: ignore[attr-defined]


def test_unknown_fields_are_ignored_and_defaults_filled() -> None:
    pull = PullRequest.from_wire({"after": 3, "at_ms": 9, "from_the_future": True})
    assert (pull.after, pull.at_ms, pull.pending, pull.catalogue_version, pull.problem, pull.nonce) == (
        3,
        9,
        0,
        0,
        None,
        b"",
    )
    ack = Ack.from_wire({"batch": H, "result": "applied", "expected": 0, "reason": "", "receipt": b""})
    assert (ack.applied, ack.quarantined) == (None, None)  # an exported ack: no counts, and none written back
    assert "applied" not in ack.to_wire()


def test_a_receipt_over_its_cap_is_read_as_none() -> None:
    ack = Ack.from_wire({"batch": H, "result": "applied", "receipt": bytes(RECEIPT_FRAME_MAX_BYTES + 1)})
    assert ack.receipt == b""
