"""The sync API's station-facing routes of a real hub, fed frames, signed headers and enrolments that
must be refused.

Push envelopes of random, damaged, forged, misaddressed, revoked and SQL-signed frames (with one
authentic frame among forged ones applied alone); hostile `X-Sanji-Request` headers on the pull and
blob routes (random, damaged, stale, future, wrong kind, other hub, bad fields, revoked signer);
hostile enrolment requests, then a genuine one as the control. Each refusal is a 4xx with a reason,
every refused frame is counted and explained in `hub.operations.status`, no enrolment token is
consumed, nothing but the record of refusals changes, and the hub keeps answering `/healthz`.
"""

from __future__ import annotations

import base64
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub import enrolment
from protocol.codec import pack, unpack
from protocol.enrolment import enrol_proof, parse_token, token_id, token_key
from protocol.frame import MAGIC
from protocol.keys import public_bytes, sealing_key_from_seed, signing_key_from_seed

from .harness import (
    SQL_STRINGS,
    TALLY,
    TOWNSHIP,
    Sender,
    Served,
    application_fields,
    counts,
    forge_frame,
    hostile,
    snapshot_unchanged,
)
from .helpers import HEADER_VALUES, MSGPACK_INTS, MSGPACK_VALUES

pytestmark = pytest.mark.usefixtures("_hub_still_serves")


# -- push envelopes full of refused frames -------------------------------------------------------------

FOREIGN_KEY = signing_key_from_seed(bytes([9]) * 32)


_GENUINE: dict[tuple[str, int], bytes] = {}


def genuine(served: Served, sender: Sender, n: int) -> bytes:
    """A genuine, well-formed batch from `sender` at seq 10**6 + n (far past its cursor: never applied)."""
    if (sender.code, n) not in _GENUINE:
        seq = 10**6 + n
        change = served.wire(sender, seq, "application", f"never-{n}", {"note": "x"})
        _GENUINE[(sender.code, n)] = served.batch(sender, [change], first_seq=seq)
    return _GENUINE[(sender.code, n)]


@st.composite
def refused_frame(draw: st.DrawFn, served: Served, senders: dict[str, Sender]) -> tuple[bytes, str]:
    """(frame, how it is wrong): every one must be refused before anything in it is looked at."""
    how = draw(
        st.sampled_from(
            [
                "random",
                "magic+random",
                "damaged",
                "unknown signer",
                "forged signature",
                "other hub",
                "revoked",
                "sql signer",
                "unsealed naming a key",
            ]
        )
    )
    village = senders["village"]
    if how == "random":
        return draw(st.binary(max_size=512)), how
    if how == "magic+random":
        return MAGIC + draw(st.binary(max_size=512)), how
    if how == "damaged":
        frame = genuine(served, village, draw(st.integers(0, 3)))
        at = draw(st.integers(0, 2**20)) % len(frame)
        return frame[:at] + bytes([frame[at] ^ (1 << draw(st.integers(0, 7)))]) + frame[at + 1 :], how
    header = {
        "v": 1, "kind": "batch", "codec": "zlib", "sealed": False, "body_sha256": bytes(32), "signer": village.code,
        "signer_key": "0" * 16, "recipient": served.hub.hub_id, "recipient_key": "", "origin": village.code,
        "epoch": 1, "first_seq": 1, "last_seq": 1, "count": 1, "prev": bytes(32), "hlc": 1,
    }  # fmt: skip
    body = zlib.compress(pack([[village.code, 1, 1, 1, "application", "x", {"note": "x"}, {}]]))
    key = village.sign
    if how == "unknown signer":
        header.update(signer="360802-T09-99", origin="360802-T09-99")
        key = FOREIGN_KEY
    elif how == "forged signature":
        key = FOREIGN_KEY
    elif how == "other hub":
        header["recipient"] = "360803"
    elif how == "revoked":
        revoked = senders["revoked"]
        header.update(signer=revoked.code, origin=revoked.code)
        key = revoked.sign
    elif how == "sql signer":
        header.update(signer=draw(st.sampled_from(SQL_STRINGS)))
    else:
        header["recipient_key"] = "f" * 16
    return forge_frame(header, body, key), how


