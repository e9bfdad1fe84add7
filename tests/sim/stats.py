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
