"""How every `sanji` command reports: exactly one JSON document with --json, readable text otherwise,
and the exit codes CONTRACT.md fixes (0 ok, 2 refused, 3 hub unreachable, 1 anything else)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from protocol.errors import RemoteProtocolError
from replica.errors import NotApplied, Refused, Unreachable

EXIT_OK, EXIT_OTHER, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3


def _default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def emit(data: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], str] | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=_default) + "\n")
    else:
        text = human(data) if human else "\n".join(f"{k}: {v}" for k, v in data.items())
        sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def run(action: Callable[[], int | None]) -> int:
    """Run one command, turning the library's outcomes into one clear stderr line and an exit code."""
    try:
        return action() or EXIT_OK
    except Unreachable as exc:
        print(f"sanji: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (Refused, RemoteProtocolError, FileNotFoundError, FileExistsError) as exc:
        print(f"sanji: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except NotApplied as exc:
        print(f"sanji: {exc}", file=sys.stderr)
        return EXIT_OTHER
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"sanji: unexpected error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_OTHER


def command_adder(subparsers: Any, folder_help: str) -> Callable[[str, str], argparse.ArgumentParser]:
    """A factory for commands that all take the folder they work on and ``--json`` (CONTRACT.md)."""

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
        p.add_argument("dir", type=Path, help=folder_help)
        p.add_argument("--json", action="store_true", help="print one JSON document")
        return p

    return cmd


def dispatch(handlers: Mapping[str, Any], args: argparse.Namespace) -> int | None:
    """Call the module's ``cmd_<command>`` for the parsed command."""
    handler = handlers.get("cmd_" + args.cmd.replace("-", "_"))
    assert handler is not None, args.cmd
    result: int | None = handler(args)
    return result