@hostile(400)
@given(data=st.data())
def test_push_of_refused_frames_is_4xx_counted_and_explained(
    served: Served, senders: dict[str, Sender], data: st.DataObject
) -> None:
    TALLY.add("http: push envelopes of random / damaged / forged / misaddressed / revoked frames")
    frames = data.draw(st.lists(refused_frame(served, senders), min_size=1, max_size=5), label="frames")
    before = counts(served.hub)
    alerts_before = served.hub.store.count("alerts")
    rejected_before, _ = served.rejections()
    reply = served.push([f for f, _ in frames])
    assert 400 <= reply.status < 500, f"{[h for _, h in frames]}: {reply.status} {reply.body[:200]!r}"
    answer = reply.json()
    assert answer["error"] and answer["message"], answer
    after = counts(served.hub)
    revoked = sum(1 for _, how in frames if how == "revoked")
    moved = snapshot_unchanged(before, after, allow=("rejected", "alerts"))
    assert not moved, f"refused frames changed the hub: {moved}"
    # Counted one a frame, in one row per station and hour (hub/store/refusals.py: anyone can claim a revoked code).
    assert served.hub.store.count("alerts") - alerts_before == revoked, "a revoked station still sending is counted"
    rejected_after, last = served.rejections()
    assert rejected_after - rejected_before == len(frames), "every refused frame is counted for the operator"
    assert all(str(r["reason"]).strip() for r in last[:5]), last
    # Refusals fold into one row per (address, hour, code), so only the newest row is the last frame's.
    how, newest = frames[-1][1], last[0]
    if how == "revoked":
        assert "revoked" in str(newest["reason"]), newest
    if how == "sql signer":
        # Stored and shown verbatim (cut to 64 characters), never executed.
        assert str(newest["origin"]) in SQL_STRINGS or any(s.startswith(str(newest["origin"])) for s in SQL_STRINGS)
    assert served.healthy()


def test_a_good_frame_among_refused_ones_is_applied_alone(served: Served, senders: dict[str, Sender]) -> None:
    TALLY.add("http: one authentic frame among forged ones")
    village = senders["village"]
    seq, _ = served.position(village)
    good = served.batch(
        village,
        [served.wire(village, seq, "application", village.fresh_id(), application_fields(village, 70_000 + seq))],
    )
    forged = forge_frame(
        {
            "v": 1,
            "kind": "batch",
            "codec": "zlib",
            "sealed": False,
            "signer": village.code,
            "signer_key": "0" * 16,
            "recipient": served.hub.hub_id,
            "recipient_key": "",
            "origin": village.code,
            "epoch": 1,
            "first_seq": seq,
            "last_seq": seq,
            "count": 1,
            "prev": bytes(32),
            "hlc": 1,
        },
        zlib.compress(pack([None])),
        FOREIGN_KEY,
    )
    before = counts(served.hub)
    rejected_before, _ = served.rejections()
    reply = served.push([forged, good, b"junk"])
    assert reply.status == 200, reply.body[:300]
    acks = served.open_acks(village, reply)
    assert [a["result"] for a in acks] == ["rejected", "applied", "rejected"]
    assert all(a["reason"] for a in (acks[0], acks[2]))
    after = counts(served.hub)
    assert after["changes"] == before["changes"] + 1 and after["applications"] == before["applications"] + 1
    assert served.rejections()[0] == rejected_before + 2


# -- signed request headers (pull, blobs) ------------------------------------------------------------------


@st.composite
def hostile_request_header(draw: st.DrawFn, served: Served, senders: dict[str, Sender]) -> tuple[str, str]:
    village = senders["village"]
    now = served.hub.clock()
    how = draw(
        st.sampled_from(
            [
                "text",
                "b64 random",
                "b64 magic",
                "damaged doc",
                "unknown key",
                "stale",
                "future",
                "wrong kind",
                "other hub",
                "bad fields",
                "revoked",
                "batch frame",
                "not base64",
            ]
        )
    )
    if how == "text":
        return draw(HEADER_VALUES), how
    if how == "b64 random":
        return base64.b64encode(draw(st.binary(max_size=400))).decode(), how
    if how == "b64 magic":
        return base64.b64encode(MAGIC + draw(st.binary(max_size=400))).decode(), how
    if how == "not base64":
        return draw(st.sampled_from(["%%%%", "abc", "====", "a b c", "SJF1?", "-_-_"])), how
    body: object = {"after": 0, "at_ms": now, "pending": 0, "catalogue_version": 0}
    kind, sender, recipient = "pull", village, served.hub.hub_id
    if how == "stale":
        body = {"after": 0, "at_ms": now - draw(st.integers(16 * 60_000, 10**12))}
    elif how == "future":
        body = {"after": 0, "at_ms": now + draw(st.integers(16 * 60_000, 2**61))}
    elif how == "wrong kind":
        kind = draw(st.sampled_from(["acks", "feed", "catalogue", "blob", "reconcile-request", "enrollment"]))
    elif how == "other hub":
        recipient = "360803"
    elif how == "bad fields":
        body = draw(
            st.one_of(
                st.dictionaries(
                    st.sampled_from(["after", "at_ms", "pending", "catalogue_version"]),
                    st.one_of(
                        st.text(max_size=5),
                        st.booleans(),
                        st.integers(-(2**63), -1),
                        st.integers(2**62, 2**64 - 1),
                        st.none(),
                        st.floats(allow_nan=False, allow_infinity=False),
                    ),
                    min_size=1,
                ),
                MSGPACK_VALUES,
            )
        )
    elif how == "revoked":
        sender = senders["revoked"]
    doc_sender = Sender(sender.code, sender.tier, FOREIGN_KEY if how == "unknown key" else sender.sign, sender.seal)
    from protocol.document import sign_document

    if how == "batch frame":
        doc = genuine(served, village, 7)
    else:
        doc = sign_document(kind, body, signer=doc_sender.code, recipient=recipient, signing_key=doc_sender.sign)
    if how == "damaged doc":
        at = draw(st.integers(0, 2**20)) % len(doc)  # the document's length varies with the time it carries
        doc = doc[:at] + bytes([doc[at] ^ 0x10]) + doc[at + 1 :]
    return base64.b64encode(doc).decode(), how


