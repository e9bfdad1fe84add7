"""Run the fault simulator: ``python -m tests.sim --seeds N`` runs seeds 0..N-1 and ends with the line
``sim: N seeds, V violations`` (exit status 1 when V > 0). ``--seed S`` starts at S instead, so
``--seeds 1 --seed S`` (``make sim SEEDS=1 SEED=S``) replays one seed; add ``-v`` for its trace.
``--list-issues`` lists the adapter bugs the simulator found, and where each was fixed.
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.sim.adapter_issues import ADAPTER_ISSUES, FIXED_IN
from tests.sim.runner import combined_hash, replay_hint, run_many, run_seed
from tests.sim.stats import relay_figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default 500, or 1 with --seed)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default 0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each run's plan, stats and trace")
    parser.add_argument("-j", "--workers", type=int, default=None, help="processes (default: the cores, up to 4)")
    parser.add_argument(
        "--copy-with-hub-restore",
        action="store_true",
        help="allow a station copied back by hand in a run where the hub is restored too",
    )
    parser.add_argument(
        "--list-issues", action="store_true", help="the adapter bugs the simulator found, and the fixes"
    )
    args = parser.parse_args(argv)
    if args.list_issues:
        for name, text in ADAPTER_ISSUES.items():
            print(f"{name} (fixed: {FIXED_IN[name]}):\n  {text}\n")
        return 0
    first = args.seed if args.seed is not None else 0
    count = args.seeds if args.seeds is not None else (1 if args.seed is not None else 500)
    combined = bool(args.copy_with_hub_restore)
    started = time.perf_counter()
    if args.verbose:
        results = []
        for seed in range(first, first + count):
            result, log = run_seed(seed, keep_log=True, copy_with_hub_restore=combined)
            print(f"seed {seed}: {result.plan}\n  stats: {result.stats}")
            for line in log:
                print(f"  | {line}")
            print(f"  trace {result.trace_hash}, {result.seconds:.2f} s")
            results.append(result)
    else:
        results = run_many(range(first, first + count), copy_with_hub_restore=combined, workers=args.workers)
    total = 0
    for result in results:
        total += len(result.violations)
        if result.violations:
            print(f"seed {result.seed}: {len(result.violations)} violation(s) [{result.plan}]")
            for v in result.violations[:10]:
                print(f"  {v}")
            print(f"  {replay_hint(result.seed, combined)}")
    print(relay_figures([r.stats for r in results]))
    print(f"traces {combined_hash(results)}, {time.perf_counter() - started:.1f} s")
    print(f"sim: {count} seeds, {total} violations")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
