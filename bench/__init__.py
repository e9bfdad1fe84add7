"""Benchmarks: `python -m bench <name> --json`. They print figures; they are never tests and never fail on a
number. See docs/benchmarks.md."""