@hostile(400)
@given(data=st.data())
def test_hostile_signed_request_headers_are_refused(
    served: Served, senders: dict[str, Sender], data: st.DataObject
) -> None:
    TALLY.add("http: hostile X-Sanji-Request on pull and blob routes")
    header, how = data.draw(hostile_request_header(served, senders), label="header")
    route = data.draw(
        st.sampled_from(["GET /v1/sync/pull", f"GET /v1/blobs/{'a' * 64}", f"PUT /v1/blobs/{'a' * 64}/0"]),
        label="route",
    )
    method, path = route.split(" ")
    before = counts(served.hub)
    reply = served.request(
        method, path, headers={"X-Sanji-Request": header}, data=b"chunk" if method == "PUT" else None
    )
    assert 400 <= reply.status < 500, f"{how} on {route}: {reply.status} {reply.body[:300]!r}"
    assert reply.json().get("error"), reply.body[:200]
    assert not snapshot_unchanged(before, counts(served.hub), allow=("rejected",))
    assert served.healthy()


# -- enrolment ------------------------------------------------------------------------------------------


@st.composite
def hostile_enrolment(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["random", "value", "fields"]))
    if how == "random":
        return draw(st.binary(max_size=600))
    if how == "value":
        return pack(draw(MSGPACK_VALUES))
    token = draw(
        st.one_of(
            st.sampled_from(SQL_STRINGS),
            st.text(max_size=60),
            st.binary(max_size=40),
            MSGPACK_INTS,
            st.just("SJT-" + "A" * 24),
        )
    )
    fields = {
        "token": token,
        "station": draw(st.one_of(st.sampled_from(SQL_STRINGS), st.text(max_size=30))),
        "sign_pub": draw(st.binary(max_size=40)),
        "seal_pub": draw(st.binary(max_size=40)),
    }
    keep = draw(st.sets(st.sampled_from(sorted(fields))))
    return pack({k: v for k, v in fields.items() if k in keep or draw(st.booleans())})


@hostile(200)
@given(body=hostile_enrolment())
def test_hostile_enrolments_are_refused_and_consume_nothing(
    served: Served, senders: dict[str, Sender], body: bytes
) -> None:
    TALLY.add("http: hostile enrolment requests")
    before = counts(served.hub)
    used_before = served.hub.store.conn.execute("SELECT COUNT(*) FROM tokens WHERE used_ms IS NOT NULL").fetchone()
    reply = served.request("POST", "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"})
    assert 400 <= reply.status < 500, f"{reply.status} {reply.body[:300]!r}"
    assert reply.json().get("error")
    assert not snapshot_unchanged(before, counts(served.hub))
    used_after = served.hub.store.conn.execute("SELECT COUNT(*) FROM tokens WHERE used_ms IS NOT NULL").fetchone()
    assert used_before == used_after
    assert served.healthy()


def test_a_genuine_enrolment_still_works_after_all_that(served: Served) -> None:
    """The control: the refusals above are the hub refusing, not a broken route."""
    token = enrolment.register(served.hub, station=f"{TOWNSHIP}-07", name="对照站", tier="village", parent=TOWNSHIP)
    sign, seal = signing_key_from_seed(bytes([7]) * 32), sealing_key_from_seed(bytes([8]) * 32)
    # The token never travels: a challenge for its id, then an HMAC over the challenge and the keys.
    key = token_key(parse_token(token))
    asked = served.request(
        "POST",
        "/v1/enroll/challenge",
        data=pack({"token_id": token_id(key)}),
        headers={"Content-Type": "application/msgpack"},
    )
    assert asked.status == 200, asked.body[:300]
    challenge = unpack(asked.body)["challenge"]  # type: ignore[index]
    body = pack(
        {
            "challenge": challenge,
            "sign_pub": public_bytes(sign),
            "seal_pub": public_bytes(seal),
            "proof": enrol_proof(key, challenge, public_bytes(sign), public_bytes(seal)),
        }
    )
    reply = served.request("POST", "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"})
    assert reply.status == 200, reply.body[:300]
    again = served.request("POST", "/v1/enroll", data=body, headers={"Content-Type": "application/msgpack"})
    assert again.status == 403 and "already been used" in again.json()["message"]
