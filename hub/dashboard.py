"""The operator dashboard, mounted on the hub's aiohttp app by :func:`add_dashboard_routes`.

Server-rendered HTML (Jinja2), a little hand-written JavaScript, no build step, and every asset served
from ``hub/static`` and ``replica/static``: the district hall's network may have no internet at all.
The pages are split by noun: sign-in and sessions (``dashboard_auth``), stations
(``dashboard_views``), applications (``dashboard_apps``), their workflow moves and inspection
assignments (``dashboard_workflow``) and their inspection reports and photos (``dashboard_inspections``),
the inspections across applications (``dashboard_inspection_list``), conflicts and quarantine
(``dashboard_review``), the catalogue (``dashboard_catalogue``), and the operator's own password
(``dashboard_account``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from hub import (
    dashboard_account,
    dashboard_apps,
    dashboard_auth,
    dashboard_catalogue,
    dashboard_inspection_list,
    dashboard_inspections,
    dashboard_review,
    dashboard_supplement,
    dashboard_views,
    dashboard_workflow,
)
from hub.dashboard_auth import ENV, hub_of
from replica.webui import add_common_static, make_env

HERE = Path(__file__).resolve().parent


async def _tables(app: web.Application) -> AsyncIterator[None]:
    # Runs after the hub is opened (cleanup contexts run in order): the dashboard's own tables.
    from hub.app import HUB

    dashboard_auth.migrations.apply(app[HUB].store.db)
    yield


def add_dashboard_routes(app: web.Application) -> None:
    app[ENV] = make_env(HERE / "templates")
    app.cleanup_ctx.append(_tables)
    add_common_static(app)
    app.router.add_static("/static/", HERE / "static", name="hub_static")
    dashboard_auth.setup(app)
    dashboard_views.setup(app)
    dashboard_apps.setup(app)
    dashboard_workflow.setup(app)
    dashboard_supplement.setup(app)  # 补交材料 on the application page
    dashboard_inspections.setup(app)
    dashboard_inspection_list.setup(app)
    dashboard_review.setup(app)
    dashboard_catalogue.setup(app)
    dashboard_account.setup(app)


__all__ = ["add_dashboard_routes", "hub_of"]
