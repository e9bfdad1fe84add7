"""The dashboard's own keys on the hub's aiohttp app: its templates and the stand-in password hash.

Set by ``add_dashboard_routes`` (``hub/dashboard/__init__.py``) and read by the pages; the open hub is
``hub.appkeys.HUB``.
"""

from __future__ import annotations

import jinja2
from aiohttp import web

ENV = web.AppKey("dashboard_env", jinja2.Environment)
# A hash to check passwords of unknown users against, so a wrong user name costs the same scrypt
# time as a wrong password and response times do not reveal which operators exist.
DUMMY_HASH = web.AppKey("dashboard_dummy_hash", str)
