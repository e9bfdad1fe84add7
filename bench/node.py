"""A station on its own: how long accepting one application takes, what the running station costs.

- accept latency through the CLI's code path (``node.commands.accept`` in-process, one application a
  time, each its own durable transaction) and through the staff UI's handler (the real
  ``sanji node serve`` process: GET the form for its CSRF token, then POST it, over loopback);
- the idle RSS of ``sanji node serve`` a few seconds after it starts (its sync loop talking to a hub);
- the cold start of ``sanji node status`` (a fresh process each time; median of 5);
- the same two accepts once the station has a staff account (``bench/node_staff.py``): the CLI's
  ``--staff`` sign-in timed apart from the accept, and the window's accept while signed in.
"""

from __future__ import annotations

import html
import json
import re
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from bench import common, node_memory, node_staff

N_ACCEPT = 200
N_STAFF_CLI = 50  # each pays a real sign-in (two scrypts at the default cost)
IDLE_SECONDS = 5.0


def _applications(n: int):  # type: ignore[no-untyped-def]
    from node import commands

    out = []
    for line in common.workload_lines(n):
        raw = json.loads(line)
        app = commands._from_json(line)
        app.accepted_at = None  # at the window: now
        out.append((raw, app))
    return out


def _cli_latencies(st, apps) -> list[float]:  # type: ignore[no-untyped-def]
    from node import commands

    times = []
    for _, app in apps:
        t0 = time.perf_counter()
        commands.accept(st, app)
        times.append(time.perf_counter() - t0)
    return times


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect())


def _csrf(page: str) -> str | None:
    token = re.search(r'name="csrf"\s+value="([^"]+)"', page) or re.search(r'value="([^"]+)"\s+name="csrf"', page)
    return token.group(1) if token else None


def _ui_latencies(url: str, apps, opener=None) -> tuple[list[float], str]:  # type: ignore[no-untyped-def]
    """POST the accept form of the staff UI the way a browser does. Returns latencies and a note."""
    opener = opener or _opener()
    times: list[float] = []
    for raw, app in apps:
        form_url = f"{url}/accept/item/{urllib.parse.quote(app.item)}"
        with opener.open(form_url, timeout=30) as resp:
            page = resp.read().decode("utf-8", "replace")
        token = _csrf(page)
        if token is None:
            return times, "the accept form carries no csrf field this benchmark can read"
        fields = {
            "csrf": token,
            "name": app.name,
            "id_number": app.id_number,
            "phone": app.phone,
            "address": app.address,
            "note": app.note,
        }
        # The form lists the item's materials in catalogue order; material j's radio group is m0_j.
        names = {m["name"] for m in raw.get("materials", [])}
        for j, name in enumerate(re.findall(r'data-material="([^"]*)"', page)):
            fields[f"m0_{j}"] = "submitted" if html.unescape(name) in names else "none"
        body = urllib.parse.urlencode(fields).encode()
        t0 = time.perf_counter()
        try:
            with opener.open(urllib.request.Request(form_url, data=body, method="POST"), timeout=30) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        times.append(time.perf_counter() - t0)
        if status != 303:
            return times, f"the accept form answered HTTP {status} instead of 303 (not accepted)"
    return times, ""


def run() -> dict[str, object]:
    from node.station import Station

    apps = _applications(N_ACCEPT * 3 + N_STAFF_CLI)
    with common.workdir("node") as work, common.one_village(work):
        st = Station(work / "node")
        common.log(f"accepting {N_ACCEPT} applications one at a time through node.commands.accept")
        cli = _cli_latencies(st, apps[:N_ACCEPT])
        st.close()

        port = common.free_port()
        node = common.serve(
            ["node", "serve", str(work / "node"), "--port", str(port)],
            port=port,
            log_path=work / "node-serve.log",
            probe="/",
        )
        try:
            time.sleep(IDLE_SECONDS)
            idle = node_memory.reading(node.pid)
            idle_rss = idle["VmRSS"]
            common.log(f"accepting {N_ACCEPT} applications through the staff UI's form")
            ui, ui_note = _ui_latencies(node.url, apps[N_ACCEPT : 2 * N_ACCEPT])
            busy_rss = node.peak_rss_mb()
        finally:
            node.stop()

        common.log(f"the station's first staff account; {N_STAFF_CLI} accepts as `node accept --staff`")
        node_staff.add_admin(work / "node")
        st = Station(work / "node")
        signs, staff_cli = node_staff.cli_latencies(st, apps[2 * N_ACCEPT : 2 * N_ACCEPT + N_STAFF_CLI])
        st.close()
        node = common.serve(
            ["node", "serve", str(work / "node"), "--port", str(port)],
            port=port,
            log_path=work / "node-serve-staff.log",
            probe="/signin",
        )
        try:
            common.log(f"signing in at the window, then {N_ACCEPT} accepts through its form")
            opener = _opener()
            ui_sign, staff_note = node_staff.window_sign_in(opener, node.url, _csrf)
            staff_note = staff_note or node_staff.wait_sealed(opener, node.url)
            staff_ui: list[float] = []
            if not staff_note:
                staff_ui, staff_note = _ui_latencies(node.url, apps[2 * N_ACCEPT + N_STAFF_CLI :], opener)
        finally:
            node.stop()

        common.log("cold starts of `sanji node status`")
        starts = []
        for _ in range(5):
            t0 = time.perf_counter()
            subprocess.run(
                [*common.sanji_command(), "node", "status", str(work / "node"), "--json"],
                check=True,
                capture_output=True,
            )
            starts.append(time.perf_counter() - t0)

    return {
        "benchmark": "node",
        "accept_cli_n": len(cli),
        "accept_cli_p50_ms": common.ms(common.percentile(cli, 50)),
        "accept_cli_p99_ms": common.ms(common.percentile(cli, 99)),
        "accept_ui_n": len(ui),
        "accept_ui_p50_ms": common.ms(common.percentile(ui, 50)) if not ui_note else None,
        "accept_ui_p99_ms": common.ms(common.percentile(ui, 99)) if not ui_note else None,
        "accept_ui_note": ui_note or "HTTP POST of the staff UI's accept form over loopback, CSRF token included",
        "signin_cli_n": len(signs),
        "signin_cli_p50_ms": common.ms(common.percentile(signs, 50)),
        "signin_cli_p99_ms": common.ms(common.percentile(signs, 99)),
        "accept_cli_staff_p50_ms": common.ms(common.percentile(staff_cli, 50)),
        "accept_cli_staff_p99_ms": common.ms(common.percentile(staff_cli, 99)),
        "signin_ui_ms": common.ms(ui_sign) if not staff_note else None,
        "accept_ui_staff_n": len(staff_ui),
        "accept_ui_staff_p50_ms": common.ms(common.percentile(staff_ui, 50)) if not staff_note else None,
        "accept_ui_staff_p99_ms": common.ms(common.percentile(staff_ui, 99)) if not staff_note else None,
        "accept_ui_staff_note": staff_note or "the same form, signed in at the window first (cookie kept)",
        "node_idle_rss_mb": idle_rss,
        "node_idle_rss_how": "VmRSS (/proc/<pid>/status) of `sanji node serve` 5 s after its home page first answered,"
        " after 200 accepts by the CLI's code path, no staff account; `python -m bench node_memory` breaks it down",
        "node_idle_memory": idle,
        "node_peak_rss_mb": busy_rss,
        "status_cold_start_ms": common.ms(statistics.median(starts)),
    }


def main(argv: list[str]) -> int:
    p = common.parser("node", __doc__ or "")
    args = p.parse_args(argv)
    common.emit(run(), args.json)
    return 0
