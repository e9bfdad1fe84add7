"""The blob store (content-addressed files) and chunk planning (which chunks still have to travel)."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest

from protocol.blob import (
    CHUNK_SIZE,
    MAX_BLOB_BYTES,
    BlobRequest,
    chunk_count,
    chunk_span,
    is_sha256_hex,
    missing_chunks,
    parse_request,
    request_body,
)
from protocol.errors import MalformedError, TooLargeError
from replica.blobstore import BlobError, BlobStore, sha256_file


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- chunk planning -------------------------------------------------------------------------------


def test_chunk_count_and_spans_cover_the_blob_exactly() -> None:
    for size in (1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, MAX_BLOB_BYTES):
        n = chunk_count(size)
        spans = [chunk_span(size, i) for i in range(n)]
        assert spans[0][0] == 0
        assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(spans))
        assert spans[-1][0] + spans[-1][1] == size
        assert all(0 < length <= CHUNK_SIZE for _, length in spans)
        assert all(length == CHUNK_SIZE for _, length in spans[:-1])


def test_chunk_span_refuses_indices_outside_the_blob() -> None:
    with pytest.raises(MalformedError):
        chunk_span(CHUNK_SIZE + 1, 2)
    with pytest.raises(MalformedError):
        chunk_span(10, -1)


def test_sizes_outside_the_cap_are_refused_with_a_reason() -> None:
    with pytest.raises(TooLargeError, match="10 MiB"):
        chunk_count(MAX_BLOB_BYTES + 1)
    with pytest.raises(MalformedError):
        chunk_count(0)


def test_missing_chunks_sends_only_what_the_receiver_lacks() -> None:
    size = 5 * CHUNK_SIZE + 7  # six chunks
    assert missing_chunks(size, []) == [0, 1, 2, 3, 4, 5]
    assert missing_chunks(size, [0, 1, 4]) == [2, 3, 5]
    assert missing_chunks(size, range(6)) == []
    # Claims of chunks that cannot exist never excuse sending a real one.
    assert missing_chunks(size, [-1, 6, 99, 2]) == [0, 1, 3, 4, 5]


def test_is_sha256_hex_accepts_only_a_content_address() -> None:
    good = sha(b"x")
    assert is_sha256_hex(good)
    for bad in (good.upper(), good[:-1], good + "0", "../" + good[3:], None, 42, "g" * 64):
        assert not is_sha256_hex(bad)


def test_blob_requests_round_trip_and_refuse_bad_shapes() -> None:
    s = sha(b"photo")
    for req in (
        BlobRequest("query", s, 10, at_ms=5),
        BlobRequest("chunk", s, 10, 0, sha(b"c"), 5),
        BlobRequest("file", s, 3, data=b"abc"),
    ):
        assert parse_request(request_body(req)) == req
    with pytest.raises(MalformedError):
        parse_request({"op": "delete", "sha256": s, "size": 1})
    with pytest.raises(MalformedError):
        parse_request({"op": "query", "sha256": "not-a-hash", "size": 1, "at_ms": 1})
    with pytest.raises(MalformedError):
        parse_request({"op": "chunk", "sha256": s, "size": 10, "index": 1, "chunk_sha256": sha(b"c"), "at_ms": 1})
    with pytest.raises(TooLargeError):
        parse_request({"op": "query", "sha256": s, "size": MAX_BLOB_BYTES + 1, "at_ms": 1})
    with pytest.raises(MalformedError):
        parse_request({"op": "file", "sha256": s, "size": 4, "data": b"abc"})


# -- the store --------------------------------------------------------------------------------------


def test_put_is_content_addressed_fanned_out_and_deduplicated(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(1000)
    name = store.put(data)
    assert name == sha(data)
    assert store.path(name) == tmp_path / "blobs" / name[:2] / name[2:]
    assert store.read(name) == data and store.size(name) == 1000
    mtime = store.path(name).stat().st_mtime_ns
    assert store.put(data) == name
    assert store.path(name).stat().st_mtime_ns == mtime  # stored once
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == [store.path(name)]


def test_put_file_refuses_an_oversize_file_before_writing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 2048)
    with pytest.raises(BlobError, match="larger than"):
        store.put_file(big, max_bytes=1024)
    assert not (tmp_path / "blobs").exists()
    name, size = store.put_file(big, max_bytes=4096)
    assert (name, size) == (sha(b"\xff" * 2048), 2048)
    assert sha256_file(store.path(name), max_bytes=4096) == (name, 2048)


def test_read_chunk_and_delete(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(2 * CHUNK_SIZE + 10)
    name = store.put(data)
    assert b"".join(store.read_chunk(name, i) for i in range(chunk_count(len(data)))) == data
    assert store.verify(name)
    assert store.delete(name) == len(data)
    assert not store.has(name) and store.delete(name) == 0
    assert not store.path(name).parent.exists()  # the empty fan-out folder goes too


def test_verify_notices_a_damaged_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    name = store.put(b"original bytes")
    store.path(name).write_bytes(b"changed bytes!")
    assert not store.verify(name)


def test_names_that_are_not_hashes_never_become_paths(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    for bad in ("../../etc/passwd", "ab", "A" * 64):
        with pytest.raises(BlobError):
            store.path(bad)
        with pytest.raises(BlobError):
            store.held_chunks(bad)


def test_chunks_assemble_into_the_blob_only_when_the_whole_matches(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(2 * CHUNK_SIZE + 99)
    name = sha(data)
    n = chunk_count(len(data))
    for i in (2, 0):
        off, length = chunk_span(len(data), i)
        store.put_chunk(name, i, data[off : off + length])
    assert store.held_chunks(name) == [0, 2]
    off, length = chunk_span(len(data), 1)
    store.put_chunk(name, 1, data[off : off + length])
    assert store.assemble(name, n)
    assert store.read(name) == data and store.held_chunks(name) == []


def test_a_blob_that_does_not_hash_to_its_name_is_refused_and_its_chunks_deleted(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = os.urandom(CHUNK_SIZE + 5)
    name = sha(data)
    store.put_chunk(name, 0, data[:CHUNK_SIZE])
    store.put_chunk(name, 1, b"XXXXX")  # the last chunk changed
    assert not store.assemble(name, 2)
    assert not store.has(name)
    assert store.held_chunks(name) == []
