"""The simulator's relay (issue 17): the three-round bound, the altered key history and the stick through
the township each have a check that fails when what it guards is broken."""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest

from node import epoch, hubkeys, relay_queue
from node.station import Station
from tests.sim import faults, relay, relay_stress, relay_usb
from tests.sim.faults import HOUR, MINUTE, START_MS
from tests.sim.runner import run_seed
from tests.sim.world import World


def _seeds(want: str) -> Iterator[int]:
    """Relay seeds with ``want``: a misdeed of relay_malice.MODES, a healing schedule, or "usb"."""
    for seed in range(5000):
        drawn = relay.draw(seed, faults.draw(random.Random(seed)))
        if drawn is None:
            continue
        if want == "usb":
            if relay_usb.draw(seed, sorted(drawn[0])):
                yield seed
        elif want in drawn[1].modes or getattr(relay_stress.draw(seed), want, False):
            yield seed


def _stall_forwarding(monkeypatch: pytest.MonkeyPatch, rounds: int) -> None:
    """The township's rounds with the hub all fail for the first ``rounds`` healing rounds."""
    real = relay.forward

    def stalled(world: World):  # type: ignore[no-untyped-def]
        healed = START_MS + world.plan.duration + HOUR
        assert world.relay is not None
        if world.relay.healing and world.now <= healed + rounds * 30 * MINUTE:
            return
        return (yield from real(world))

    monkeypatch.setattr(relay, "forward", stalled)


def test_the_bound_is_three_rounds_once_the_relay_behaves(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relay that still carries nothing in the first two healing rounds leaves the third to drain in,
    and passes; one that carries nothing in three fails the seed (relay_no_convergence)."""
    for seed in islice(_seeds("backlog"), 12):
        with monkeypatch.context() as m:
            _stall_forwarding(m, 3)
            late = run_seed(seed)[0]
        if "relay_no_convergence" not in {v.kind for v in late.violations}:
            continue  # drained without the relay (nothing was waiting at it)
        with monkeypatch.context() as m:
            _stall_forwarding(m, 2)
            in_time = run_seed(seed)[0]
        assert in_time.violations == () and in_time.stats.relay_converged_in == 3, (seed, in_time.violations)
        return
    pytest.fail("no backlog seed needed its relay to drain")


def test_a_village_that_does_not_check_the_key_history_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A village following the relay's history without the root's signatures would not refuse it."""
    monkeypatch.setattr(hubkeys, "follow", lambda docs, *, hub_id, anchor, version=0: (anchor, None))
    for seed in islice(_seeds("bad_keys"), 10):
        if "relay_tamper_taken" in {v.kind for v in run_seed(seed)[0].violations}:
            return
    pytest.fail("no seed caught a village taking an altered key history")


def test_a_township_that_hands_a_sticks_receipts_to_nobody_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stick cargo that takes the receipts waiting for its village (the bug the USB trips found): the
    village never settles by stick."""
    real = relay_queue.RelayQueue.offer_up
    monkeypatch.setattr(
        relay_queue.RelayQueue,
        "offer_up",
        lambda self, frames, at_ms, hand_over=True: real(self, frames, at_ms),
    )
    for seed in islice(_seeds("usb"), 15):
        kinds = {v.kind for v in run_seed(seed)[0].violations}
        if kinds & {"relay_no_convergence", "outbox_not_drained"}:
            return
    pytest.fail("no USB seed caught receipts lost at the township")


def test_usb_and_stress_seeds_keep_every_invariant() -> None:
    """A few seeds of each: the stick, a backlog, a quota near full, a flapping line."""
    usb = list(islice(_seeds("usb"), 3))
    seeds = set(usb) | {s for want in ("backlog", "near_quota", "flap") for s in islice(_seeds(want), 3)}
    results = {s: run_seed(s)[0] for s in sorted(seeds)}
    assert {s: r.violations for s, r in results.items() if r.violations} == {}
    assert all(results[s].stats.usb_trips for s in usb)


def test_a_village_that_names_an_honest_relay_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed 232: a restore that forgets the nonces of the pull requests waiting at the relay makes the
    page answering one look like a replay (node/epoch.py carries them over now)."""
    real = epoch.restore

    def forgetful(folder: Path, source: Path, **kw: object) -> dict[str, object]:
        out = real(folder, source, **kw)  # type: ignore[arg-type]
        st = Station(folder)
        try:
            with st.transaction():
                st.meta.set("relay_nonces", [])
        finally:
            st.close()
        return out

    monkeypatch.setattr(epoch, "restore", forgetful)
    assert "honest_relay_named" in {v.kind for v in run_seed(232)[0].violations}
