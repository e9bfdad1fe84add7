"""Every query of the read model, on one object over one connection (:class:`HubReads`); the queries
live in modules named after the pages they serve."""

from __future__ import annotations

import sqlite3

from hub.reads.citizen import CitizenReads
from hub.reads.figures import FigureReads
from hub.reads.review import ReviewReads
from hub.reads.stations import StationReads


class HubReads(StationReads, ReviewReads, FigureReads, CitizenReads):
    """The read model's queries over ``conn`` (a read-only connection, in a read transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
