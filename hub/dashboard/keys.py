"""The dashboard's own keys on the hub's aiohttp app: its templates and the stand-in password hash.

Set by ``add_dashboard_routes`` (``hub/dashboard/__init__.py``) and read by the pages; the open hub is
``hub.appkeys.HUB``.
"""

from __future__ import annotations

import asyncio

import jinja2
from aiohttp import web

ENV = web.AppKey("dashboard_env", jinja2.Environment)
# A hash to check passwords of unknown users against, so a wrong user name costs the same scrypt
# time as a wrong password and response times do not reveal which operators exist.
DUMMY_HASH = web.AppKey("dashboard_dummy_hash", str)
# One operator password checked at a time (hub/dashboard/auth.py): the check runs in a thread, and the
# lock-out must have counted a wrong guess before the next one is judged.
PASSWORD_CHECKS = web.AppKey("dashboard_password_checks", asyncio.Lock)
