"""The keys of the station's aiohttp app that the UI's pages read.

They live apart from the app factory (``node/server.py``) and from the pages, so that every page can
read the station without importing the module that mounts it: the imports go one way, from the
factory to the pages to these keys.
"""

from __future__ import annotations

import jinja2
from aiohttp import web

from node.staff_session import StaffSession
from node.station import Station

STATION = web.AppKey("station", Station)  # the open station, set by node/server.py's context
ENV = web.AppKey("ui_env", jinja2.Environment)  # the templates in node/templates
CSRF = web.AppKey("ui_csrf", str)  # this process's form token (node/ui/page.py form_post)
# The signed-in browsers, cookie token → session, in this process only (node/ui/signin.py).
SESSIONS = web.AppKey("ui_staff_sessions", dict[str, StaffSession])
STAFF = web.RequestKey("ui_staff", StaffSession)  # this request's signed-in person, when there is one
UPLOAD_LIMIT = web.AppKey("ui_upload_limit", int)  # bytes a report form may post (node/ui/report.py)
