"""Deterministic fault simulator: one seed drives a district of in-memory stations and a hub through
message loss, duplication, delay, partitions, crashes, clock skew, USB replays, backup restores,
out-of-order catalogue releases, hub key rotations and a frozen feed, while the real ``sync/`` and
``protocol/`` code does all the merging, classification, signing and verification. Only the thin
storage adapters are re-implemented, in memory.

Run ``python -m tests.sim --seeds 500`` or ``make sim SEEDS=500``; replay one with ``--seed N``.
"""

from __future__ import annotations
