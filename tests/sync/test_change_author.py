"""A change's author (issue 16): the wire form with and without it, the refusal of a malformed one, the
signature covering it, and the same admission verdict at a station and at the hub.

Station codes, ids and user names below are made up for the tests.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol.batch import ZERO_HASH, build_batch, open_batch_changes, verify_batch
from protocol.codec import pack
from protocol.errors import RemoteProtocolError
from sync.admission import judge
from sync.change import Change, change_from_wire, change_to_wire
from sync.ingest import read_change
from sync.model import Actor, ModelError, RecordContext
from sync.verdict import Facts

BASE = ["V0101", 1, 7, 1 << 16, "application", "app-1", {"note": "补充说明"}, {}]


def test_a_change_without_an_author_keeps_its_eight_elements_byte_for_byte() -> None:
    change = change_from_wire(list(BASE))
    assert change.author == ""
    assert change_to_wire(change) == BASE
    assert pack(change_to_wire(change)) == pack(BASE)


def test_a_change_with_an_author_round_trips_as_nine_elements() -> None:
    change = change_from_wire([*BASE, "zhangsan"])
    assert change.author == "zhangsan"
    assert change_to_wire(change) == [*BASE, "zhangsan"]
    assert change_from_wire(change_to_wire(change)) == change


@pytest.mark.parametrize(
    "author",
    ["", "ZhangSan", "zhang san", "张三", "1zhang", "a" * 33, "zhang\n", 7, None, b"zhangsan", ["zhangsan"]],
    ids=[
        "empty ninth",
        "capitals",
        "space",
        "hanzi",
        "digit first",
        "too long",
        "newline",
        "int",
        "nil",
        "bytes",
        "list",
    ],
)
def test_a_malformed_author_is_refused_with_its_own_code(author: object) -> None:
    with pytest.raises(ModelError) as exc:
        change_from_wire([*BASE, author])
    assert exc.value.code == "bad_author"
    adm = read_change([*BASE, author], origin="V0101", epoch=1, seq=7)
    assert not adm.admitted and adm.change is None
    assert adm.code == "bad_author"
    assert "author" in adm.reason


def test_the_anti_entropy_digest_ignores_the_author_and_a_repair_keeps_it() -> None:
    # A change logged with its author at the hub and without it (carried by the feed) must not diverge.
    from replica.scope import digests, row_to_wire

    row = ("V0101", 1, 7, 1 << 16, "application", "app-1", pack({"note": "x"}), pack({}), "")
    signed = (*row[:8], "zhangsan")
    assert list(digests([signed])) == list(digests([row]))
    assert row_to_wire(row) == [*BASE[:6], {"note": "x"}, {}]
    assert row_to_wire(signed)[8] == "zhangsan"  # re-sent on repair with who made it


def test_the_signature_covers_the_author() -> None:
    key = Ed25519PrivateKey.generate()
    frame = build_batch(
        origin="V0101",
        epoch=1,
        first_seq=7,
        changes=[[*BASE, "zhangsan"]],
        prev=ZERO_HASH,
        recipient="D00",
        hlc=1 << 16,
        signing_key=key,
        compress_level=0,  # the body stays readable, so the author's bytes can be found and changed
    )
    assert b"zhangsan" in frame

    def verify(data: bytes) -> list[object]:
        vb = verify_batch(data, recipient="D00", verify_key=lambda signer, kid: key.public_key())
        return open_batch_changes(vb)

    assert change_from_wire(verify(frame)[0]).author == "zhangsan"
    with pytest.raises(RemoteProtocolError):
        verify(frame.replace(b"zhangsan", b"lisi0000"))  # another colleague's name: the signature fails


def test_a_well_formed_author_changes_no_verdict() -> None:
    # Trusted exactly as far as the station that signed it: only its form is checked.
    facts = Facts(RecordContext("V0101", "T01", "district"))
    village = Actor("V0101", "village")
    bad = Change("V0101", 1, 7, 1 << 16, "application", "app-1", {"note": "x"}, {}, author="Zhang San")
    good = Change("V0101", 1, 7, 1 << 16, "application", "app-1", {"note": "x"}, {}, author="zhangsan")
    plain = Change("V0101", 1, 7, 1 << 16, "application", "app-1", {"note": "x"}, {})
    refused = judge(bad, village, facts)
    assert not refused.admitted and refused.code == "bad_author" and "经办人" in refused.reason
    assert (judge(good, village, facts).code, judge(good, village, facts).reason) == (
        judge(plain, village, facts).code,
        judge(plain, village, facts).reason,
    )
