"""Running seeds: one at a time (with an optional readable log), or many over both cores.

Each seed is independent and deterministic, so seeds can run in any process in any order; results
come back sorted by seed. A failing seed is reported with the command that replays it.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from tests.sim import district
from tests.sim.checkers import Violation
from tests.sim.faults import describe
from tests.sim.world import RunStats, World


@dataclass(frozen=True)
class RunResult:
    seed: int
    trace_hash: str
    violations: tuple[Violation, ...]
    stats: RunStats
    plan: str
    seconds: float


def run_seed(
    seed: int,
    *,
    keep_log: bool = False,
    copy_with_hub_restore: bool = False,
    prepare: Callable[[World], None] | None = None,
) -> tuple[RunResult, list[str]]:
    """One seed's run; ``prepare`` (tests) may change the world before it starts."""
    started = time.perf_counter()
    world = World(seed, copy_with_hub_restore)
    if prepare is not None:
        prepare(world)
    world.keep_log = keep_log
    violations = world.run()
    world.stats.hub_processes, world.stats.answers_by_others = len(world.hub.hubs), sum(world.hub.answered[1:])
    result = RunResult(
        seed,
        world.trace.hexdigest()[:16],
        tuple(violations),
        world.stats,
        describe(world.plan) + (f" · {n} hub processes" if (n := world.stats.hub_processes) > 1 else ""),
        time.perf_counter() - started,
    )
    return result, world.log


def _run(args: tuple[int, bool]) -> RunResult:
    return run_seed(args[0], copy_with_hub_restore=args[1])[0]


def default_workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def run_many(
    seeds: Iterable[int],
    *,
    copy_with_hub_restore: bool = False,
    workers: int | None = None,
) -> list[RunResult]:
    """Every seed's result, in seed order; runs in ``workers`` processes (default: the cores, up to 4)."""
    todo = [(seed, copy_with_hub_restore) for seed in seeds]
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(todo) < 8:
        return [_run(t) for t in todo]
    # fork: the workers inherit the imported modules, so there is nothing to import again, and the
    # scratch folder, which this process removes when it exits.
    district.scratch()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return sorted(pool.map(_run, todo, chunksize=8), key=lambda r: r.seed)


def replay_hint(seed: int, copy_with_hub_restore: bool = False) -> str:
    extra = " --copy-with-hub-restore" if copy_with_hub_restore else ""
    make = f"make sim SEEDS=1 SEED={seed}" if not extra else "(no make shortcut for these options)"
    return f"replay: {make}  or  python -m tests.sim --seed {seed}{extra} -v"


def combined_hash(results: list[RunResult]) -> str:
    h = hashlib.sha256()
    for r in results:
        h.update(f"{r.seed}:{r.trace_hash}\n".encode())
    return h.hexdigest()[:16]
