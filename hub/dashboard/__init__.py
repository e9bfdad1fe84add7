"""The operator dashboard, mounted on the hub's aiohttp app by :func:`add_dashboard_routes`.

Server-rendered HTML (Jinja2), a little hand-written JavaScript, no build step, and every asset served
from ``hub/static`` and ``present/static``: the district hall's network may have no internet at all.
The pages are split by noun: sign-in and sessions (``auth``), stations (``stations``), applications
(``apps``), the workflow moves and inspection assignment an application's page offers (``moves``, and
the forms that post them, ``workflow``), inspection reports and photos and the inspections across
applications (``inspections``), conflicts and quarantine (``review``), the catalogue (``catalogue``),
and the operator's own password (``account``). What the pages read is gathered in ``data``; the
dashboard's app keys are in ``keys``.

Every page is read and rendered in the read model's threads (``hub/reads``, through
``auth.shown``) over a read-only connection; only the operators' writes run on the loop, on the
serving connection, each in its own short transaction.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hub.dashboard import account, apps, auth, catalogue, inspections, review, stations, supplement, workflow
from hub.dashboard.keys import ENV
from present.webui import add_common_static, make_env

HUB_FILES = Path(__file__).resolve().parent.parent  # hub/templates and hub/static


def add_dashboard_routes(app: web.Application) -> None:
    app[ENV] = make_env(HUB_FILES / "templates")
    add_common_static(app)
    app.router.add_static("/static/", HUB_FILES / "static", name="hub_static")
    auth.setup(app)
    stations.setup(app)
    apps.setup(app)
    workflow.setup(app)
    supplement.setup(app)  # 补交材料 on the application page
    inspections.setup(app)
    review.setup(app)
    catalogue.setup(app)
    account.setup(app)


__all__ = ["add_dashboard_routes"]
