"""`python -m bench <name> [--json] [options]`: run one benchmark (a module of this package)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "sync": "one station pushes the workload to a hub over loopback, then 10% status updates",
    "district": "every station of the district reconnects at once with its share of the workload",
    "stations": "many simulated stations push 20 changes and pull, all at once",
    "node": "accept latency, idle RSS and cold start of a station",
    "node_memory": "the idle station server's memory: RSS, anonymous and file pages, with and without numpy",
    "limits": "this machine's ceiling for the same work (SQLite, Ed25519, msgpack, zlib)",
    "reconcile": "nightly anti-entropy (Merkle digests) between a station and the hub",
    "year": "ten years of data: every dashboard and station page at a million applications",
    "pg_driver": "psycopg 3 against asyncpg on the hub's work, on a throwaway PostgreSQL (issue 15)",
    "all": "every benchmark and the reference peer; writes bench/results/latest.json",
    "chart": "draw docs/bench-chart.png from bench/results/latest.json",
}


def usage() -> str:
    lines = ["usage: python -m bench <name> [--json] [options]", ""]
    lines += [f"  {name:<10} {text}" for name, text in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    name = argv[0]
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"bench.{name}":
            raise
        print(f"benchmark {name!r} is not built yet (no bench/{name}.py)", file=sys.stderr)
        return 2
    result: int | None = module.main(argv[1:])
    return result or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
