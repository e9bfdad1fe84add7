"""Running `sanji` and speaking HTTP the way the e2e tests do: a fresh interpreter per command, always
with `--json`, no proxy ever on loopback, and free loopback ports below the ephemeral range.

Kept apart from ``tests/e2e/conftest.py`` (the hub, the stations and the fixtures), which had grown past
500 lines; the chaos, hostile and nightly tests that start real processes import from here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

SANJI = Path(sys.executable).parent / "sanji"
CLI_TIMEOUT = 90.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0

# urllib honours *_proxy variables; loopback must never go through one.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- running the CLI ----------------------------------------------------------------------------------


class CliResult(NamedTuple):
    code: int
    data: Any  # the one JSON document printed on stdout, or None
    stderr: str


# Every command is a fresh interpreter: let them share compiled bytecode, kept outside the repository.
PYCACHE = Path(tempfile.gettempdir()) / "sanji-e2e-pycache"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    return env


def run_sanji(*args: object, timeout: float = CLI_TIMEOUT, stdin: str | None = None) -> CliResult:
    """Run `sanji ARGS... --json`; return (exit code, parsed JSON or None, stderr)."""
    cmd = [str(SANJI), *(str(a) for a in args), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin, env=_env())
    data: Any = None
    if proc.stdout.strip():
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            data = None
    return CliResult(proc.returncode, data, proc.stderr)


def ok(*args: object, timeout: float = CLI_TIMEOUT) -> Any:
    """Run a command that must succeed and print one JSON document; return that document."""
    res = run_sanji(*args, timeout=timeout)
    assert res.code == 0, f"sanji {' '.join(map(str, args))} exited {res.code}: {res.stderr.strip()}"
    assert res.data is not None, f"sanji {' '.join(map(str, args))} printed no JSON document"
    return res.data


def start_sanji(*args: object, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `sanji ARGS... --json` in the background (in its own process group)."""
    out: Any = log.open("wb") if log is not None else subprocess.PIPE
    try:
        return subprocess.Popen(
            [str(SANJI), *(str(a) for a in args), "--json"],
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
            env=_env(),
            start_new_session=True,
        )
    finally:
        if log is not None:
            out.close()


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL if it does not go within `grace` seconds. Safe on a dead process."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=grace)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def parallel(*thunks: Callable[[], T]) -> list[T]:
    """Run independent commands (on different stations) side by side; results in argument order."""
    with ThreadPoolExecutor(max_workers=len(thunks)) as pool:
        return [f.result() for f in [pool.submit(t) for t in thunks]]


# -- HTTP ---------------------------------------------------------------------------------------------


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """(status, body) of one request; 4xx and 5xx are answers, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _HTTP.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def healthz(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        status, body = http("GET", url + "/healthz", timeout=timeout)
    except (OSError, urllib.error.URLError):
        return None
    if status != 200:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_loopback_port() -> int:
    """A free port on 127.0.0.1, below the kernel's ephemeral range where it can: a hub restarted on
    the same port must not find it taken by some process's outgoing connection in the meantime."""
    rng = random.Random()
    for _ in range(50):
        port = rng.randrange(20000, 32000)
        if _bindable(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
