"""Pinyin initials of item names, for search (issue 19 item 10): staff type "zdshbz" for 最低生活保障申请
without switching to a Chinese input method.

pypinyin is a lookup table in Python, but it is not on the short list of modules ``sync/`` may import, so it
is called here and handed to ``sync.catalogue_view`` as a function. Characters without a reading (digits,
Latin letters, punctuation) are kept as they are, so a code inside a name does not shift the initials.

The table is large: importing pypinyin costs a process about 55 MB (its phrase table is a 2.5 MB JSON file
read into a dict of 400,000 entries), more than the rest of the station server. So pypinyin is imported
only when :func:`initials` is first called, and a long-running server that needs the initials of a few
hundred names asks :func:`initials_apart`, which works them out in a child process that exits after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=4096)
def initials(text: str) -> str:
    """``最低生活保障申请`` → ``zdshbzsq``: the first letter of each character's (most common) reading."""
    from pypinyin import Style, lazy_pinyin  # the phrase table loads here, not at import (see above)

    return "".join(lazy_pinyin(text, style=Style.FIRST_LETTER, errors=lambda chars: list(chars))).lower()


def initials_apart(names: Sequence[str], *, timeout: float = 120.0) -> list[str]:
    """:func:`initials` of each name, worked out by ``python -m present.pinyin`` in a child process, so the
    caller never holds pypinyin's table. Raises ``OSError`` or ``subprocess.SubprocessError`` if the child
    cannot run or fails; the caller decides whether to fall back to :func:`initials` in-process."""
    if not sys.executable:  # an embedded interpreter may not know its own program
        raise OSError("no Python program to run the child with (sys.executable is empty)")
    # The child finds this package the way the parent did, even when the parent was started from a
    # checkout rather than an installed copy.
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
    done = subprocess.run(
        [sys.executable, "-m", "present.pinyin"],
        input=json.dumps(list(names), ensure_ascii=False).encode("utf-8"),
        capture_output=True,
        env=env,
        timeout=timeout,
        check=True,
        # Its own session: a Ctrl-C at the server's terminal stops the server, not this half-second child
        # (which would otherwise fail and send the caller to its in-process fallback while shutting down).
        start_new_session=True,
    )
    out = json.loads(done.stdout.decode("utf-8"))
    if not isinstance(out, list) or len(out) != len(names) or not all(isinstance(x, str) for x in out):
        raise subprocess.SubprocessError("python -m present.pinyin answered something other than one string a name")
    return out


def _child() -> None:
    names = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdout.buffer.write(json.dumps([initials(str(n)) for n in names], ensure_ascii=False).encode("utf-8"))


if __name__ == "__main__":
    _child()
