"""How every `sanji` command reports: exactly one JSON document with --json, readable text otherwise,
and the exit codes CONTRACT.md fixes (0 ok, 2 refused, 3 hub unreachable, 1 anything else)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

from protocol.errors import RemoteProtocolError
from replica.errors import NotApplied, Refused, Unreachable
from replica.rejection_words import explain
from sync.catalogue import TIER_LABELS
from sync.workflow import STATUS_LABELS

EXIT_OK, EXIT_OTHER, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 141  # as a shell reports a command ended by SIGPIPE


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


def emit_rows(
    key: str, rows: Iterable[Mapping[str, Any]], as_json: bool, line: Callable[[Mapping[str, Any]], str], empty: str
) -> None:
    """Write ``{key: [rows...]}`` (or one text line per row) as the rows come, so a listing of a million
    applications never holds them all: memory stays flat whatever the count. The JSON is byte for byte
    what ``emit({key: list(rows)})`` writes. The first row is read before anything is written, so a
    refusal (an unknown status) is still the one JSON document ``fail`` prints."""
    it = iter(rows)
    first = next(it, None)
    out = sys.stdout
    if as_json:
        out.write("{" + json.dumps(key, ensure_ascii=False) + ": [")
        for i, row in enumerate(chain([first], it) if first is not None else ()):
            out.write((", " if i else "") + json.dumps(row, ensure_ascii=False, default=_default))
        out.write("]}\n")
    else:
        if first is None:
            out.write(empty + "\n")
        for row in chain([first], it) if first is not None else ():
            out.write(line(row) + "\n")
    out.flush()


def fail(code: str, reason: str, exit_code: int, as_json: bool) -> int:
    """One stderr line; with --json also the one JSON document CONTRACT.md promises on failure."""
    print(f"sanji: {reason}", file=sys.stderr, flush=True)
    if as_json:
        # `error` is the contract's field; `code` repeats it under the name the issue tracker and the
        # HTTP bodies use, so a script may read either.
        emit({"error": code, "code": code, "reason": reason}, True)
    return exit_code


def _file_error(exc: OSError, what: str, then: str) -> str:
    """Python's own words ("[Errno 2] No such file or directory") in a staff sentence; a message the
    project wrote itself (no file name attached) is already one."""
    if exc.filename is None:
        return str(exc)
    return f"{what} {exc.filename}：{then} ({exc.strerror})"


def run(action: Callable[[], int | None], *, as_json: bool = False) -> int:
    """Run one command, turning the library's outcomes into one clear stderr line and an exit code."""
    try:
        return action() or EXIT_OK
    except Unreachable as exc:
        return fail(getattr(exc, "code", "unreachable"), str(exc), EXIT_UNREACHABLE, as_json)
    except Refused as exc:
        return fail(exc.code, str(exc), EXIT_REFUSED, as_json)
    except RemoteProtocolError as exc:  # the protocol words its errors for developers; staff get a sentence
        return fail(exc.code, explain(exc.code, str(exc)), EXIT_REFUSED, as_json)
    except FileNotFoundError as exc:
        return fail("not_found", _file_error(exc, "找不到", "请检查路径是否写对、U盘是否插好"), EXIT_REFUSED, as_json)
    except FileExistsError as exc:
        return fail("already_exists", _file_error(exc, "已经存在", "请换一个名字或文件夹"), EXIT_REFUSED, as_json)
    except NotApplied as exc:
        return fail(exc.code, str(exc), EXIT_OTHER, as_json)
    except BrokenPipeError:
        # The reader went away (`sanji node applications V | head`): what it wanted it has; nothing to
        # report to support. Python's own advice: point stdout at devnull so the exit's flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return fail("interrupted", "已中断（Ctrl-C）：已提交的都已保存，未完成的没有写入", 130, as_json)
    except Exception as exc:
        return fail(
            "internal_error",
            f"内部错误 (unexpected error: {exc.__class__.__name__}: {exc})；请把这一行报告给区局技术支持",
            EXIT_OTHER,
            as_json,
        )


def choices_text(labels: Mapping[str, str]) -> str:
    """An option's values as staff read them: the code to type, and its word ("accepted（受理）、…")."""
    return "、 ".join(f"{code}（{word}）" for code, word in labels.items())  # the space lets --help wrap there


STATUS_CHOICES = choices_text({status.value: word for status, word in STATUS_LABELS.items()})
TIER_CHOICES = choices_text({**TIER_LABELS, "field": "踏勘设备"})


def supplement_arguments(p: argparse.ArgumentParser) -> None:
    """`sanji node supplement` and `sanji hub supplement` take the same arguments (CONTRACT.md)."""
    p.add_argument("number", help="办件编号")
    p.add_argument(
        "--material",
        action="extend",
        nargs="+",
        default=[],
        required=True,
        metavar="NAME",
        help="收到的容缺材料名称，与受理时一致（可写多个，或重复此项）",
    )
    p.add_argument("--received", help="收到日期 YYYY-MM-DD（默认今天）")


def command_adder(subparsers: Any, folder_help: str) -> Callable[[str, str], argparse.ArgumentParser]:
    """A factory for commands that all take the folder they work on and ``--json`` (CONTRACT.md)."""

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
        p.add_argument("dir", type=Path, help=folder_help)
        p.add_argument("--json", action="store_true", help="输出一个 JSON 文档（供程序读取；代码为英文）")
        return p

    return cmd


def dispatch(handlers: Mapping[str, Any], args: argparse.Namespace) -> int | None:
    """Call the module's ``cmd_<command>`` for the parsed command."""
    handler = handlers.get("cmd_" + args.cmd.replace("-", "_"))
    assert handler is not None, args.cmd
    result: int | None = handler(args)
    return result
