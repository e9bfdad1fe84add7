"""Cutting a run of encoded changes into batches.

A batch must stay small enough to upload over a weak rural link (and to pass the hub's unpack limits)
yet big enough that per-batch overhead (signature, header, round trip) stays negligible. Batches are
contiguous so that each one is a gapless ``first_seq..last_seq`` run of the origin's log.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_batches(sizes: Sequence[int], *, max_count: int, max_bytes: int) -> list[range]:
    """Split indexes ``0..len(sizes)-1`` into contiguous, non-empty ranges, greedily filling each one.

    A range holds at most ``max_count`` items whose sizes add up to at most ``max_bytes``. An item
    that alone exceeds ``max_bytes`` still gets a range of its own: dropping it would leave a hole in
    the sequence numbers that the hub could never fill, so it is up to the receiver to accept or
    quarantine it.
    """
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    if max_bytes < 1:
        raise ValueError("max_bytes must be at least 1")
    batches: list[range] = []
    start = 0
    total = 0
    for i, size in enumerate(sizes):
        if size < 0:
            raise ValueError(f"size at index {i} is negative")
        if i > start and (i - start >= max_count or total + size > max_bytes):
            batches.append(range(start, i))
            start = i
            total = 0
        total += size
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches
