"""What one simulated run counted: the figures the seed tests check were actually exercised."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunStats:
    accepted: int = 0
    refused_ops: int = 0
    rounds_done: int = 0
    rounds_failed: int = 0
    held: int = 0
    released: int = 0
    forks: int = 0
    restores: int = 0
    lost_to_restore: int = 0
    forgeries: int = 0
    converged_in: int = 0
    rotations: int = 0
    replays: int = 0  # pulls a frozen network answered with an old page
    stale_flagged: int = 0  # rounds that ended with the station flagged stale because of them
    events: int = 0
    acks: dict[str, int] = field(default_factory=dict)
    hub_processes: int = 1  # hub serve --workers: each request answered by one of them
    answers_by_others: int = 0  # requests answered by a hub process other than the first
    # Villages through the township's relay (relay.py, relay_malice.py)
    relay_villages: int = 0  # villages that went through it for a while (0: no relay in this run)
    misbehaviours: tuple[str, ...] = ()  # how the relay was drawn to misbehave for a while (relay_malice.MODES)
    misdeeds: dict[str, int] = field(default_factory=dict)  # what it did wrong, and how often
    relay_visits: int = 0  # village rounds at the relay's door
    relay_forwarded: int = 0  # village batches the township forwarded and the hub answered
    relay_pages: int = 0  # feed pages a village applied from the relay
    tampered_refused: int = 0  # documents the relay wrote, cut, swapped or replayed, refused by villages
    relay_stress: str = ""  # how its healing was made harder (relay_stress.py)
    relay_usb: int = 0  # villages that carried sticks to the township instead (relay_usb.py)
    usb_trips: int = 0  # their trips there and back
    usb_generation_back: int = 0  # replayed pages by stick that took a village back to an older feed generation
    relay_full: int = 0  # pushes the relay refused at its quota (relay_stress.py near_quota)
    keys_refused: int = 0  # key histories from the relay a village refused whole (bad_keys)
    relay_converged_in: int = 0  # healing rounds until the villages drained both ways through the relay


def relay_figures(runs: list[RunStats]) -> str:
    """One line for ``python -m tests.sim``: how many seeds ran villages through the relay, what the
    relay did wrong in them, and in how many healing rounds they agreed through it."""
    relayed = [s for s in runs if s.relay_villages]
    drawn: dict[str, int] = {}
    done: dict[str, int] = {}
    rounds: dict[int, int] = {}
    for s in relayed:
        for m in s.misbehaviours:
            drawn[m] = drawn.get(m, 0) + 1
        for m, n in s.misdeeds.items():
            done[m] = done.get(m, 0) + n
        rounds[s.relay_converged_in] = rounds.get(s.relay_converged_in, 0) + 1
    bad = sum(1 for s in relayed if s.misbehaviours)
    return (
        f"relay: {len(relayed)} of {len(runs)} seeds sent {sum(s.relay_villages for s in relayed)} village(s) through"
        f" the township ({sum(s.relay_visits for s in relayed)} visits, {sum(s.relay_forwarded for s in relayed)}"
        f" batches forwarded, {sum(s.relay_pages for s in relayed)} pages taken); misbehaving in {bad} seeds"
        " (seeds · misdeeds): "
        + (", ".join(f"{m} {n}·{done.get(m, 0)}" for m, n in sorted(drawn.items())) or "none")
        + f"; {sum(s.tampered_refused for s in relayed)} tampered documents refused; drained through the relay in "
        + (", ".join(f"{n} round(s): {c}" for n, c in sorted(rounds.items())) or "-")
        + f"; by stick through the township in {sum(1 for s in relayed if s.relay_usb)} seeds"
        f" ({sum(s.relay_usb for s in relayed)} villages, {sum(s.usb_trips for s in relayed)} trips,"
        f" {sum(s.usb_generation_back for s in relayed)} replayed pages took a village back a feed generation)"
        + f"; {sum(s.keys_refused for s in relayed)} key histories refused, {sum(s.relay_full for s in relayed)}"
        " pushes refused at the quota; by healing schedule (seeds: rounds): "
        + "; ".join(f"{k} {len(v)}: {max(v)} max" for k, v in sorted(stressed(relayed).items()))
    )


def stressed(relayed: list[RunStats]) -> dict[str, list[int]]:
    """Rounds to drain by each harder healing schedule (relay_stress.py) a seed drew, and "plain"."""
    out: dict[str, list[int]] = {}
    for s in relayed:
        for part in (s.relay_stress or "plain").split("+"):
            key = "every" if "visits" in part else part
            out.setdefault(key, []).append(s.relay_converged_in)
    return out
