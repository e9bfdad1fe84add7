"""The `sanji` console script: `sanji hub ...`, `sanji node ...`, `sanji demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from hub import cli as hub_cli
from node import cli as node_cli
from replica.output import EXIT_REFUSED, fail, run
from sanji import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sanji",
        description="三级 Sanji: offline-first sync for a district's three-tier government service network",
    )
    parser.add_argument("--version", action="version", version=f"sanji {__version__}")
    sub = parser.add_subparsers(dest="area", required=True)
    hub_cli.add_parser(sub)
    node_cli.add_parser(sub)
    demo = sub.add_parser("demo", help="a whole district on this machine, told step by step")
    demo.add_argument("--dir", type=Path, default=Path("demo-district"))
    demo.add_argument("--once", action="store_true", help="exit when the story is told")
    demo.add_argument("--port", type=int, default=8700)
    return parser


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors, under --json, also print the one JSON document."""

    def error(self, message: str) -> NoReturn:
        if _JSON_ARGV[0]:
            self.print_usage(sys.stderr)
            sys.exit(fail("usage", f"{message}（用法见上，或加 --help）", EXIT_REFUSED, True))
        super().error(message)


_JSON_ARGV = [False]  # whether the argv being parsed asks for --json (main may be given one directly)


def main(argv: list[str] | None = None) -> int:
    _JSON_ARGV[0] = "--json" in (sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    if args.area == "hub":
        return run(lambda: hub_cli.main(args), as_json=as_json)
    if args.area == "node":
        return run(lambda: node_cli.main(args), as_json=as_json)
    from sanji.demo import run_demo

    return run(lambda: run_demo(args.dir, once=args.once, port=args.port), as_json=as_json)


if __name__ == "__main__":
    sys.exit(main())
