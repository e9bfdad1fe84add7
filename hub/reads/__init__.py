"""The hub's read model (issues 15 and 20): every query the dashboard, ``/metrics`` and the citizen's
tracking page run, behind one interface, off the event loop.

- ``model``: :class:`ReadModel`, read-only connections in worker threads, a fresh read transaction per
  page, and :class:`ReadHub`, the hub as a page reads it (``hub.reads`` on it is :class:`HubReads`);
- ``queries``: :class:`HubReads`, made of the queries of ``stations`` (overview, station pages,
  catalogue releases, audit trail), ``review`` (conflicts and quarantine lists), ``figures``
  (``/metrics``) and ``citizen`` (the tracking page);
- ``operator_store``: the dashboard's own few writes (sessions, failed logins, audit rows, catalogue
  drafts), on the serving connection inside the caller's transaction.

Nothing here is SQLite-specific beyond the connection itself unless a comment says so: a PostgreSQL
backend implements the same methods.
"""

from __future__ import annotations

from aiohttp import web

from hub.reads.model import ReadHub, ReadModel
from hub.reads.queries import HubReads

READS = web.AppKey("reads", ReadModel)

__all__ = ["READS", "HubReads", "ReadHub", "ReadModel"]
