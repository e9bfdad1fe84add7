"""The `sanji` console script: `sanji hub ...`, `sanji node ...`, `sanji demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from present import argparse_words
from present.output import EXIT_REFUSED, fail, run
from sanji import __version__


def build_parser(area: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``area="node"``, only the station's commands: `sanji node ...` (a station's
    server above all, which runs for days on an old shared PC) then never imports the hub's code, about
    2 MB of its idle memory and a part of every station command's start (docs/benchmarks.md, "Station
    server idle memory"). Parsing a station's command line needs no other area."""
    from node import cli as node_cli

    argparse_words.install()
    parser = _Parser(
        prog="sanji",
        description="三级 Sanji：区、乡镇（街道）、村（社区）三级政务服务网络，断网也能受理，联网或U盘同步",
    )
    parser.add_argument("--version", action="version", version=f"sanji {__version__}", help="显示版本号后退出")
    sub = parser.add_subparsers(dest="area", required=True)
    if area == "node":
        node_cli.add_parser(sub)
        return parser
    from hub import cli as hub_cli

    hub_cli.add_parser(sub)
    node_cli.add_parser(sub)
    demo = sub.add_parser("demo", help="在本机演示一个完整的区，一步一步讲给你看")
    demo.add_argument("--dir", type=Path, default=Path("demo-district"), help="演示用的文件夹（默认 demo-district）")
    demo.add_argument("--once", action="store_true", help="演示讲完即退出")
    demo.add_argument("--port", type=int, default=8700, help="演示区局的端口（默认 8700）")
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
    words = sys.argv[1:] if argv is None else argv
    _JSON_ARGV[0] = "--json" in words
    args = build_parser("node" if words[:1] == ["node"] else None).parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    if args.area == "hub":
        from hub import cli as hub_cli

        return run(lambda: hub_cli.main(args), as_json=as_json)
    if args.area == "node":
        from node import cli as node_cli

        return run(lambda: node_cli.main(args), as_json=as_json)
    from sanji.demo import run_demo

    return run(lambda: run_demo(args.dir, once=args.once, port=args.port, command=main), as_json=as_json)


if __name__ == "__main__":
    sys.exit(main())
