"""The pure decisions of sync/relay_evidence.py: what the hub's signed answers prove about a relay."""

from __future__ import annotations

from sync.relay_evidence import ChainAt, Handed, heard, report_digest, skipped

B = Handed(epoch=1, first_seq=5, last_seq=9, mark=2)  # left after the village's 2nd pull request


def test_a_batch_left_before_the_request_and_still_awaited_by_the_hub_was_skipped() -> None:
    assert skipped(ChainAt(1, 5, asked=3), [B]) == B
    assert skipped(ChainAt(1, 9, asked=3), [B]) == B  # the hub holds part of it: it still lacks seq 9


def test_a_batch_left_after_the_request_was_not_skipped_it_is_in_flight() -> None:
    assert skipped(ChainAt(1, 5, asked=2), [B]) is None  # the request went first
    assert skipped(ChainAt(1, 5, asked=1), [B]) is None


def test_the_hub_waiting_for_another_seq_or_epoch_proves_nothing_about_the_batch() -> None:
    assert skipped(ChainAt(1, 4, asked=3), [B]) is None  # an earlier seq is missing (a restored hub)
    assert skipped(ChainAt(1, 10, asked=3), [B]) is None  # the hub has it
    assert skipped(ChainAt(2, 5, asked=3), [B]) is None  # another epoch
    assert skipped(ChainAt(0, 0, asked=3), [B]) is None  # a hub that does not say
    assert skipped(ChainAt(1, 5, asked=3), []) is None  # nothing awaited (the hub answered it somehow)


def test_a_report_is_heard_only_by_the_exact_echo_of_its_digest() -> None:
    d = report_digest("360802-T01", "bad_acks", 1000)
    assert d == report_digest("360802-T01", "bad_acks", 1000) and len(d) == 16
    assert d != report_digest("360802-T01", "bad_acks", 1001)
    assert d != report_digest("360802-T02", "bad_acks", 1000)
    assert d != report_digest("360802-T01", "withheld", 1000)
    assert heard(d, d)
    assert not heard(d, None) and not heard(d, b"") and not heard(d, report_digest("360802-T01", "bad_acks", 999))
    assert not heard(b"", b"")
