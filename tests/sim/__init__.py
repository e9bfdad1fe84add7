"""Deterministic fault simulator: one seed drives a district of stations and a hub through
message loss, duplication, delay, partitions, crashes, clock skew, USB replays, backup restores,
out-of-order catalogue releases, hub key rotations, a frozen feed, and villages cut off from the hub
that go through their township's relay, over its listener or by stick (relay.py, relay_usb.py), which
misbehaves for a while (relay_malice.py) and heals on harder schedules (relay_stress.py). The hub and the
stations are the real ``hub/`` and ``node/`` code, each in a folder of its own, on virtual clocks
(district.py); the stations' conversations are node/conversation.py's, carried by the simulated network.

Run ``python -m tests.sim --seeds 500`` or ``make sim SEEDS=500``; replay one with ``--seed N``.
"""

from __future__ import annotations
