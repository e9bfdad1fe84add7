"""What can go wrong in one run, all drawn from the seed's one ``random.Random`` before anything happens.

A plan is a handful of rates (loss, duplication, slowness, crash points) and a schedule of discrete
faults (partitions, crashes, clock jumps, USB replays, backups and restores, out-of-order releases,
forgeries). Drawing the whole plan first keeps a seed's faults the same when the code under test
changes how many random numbers the run itself consumes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Monday 2 March 2026, 09:00 in the district (UTC+8): a working day inside the sample catalogue's calendar.
START_MS = 1772413200000
HOUR = 3_600_000
MINUTE = 60_000
DAY = 24 * HOUR
MAX_SKEW_MS = 24 * HOUR

FORGERIES = (
    "unknown_signer",
    "wrong_key",
    "tampered_body",
    "tampered_header",
    "wrong_recipient",
    "impersonation",
    "forged_feed",
    "forged_release",
    "tampered_acks",
)


@dataclass(frozen=True)
class Scheduled:
    at: int  # ms after the start
    kind: str
    target: str = ""
    value: int = 0
    until: int = 0  # for faults with an end (partition, crash): ms after the start


@dataclass
class FaultPlan:
    villages: int
    sealed: bool
    duration: int
    ops: int
    loss: float
    dup: float
    slow: float
    max_batch: int
    max_push: int
    page_limit: int
    hub_crash_on_request: float
    node_crash_on_answer: float
    skews: dict[str, int] = field(default_factory=dict)
    schedule: list[Scheduled] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return ["T01"] + [f"V{i:02d}" for i in range(1, self.villages + 1)]


def _skew(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.45:
        return 0
    if roll < 0.75:
        return rng.randint(-5 * MINUTE, 5 * MINUTE)  # a village PC without NTP
    return rng.randint(-MAX_SKEW_MS, MAX_SKEW_MS)  # set to the wrong day, or the wrong time zone


def draw(rng: random.Random, *, copy_with_hub_restore: bool = False) -> FaultPlan:
    """The plan of one run. A station copied back by hand is only recognised by the hub remembering its
    old seqs, so a raw copy in the same run as a hub restore is beyond what the protocol can detect:
    unless asked for, such a copy becomes a proper restore (drawn the same, so seeds keep their plans)."""
    villages = rng.randint(1, 3)
    plan = FaultPlan(
        villages=villages,
        sealed=rng.random() < 0.5,
        duration=rng.randint(2 * DAY, 5 * DAY),
        ops=rng.randint(15, 45),
        loss=rng.choice((0.0, 0.01, 0.05, 0.15)),
        dup=rng.choice((0.0, 0.05, 0.2)),
        slow=rng.choice((0.0, 0.02, 0.1)),
        max_batch=rng.choice((1, 2, 3, 8, 2000)),
        max_push=rng.choice((1, 2, 64)),
        page_limit=rng.choice((3, 50, 2000)),
        hub_crash_on_request=rng.choice((0.0, 0.0, 0.03, 0.1)),
        node_crash_on_answer=rng.choice((0.0, 0.0, 0.03, 0.1)),
    )
    nodes = plan.nodes
    plan.skews = {code: _skew(rng) for code in nodes}
    d = plan.duration
    sched = plan.schedule

    def at() -> int:
        return rng.randint(0, d)

    for _ in range(rng.randint(0, 4)):  # partitions, symmetric or one-way, healed in any order
        start = at()
        sched.append(
            Scheduled(start, "cut", rng.choice(nodes), rng.choice((0, 1, 2)), start + rng.randint(10 * MINUTE, DAY))
        )
    for _ in range(rng.randint(0, 3)):
        start = at()
        sched.append(Scheduled(start, "crash", rng.choice([*nodes, "hub"]), 0, start + rng.randint(MINUTE, 8 * HOUR)))
    for _ in range(rng.randint(0, 3)):  # clocks jumping backward and forward
        sched.append(Scheduled(at(), "skew", rng.choice(nodes), _skew(rng)))
    for _ in range(rng.randint(0, 4)):  # USB sticks: an export carried in later, or old files replayed
        sched.append(Scheduled(at(), "usb_batches", rng.choice(nodes), rng.choice((0, 1))))
    for code in nodes:  # a station restored from an old backup; now and then by a raw file copy
        if rng.random() < 0.3:
            backup = rng.randint(0, d - 2 * HOUR)
            raw_copy = 1 if rng.random() < 0.35 else 0
            sched.append(Scheduled(backup, "backup", code, raw_copy, rng.randint(backup + HOUR, d)))
    if rng.random() < 0.15:  # the hub restored from its nightly backup
        backup = rng.randint(0, d - 2 * HOUR)
        sched.append(Scheduled(backup, "hub_backup", "hub", 0, rng.randint(backup + HOUR, d)))
    for _ in range(rng.randint(1, 3)):
        sched.append(Scheduled(at(), "publish"))
    for _ in range(rng.randint(0, 3)):  # releases carried by hand, in any order
        sched.append(Scheduled(at(), "usb_release", rng.choice(nodes), rng.randint(1, 4)))
    for _ in range(rng.randint(1, 3)):
        sched.append(Scheduled(at(), "forge", rng.choice(nodes), rng.randrange(len(FORGERIES))))
    for _ in range(rng.randint(0, 2)):  # an enrolled station writing outside its rights
        sched.append(Scheduled(at(), "rogue"))
    for _ in range(rng.randint(0, 2)):  # the operator works through the quarantine during the day
        sched.append(Scheduled(at(), "review"))
    if not copy_with_hub_restore and any(s.kind == "hub_backup" for s in sched):
        sched[:] = [Scheduled(s.at, s.kind, s.target, 0, s.until) if s.kind == "backup" else s for s in sched]
    sched.sort(key=lambda s: (s.at, s.kind, s.target))
    return plan


def describe(plan: FaultPlan) -> str:
    counts: dict[str, int] = {}
    for s in plan.schedule:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    faults = ", ".join(f"{k}×{v}" for k, v in sorted(counts.items()))
    return (
        f"{len(plan.nodes)} nodes, {'sealed' if plan.sealed else 'unsealed'}, {plan.duration // HOUR} h, "
        f"{plan.ops} ops, loss {plan.loss}, dup {plan.dup}, slow {plan.slow}, skews "
        f"{ {k: round(v / HOUR, 1) for k, v in plan.skews.items()} }, {faults}"
    )
