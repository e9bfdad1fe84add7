"""Unauthenticated junk cannot grow the hub's database without bound.

2,000 pushes of frames nobody could have signed (random bytes, unknown signers, forged signatures,
frames claiming a revoked station) are each refused and counted, but the record of them grows by a
row per (address, hour, reason code), and the "revoked station still sending" alert by a row per
station and hour, however many requests arrive. What the operator sees still adds up to every one.
"""

from __future__ import annotations

import zlib

import pytest

from hub.operations import status
from protocol.codec import pack
from protocol.keys import signing_key_from_seed

from .harness import TALLY, Sender, Served, forge_frame

pytestmark = pytest.mark.usefixtures("_hub_still_serves")

JUNK_REQUESTS = 2000
FOREIGN_KEY = signing_key_from_seed(bytes([77]) * 32)
# Distinct reason codes the junk below can earn: malformed, unknown_key, bad_signature, revoked.
CODES = 4


def _batch_header(served: Served, signer: str) -> dict[str, object]:
    return {
        "v": 1,
        "kind": "batch",
        "codec": "zlib",
        "sealed": False,
        "signer": signer,
        "signer_key": "0" * 16,
        "recipient": served.hub.hub_id,
        "recipient_key": "",
        "origin": signer,
        "epoch": 1,
        "first_seq": 1,
        "last_seq": 1,
        "count": 1,
        "prev": bytes(32),
        "hlc": 1,
    }


def _junk(served: Served, senders: dict[str, Sender], n: int) -> bytes:
    body = zlib.compress(pack([None]))
    kind = n % CODES
    if kind == 0:
        return b"junk %d" % n
    if kind == 1:
        # A different made-up station every time: a claimed origin must not make a row of its own.
        return forge_frame(_batch_header(served, f"360802-T77-{n:05d}"), body, FOREIGN_KEY)
    if kind == 2:
        return forge_frame(_batch_header(served, senders["village"].code), body, FOREIGN_KEY)
    return forge_frame(_batch_header(served, senders["revoked"].code), body, FOREIGN_KEY)


def _rows(served: Served, table: str) -> int:
    return int(served.hub.store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_two_thousand_junk_pushes_add_a_bounded_number_of_rows(served: Served, senders: dict[str, Sender]) -> None:
    TALLY.add("http: 2,000 unauthenticated junk pushes", JUNK_REQUESTS)
    refused_before = status(served.hub)["rejected_batches"]
    alerts_before = served.hub.store.count("alerts")
    rows_before = {t: _rows(served, t) for t in ("rejected", "alerts")}
    for n in range(JUNK_REQUESTS):
        reply = served.push([_junk(served, senders, n)])
        assert 400 <= reply.status < 500, (n, reply.status, reply.body[:200])
    added = {t: _rows(served, t) - rows_before[t] for t in rows_before}
    # One source address; the run may straddle an hour boundary, so up to two hours' rows.
    assert added["rejected"] <= 2 * CODES, added
    assert added["alerts"] <= 2, added
    shown = status(served.hub)
    assert shown["rejected_batches"] == refused_before + JUNK_REQUESTS, "every refusal is still counted"
    assert served.hub.store.count("alerts") - alerts_before == JUNK_REQUESTS // CODES
    last = shown["last_rejections"]
    assert isinstance(last, list) and sum(int(r["count"]) for r in last if r["source"] == "http:127.0.0.1") >= (
        JUNK_REQUESTS // 2
    ), "the operator sees the flood as a few rows with large counts"
    print(f"\n{JUNK_REQUESTS} junk pushes added {added['rejected']} rejected rows and {added['alerts']} alert rows")
