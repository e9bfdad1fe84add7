"""The keys of the hub's aiohttp app that its routes read: the open hub, the group committer (with the
hub it writes through) and the reconcile sessions' tree cache.

The factory (``hub/app.py``) fills them; the sync routes (``hub/web/``), the dashboard
(``hub/dashboard/``) and the metrics (``hub/metrics.py``) read them. They live apart from the factory so
that the imports go one way: the factory imports the route packages, the routes import these keys.
"""

from __future__ import annotations

from aiohttp import web

from hub.committer import Committer
from hub.reconcile import TreeCache
from hub.service import Hub

HUB = web.AppKey("hub", Hub)
# The same hub opened a second time for the group committer's thread: pieces of database work handed
# to COMMITTER are built on it (hub/committer.py, hub/app.py).
WRITER = web.AppKey("writer", Hub)
COMMITTER = web.AppKey("committer", Committer)
RECONCILE_CACHE = web.AppKey("reconcile_cache", TreeCache)
