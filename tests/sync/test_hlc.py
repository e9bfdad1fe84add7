from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.hlc import (
    DEFAULT_MAX_DRIFT_MS,
    HUB_QUARANTINE_AHEAD_MS,
    MAX_COUNTER,
    MAX_WALL_MS,
    Observation,
    counter,
    hlc_to_iso,
    is_too_far_ahead,
    observe,
    pack_hlc,
    tick,
    wall_ms,
)

# Around "now" so that jumps both ways stay meaningful; far from the representable limits.
NOW = 1_714_528_800_000
walls = st.integers(min_value=NOW - 10**9, max_value=NOW + 10**9)
counters = st.integers(min_value=0, max_value=MAX_COUNTER)
# Counters at the top of their range, so that sequences regularly cross an overflow.
high_counters = st.one_of(counters, st.integers(min_value=MAX_COUNTER - 3, max_value=MAX_COUNTER))
stamps = st.builds(pack_hlc, walls, high_counters)
drifts = st.integers(min_value=0, max_value=HUB_QUARANTINE_AHEAD_MS)


def test_constants() -> None:
    assert DEFAULT_MAX_DRIFT_MS == 5 * 60 * 1000
    assert HUB_QUARANTINE_AHEAD_MS == 10 * 60 * 1000
    assert MAX_COUNTER == 0xFFFF


@given(walls, counters)
def test_pack_round_trips(w: int, c: int) -> None:
    h = pack_hlc(w, c)
    assert h == (w << 16) | c
    assert (wall_ms(h), counter(h)) == (w, c)


@given(walls, counters, walls, counters)
def test_stamps_order_like_wall_then_counter(w1: int, c1: int, w2: int, c2: int) -> None:
    assert (pack_hlc(w1, c1) < pack_hlc(w2, c2)) == ((w1, c1) < (w2, c2))


@pytest.mark.parametrize(("w", "c"), [(-1, 0), (0, -1), (0, MAX_COUNTER + 1), (MAX_WALL_MS + 1, 0)])
def test_pack_rejects_out_of_range(w: int, c: int) -> None:
    with pytest.raises(ValueError):
        pack_hlc(w, c)


def test_stamp_fits_signed_64_bits() -> None:
    assert pack_hlc(MAX_WALL_MS, MAX_COUNTER) < 2**63
    with pytest.raises(ValueError):
        tick(pack_hlc(MAX_WALL_MS, MAX_COUNTER), 0)


def test_tick_follows_the_wall_clock_when_it_moves_forward() -> None:
    assert tick(pack_hlc(NOW, 7), NOW + 1) == pack_hlc(NOW + 1, 0)


def test_tick_counts_when_the_wall_clock_stalls_or_goes_back() -> None:
    assert tick(pack_hlc(NOW, 7), NOW) == pack_hlc(NOW, 8)
    assert tick(pack_hlc(NOW, 7), NOW - 60_000) == pack_hlc(NOW, 8)


@pytest.mark.parametrize("w", [NOW, NOW - 1, NOW - 86_400_000])
def test_counter_overflow_borrows_the_next_millisecond(w: int) -> None:
    assert tick(pack_hlc(NOW, MAX_COUNTER), w) == pack_hlc(NOW + 1, 0)


def test_many_ticks_in_one_millisecond_never_wrap() -> None:
    h = pack_hlc(NOW, 0)
    for _ in range(3 * (MAX_COUNTER + 1)):
        nxt = tick(h, NOW)
        assert nxt > h
        h = nxt
    assert wall_ms(h) == NOW + 3


ops = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), walls, st.just(0)),
        st.tuples(st.just("observe"), walls, stamps),
        st.tuples(st.just("burst"), walls, st.integers(min_value=1, max_value=6)),
    ),
    max_size=40,
)


@given(stamps, ops, drifts)
def test_any_sequence_of_events_gives_strictly_increasing_stamps(
    start: int, events: list[tuple[str, int, int]], drift: int
) -> None:
    last = start
    for kind, w, arg in events:
        if kind == "tick":
            nxt = tick(last, w)
            assert nxt > last
            assert wall_ms(nxt) <= max(wall_ms(last) + 1, w)
        elif kind == "observe":
            obs = observe(last, arg, w, max_drift_ms=drift)
            nxt = obs.stamp
            assert nxt > last
            assert obs.too_far_ahead == is_too_far_ahead(arg, w, drift)
            if obs.too_far_ahead:
                assert nxt == tick(last, w)
            else:
                assert nxt > arg
        else:
            nxt = last
            for _ in range(arg):
                prev, nxt = nxt, tick(nxt, w)
                assert nxt > prev
        assert 0 <= counter(nxt) <= MAX_COUNTER
        last = nxt


@given(stamps, walls, drifts, st.integers(min_value=1, max_value=10**12))
def test_a_far_future_remote_does_not_drag_the_clock_forward(last: int, w: int, drift: int, excess: int) -> None:
    remote = pack_hlc(w + drift + excess, 0)
    obs = observe(last, remote, w, max_drift_ms=drift)
    assert obs == Observation(stamp=tick(last, w), too_far_ahead=True)
    # The remote's time plays no part: the clock moves only as far as a local tick would.
    assert wall_ms(obs.stamp) <= max(wall_ms(last) + 1, w)


@given(stamps, walls, drifts, counters)
def test_a_remote_within_the_drift_is_adopted(last: int, w: int, drift: int, c: int) -> None:
    remote = pack_hlc(w + drift, c)
    obs = observe(last, remote, w, max_drift_ms=drift)
    assert not obs.too_far_ahead
    assert obs.stamp > max(last, remote)
    assert wall_ms(obs.stamp) <= max(wall_ms(last), wall_ms(remote)) + 1


def test_observe_merges_like_an_hlc() -> None:
    last = pack_hlc(NOW, 3)
    assert observe(last, pack_hlc(NOW, 9), NOW, max_drift_ms=0).stamp == pack_hlc(NOW, 10)
    assert observe(last, pack_hlc(NOW - 5, 9), NOW, max_drift_ms=0).stamp == pack_hlc(NOW, 4)
    assert observe(last, pack_hlc(NOW + 2, 9), NOW + 1, max_drift_ms=5).stamp == pack_hlc(NOW + 2, 10)
    assert observe(last, pack_hlc(NOW - 5, 9), NOW + 50, max_drift_ms=0).stamp == pack_hlc(NOW + 50, 0)


def test_is_too_far_ahead_boundary() -> None:
    assert not is_too_far_ahead(pack_hlc(NOW + 1000, MAX_COUNTER), NOW, 1000)
    assert is_too_far_ahead(pack_hlc(NOW + 1001, 0), NOW, 1000)
    assert not is_too_far_ahead(pack_hlc(NOW - 10**9, 0), NOW, 0)
    with pytest.raises(ValueError):
        is_too_far_ahead(pack_hlc(NOW, 0), NOW, -1)


def test_hlc_to_iso() -> None:
    h = pack_hlc(1_714_528_800_123, 42)
    assert hlc_to_iso(h) == "2024-05-01T10:00:00.123+08:00"
    assert hlc_to_iso(h, 0) == "2024-05-01T02:00:00.123+00:00"
    assert hlc_to_iso(h, -330) == "2024-04-30T20:30:00.123-05:30"
    assert hlc_to_iso(0) == "1970-01-01T08:00:00.000+08:00"
