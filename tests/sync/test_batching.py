from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.batching import plan_batches


@given(
    st.lists(st.integers(min_value=0, max_value=3000), max_size=200),
    st.integers(min_value=1, max_value=25),
    st.integers(min_value=1, max_value=6000),
)
def test_batches_cover_every_index_once_within_limits(sizes: list[int], max_count: int, max_bytes: int) -> None:
    batches = plan_batches(sizes, max_count=max_count, max_bytes=max_bytes)
    assert [i for batch in batches for i in batch] == list(range(len(sizes)))
    for n, batch in enumerate(batches):
        assert len(batch) >= 1
        assert batch.step == 1
        assert len(batch) <= max_count
        total = sum(sizes[i] for i in batch)
        if len(batch) > 1:
            assert total <= max_bytes
        else:
            assert total <= max_bytes or sizes[batch[0]] > max_bytes
        # Greedy: a batch is only cut when the next item would not have fitted.
        if n + 1 < len(batches):
            nxt = batch.stop
            assert len(batch) == max_count or total + sizes[nxt] > max_bytes


def test_empty_input_gives_no_batches() -> None:
    assert plan_batches([], max_count=10, max_bytes=100) == []


def test_oversize_items_travel_alone_rather_than_being_dropped() -> None:
    assert plan_batches([10, 500, 10, 10, 600], max_count=10, max_bytes=100) == [
        range(0, 1),
        range(1, 2),
        range(2, 4),
        range(4, 5),
    ]


def test_count_and_bytes_limits() -> None:
    assert plan_batches([1] * 7, max_count=3, max_bytes=100) == [range(0, 3), range(3, 6), range(6, 7)]
    assert plan_batches([40, 40, 40, 20], max_count=10, max_bytes=100) == [range(0, 2), range(2, 4)]
    assert plan_batches([0, 0, 0], max_count=10, max_bytes=1) == [range(0, 3)]


@pytest.mark.parametrize(("sizes", "count", "limit"), [([1], 0, 10), ([1], 1, 0), ([-1], 1, 10)])
def test_rejects_bad_arguments(sizes: list[int], count: int, limit: int) -> None:
    with pytest.raises(ValueError):
        plan_batches(sizes, max_count=count, max_bytes=limit)
