"""The station's accept with a signed-in staff member (issue 16), beside the figures without one.

- CLI ``--staff``: each command signs the person in (``node.staff_cli.sign_in``: scrypt of the hash,
  then scrypt again to unwrap the data key, both at the real default cost), ends the session, then
  accepts with the author. The sign-in and the accept are timed apart, so the accept's own figure
  compares with the accept without accounts, and the sign-in's cost is the price a command pays per
  run;
- the window: one sign-in over HTTP (POST /signin, cookie kept), then the accept form posted as
  without accounts, every request passing the sign-in gate (cookie lookup, idle check, the account's
  row read).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

USER, NAME, PASSWORD = "bench", "测试员", "bench-staff-password-1"


def add_admin(folder: Path) -> None:
    """The station's first administrator (``sanji node add-admin``), at the default scrypt cost."""
    from node import staff_cli

    staff_cli.first_admin(folder, staff_cli.FirstAdmin(USER, NAME, PASSWORD))


def cli_latencies(st, apps) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    """(sign-in seconds, accept seconds) of each application, as ``node accept --staff`` runs them."""
    from node import commands, staff_cli

    signs, accepts = [], []
    for _, app in apps:
        t0 = time.perf_counter()
        session = staff_cli.sign_in(st, USER, PASSWORD)
        t1 = time.perf_counter()
        # As `node accept --staff` holds it: the command's writes seal personal values with the
        # session's data key (node/at_rest.py), and the session ends with the command.
        st.session = session
        try:
            commands.accept(st, app, author=session.user)
        finally:
            st.session = None
            session.end()
        t2 = time.perf_counter()
        signs.append(t1 - t0)
        accepts.append(t2 - t1)
    return signs, accepts


def window_sign_in(opener: urllib.request.OpenerDirector, url: str, csrf_of) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """Sign in at the window with ``opener`` (its cookie jar keeps the session); (seconds, note)."""
    with opener.open(f"{url}/signin", timeout=30) as resp:
        token = csrf_of(resp.read().decode("utf-8", "replace"))
    if token is None:
        return 0.0, "the sign-in form carries no csrf field this benchmark can read"
    body = urllib.parse.urlencode({"csrf": token, "user": USER, "password": PASSWORD, "next": "/"}).encode()
    t0 = time.perf_counter()
    try:
        with opener.open(urllib.request.Request(f"{url}/signin", data=body, method="POST"), timeout=30) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    elapsed = time.perf_counter() - t0
    return elapsed, "" if status == 303 else f"the sign-in answered HTTP {status} instead of 303"


def wait_sealed(opener: urllib.request.OpenerDirector, url: str, timeout: float = 300.0) -> str:
    """After the first sign-in at a station holding more changes than the window seals inline, the
    pages go to the sealing progress page (node/ui/sealing.py) until the job is done: wait for it, so
    the accepts that follow are timed as accepts. '' once done, else a note."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with opener.open(f"{url}/sealing?next=/", timeout=30) as resp:
                resp.read()  # still sealing (or its outcome, said once): ask again
        except urllib.error.HTTPError as exc:
            if exc.code == 303:
                return ""
            return f"the sealing page answered HTTP {exc.code}"
        time.sleep(0.2)
    return f"the first sign-in's sealing was not done after {timeout:.0f} s"
