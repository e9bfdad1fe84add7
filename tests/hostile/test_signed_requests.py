"""Genuine signatures over request documents with invalid content: signed pull, blob and reconcile
requests from an enrolled station.

Every request here is correctly signed by an enrolled station; what is wrong is what it asks for (pull
positions and figures out of range or of the wrong type, blob operations, hashes, sizes, indexes and
times that are invalid, merkle requests and session figures that cannot be read). Each gets a 4xx with
a reason (never a 5xx), nothing but the record of refusals changes, and the hub keeps serving.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.blob import is_sha256_hex

from .harness import (
    SQL_STRINGS,
    TALLY,
    counts,
    hostile,
    snapshot_unchanged,
)
from .helpers import MSGPACK_INTS, World

# -- signed requests with invalid content -------------------------------------------------------------------


@st.composite
def bad_blob_request(draw: st.DrawFn, now: int) -> tuple[dict[str, object], str]:
    sha = draw(st.sampled_from(["a" * 64, "f" * 64]))
    body: dict[str, object] = {
        "op": draw(st.sampled_from(["query", "chunk"])),
        "sha256": sha,
        "size": 1000,
        "index": 0,
        "chunk_sha256": "b" * 64,
        "at_ms": now,
    }
    what = draw(st.sampled_from(["op", "sha256", "size", "index", "chunk_sha256", "at_ms", "unreferenced"]))
    if what != "unreferenced":
        body[what] = draw(
            st.sampled_from(
                {
                    "op": ["file", "delete", "", None, 1, *SQL_STRINGS[:2]],
                    "sha256": ["A" * 64, "a" * 63, "../" * 21 + "a", None, 7, SQL_STRINGS[0]],
                    "size": [0, -1, 10 * 2**20 + 1, 2**64 - 1, "1000", None, True],
                    "index": [-1, 4, 2**40, "0", None, True],
                    "chunk_sha256": ["", "B" * 64, None, 3],
                    "at_ms": [now - 3_600_000, now + 3_600_000, "now", None, -1],
                }[what]
            )
        )
    return body, what


@hostile(250)
@given(data=st.data())
def test_signed_pull_and_blob_requests_with_invalid_content_are_4xx(world: World, data: st.DataObject) -> None:
    TALLY.add("signed: pull and blob requests with invalid content")
    s = world.served
    now = s.hub.clock()
    before = counts(s.hub)
    if data.draw(st.booleans(), label="blob?"):
        body, what = data.draw(bad_blob_request(now), label="blob request")
        sha = str(body["sha256"]) if is_sha256_hex(body.get("sha256")) else "a" * 64
        if body.get("op") == "chunk":
            method, path = "PUT", f"/v1/blobs/{sha}/{body.get('index') if isinstance(body.get('index'), int) else 0}"
        else:
            method, path = "GET", f"/v1/blobs/{sha}"
        reply = s.request(method, path, headers=s.signed_header(world.v1, "blob", body), data=b"x" * 10)
    else:
        what = "pull"
        body = data.draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "after": st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=5), st.none(), st.booleans()),
                    "at_ms": st.one_of(st.just(now), st.integers(-(2**63), 2**64 - 1), st.text(max_size=5)),
                    "pending": st.one_of(
                        st.integers(-(2**63), -1),
                        st.integers(2**62, 2**64 - 1),
                        st.floats(allow_nan=False, allow_infinity=False),
                    ),
                    "catalogue_version": st.one_of(st.text(max_size=3), st.integers(-(2**63), -1), st.none()),
                },
            ).filter(
                lambda b: (
                    not (
                        b.get("at_ms") == now
                        and type(b.get("after")) is int
                        and 0 <= b["after"] < 2**62
                        and set(b) <= {"after", "at_ms"}
                    )
                )
            ),
            label="pull body",
        )
        reply = s.request("GET", "/v1/sync/pull", headers=s.signed_header(world.v1, "pull", body))
    assert 400 <= reply.status < 500, f"{what} {body}: {reply.status} {reply.body[:300]!r}"
    assert reply.json().get("error")
    assert not snapshot_unchanged(before, counts(s.hub), allow=("rejected",))
    assert s.healthy()


RECONCILE_BUG = (
    "BUG hub/reconcile.py handle(): a correctly signed /v1/reconcile request with invalid content escapes as a "
    "non-protocol exception, so hub/web/errors.py errors_middleware let aiohttp answer 500: a malformed merkle "
    "request raises sync.merkle.ReconcileError (a ValueError) from request_depth()/answer(), and op 'done' with a "
    "non-integer figure ('x') raises ValueError, or with one >= 2**63 OverflowError, from record_session()'s "
    "int(str(...)) and the SQLite INSERT. They should be refused with a 4xx (MalformedError) like other bad content."
)


# Regression for RECONCILE_BUG (fixed: invalid content is a MalformedError, 400).
@pytest.mark.parametrize(
    "body",
    [
        {"op": "merkle", "request": {}},
        {"op": "merkle", "request": {"v": 1, "depth": 99}},
        {"op": "merkle", "request": {"v": 1, "depth": 2, "digests": ["zz"]}},
        {"op": "done", "buckets_compared": "x"},
        {"op": "done", "repaired": 2**64 - 1},
    ],
    ids=["merkle-empty", "merkle-too-deep", "merkle-bad-prefix", "done-text-figure", "done-huge-figure"],
)
def test_a_signed_reconcile_request_with_invalid_content_is_a_4xx(world: World, body: dict[str, object]) -> None:
    TALLY.add("signed: reconcile requests with invalid content")
    s = world.served
    doc = s.signed(world.v1, "reconcile-request", {**body, "at_ms": s.hub.clock()})
    reply = s.request("POST", "/v1/reconcile", data=doc, headers={"Content-Type": "application/vnd.sanji.document"})
    assert s.healthy()
    assert 400 <= reply.status < 500, f"{body}: {reply.status} {reply.body[:120]!r}"


@st.composite
def reconcile_body(draw: st.DrawFn) -> dict[str, object]:
    op = draw(st.sampled_from(["merkle", "records", "repair", "done", "nonsense", None]))
    junk = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.text(max_size=8),
        st.lists(st.one_of(st.text(max_size=4), st.integers(-(2**63), 2**63 - 1)), max_size=3),
    )
    body: dict[str, object] = {"op": op}
    if op == "merkle":
        body["request"] = draw(
            st.one_of(
                junk,
                st.fixed_dictionaries(
                    {"v": st.sampled_from([1, 2, "1"]), "depth": st.one_of(st.integers(-2, 12), st.text(max_size=2))},
                    optional={
                        "digests": st.lists(st.text(alphabet="0123456789abcdefxyz", max_size=4), max_size=3),
                        "children": junk,
                        "buckets": junk,
                    },
                ),
            )
        )
    elif op == "records":
        body["keys"] = draw(
            st.one_of(
                junk,
                st.lists(MSGPACK_INTS, min_size=1, max_size=3),
                st.lists(st.text(max_size=10), min_size=257, max_size=260),
            )
        )
    elif op == "repair":
        body.update(draw(st.fixed_dictionaries({}, optional={"changes": junk, "foreign": junk, "chain": junk})))
    elif op == "done":
        body.update(
            draw(
                st.fixed_dictionaries(
                    {},
                    optional={k: junk for k in ("buckets_compared", "divergent", "repaired", "bytes", "summary_match")},
                )
            )
        )
    return body


# Regression for RECONCILE_BUG (fixed: invalid content is a MalformedError, 400).
@hostile(300, shrink=False)
@given(body=reconcile_body())
def test_signed_reconcile_requests_with_random_invalid_content_never_get_a_5xx(
    world: World, body: dict[str, object]
) -> None:
    TALLY.add("signed: random reconcile requests")
    s = world.served
    before = counts(s.hub)
    doc = s.signed(world.v1, "reconcile-request", {**body, "at_ms": s.hub.clock()})
    reply = s.request("POST", "/v1/reconcile", data=doc, headers={"Content-Type": "application/vnd.sanji.document"})
    assert s.healthy()
    assert reply.status < 500, f"{body}: {reply.status}"
    if reply.status >= 400:
        assert not snapshot_unchanged(before, counts(s.hub), allow=("rejected",))
