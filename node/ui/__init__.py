"""The station's staff UI, mounted on the node's loopback app by :func:`add_ui_routes`.

Server-rendered pages for the window, one module per noun: the home page (``home``), accepting an
application (``accept``, with its printed receipt in ``receipt``), the station's applications and their
workflow moves (``apps``, with inspection assignment in ``assign``), a field device's tasks and report
form (``tasks``, ``report``, ``uploads``, ``photos``), and the sync status bar, "sync now" and USB
export (``status``, ``sync``). What every page shares is in ``page``; the app keys in ``keys``.
Everything works with the hub unreachable: every write goes to the station's own database through
``node.commands``; only "sync now" talks to the hub.

A station with staff accounts asks for sign-in first and locks an idle window (``signin``, issue 16);
one without keeps the open window of a shared PC listening on 127.0.0.1 only. Either way a web page the
staff happen to open must not be able to drive this UI: every form carries a per-process CSRF token,
and requests whose Host is not the loopback name are refused, so a DNS-rebinding page cannot read it.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from node.ui import accept, account, apps, home, initials, report, sealing, signin, supplement, sync, tasks
from node.ui.keys import CSRF, ENV
from node.ui.page import loopback_only
from node.ui.status import PROBE, HubProbe
from present.webui import add_common_static, make_env, new_token

NODE = Path(__file__).resolve().parent.parent  # node/templates and node/static


def add_ui_routes(app: web.Application) -> None:
    app[ENV] = make_env(NODE / "templates")
    app[CSRF] = new_token()
    app[PROBE] = HubProbe()
    app.middlewares.append(loopback_only)
    signin.setup(app)  # after the loopback check: sign-in once the station has staff accounts
    add_common_static(app)
    app.router.add_static("/static/", NODE / "static", name="node_static")
    home.setup(app)
    initials.setup(app)  # the picker's pinyin initials, worked out apart from this process
    accept.setup(app)
    apps.setup(app)
    sync.setup(app)
    tasks.setup(app)
    report.setup(app)
    supplement.setup(app)  # 补交材料 on the application page
    account.setup(app)  # 修改密码 for the signed-in person
    sealing.setup(app)  # the first sign-in's sealing of existing data, with its progress page


__all__ = ["add_ui_routes"]
