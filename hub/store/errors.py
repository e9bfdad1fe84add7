"""The hub store's own error, so that callers never catch a database driver's exceptions.

A second backend (PostgreSQL) raises its driver's errors, not ``sqlite3``'s; code above the store
that catches ``sqlite3.DatabaseError`` would then miss them. The store translates what its backend
raises into :class:`StoreError` where a caller can meet it (``HubStore.transaction``,
``HubStore.ping``, the group commit), keeping the driver's message.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from protocol.errors import SanjiError


class StoreError(SanjiError):
    """The hub's database failed: damaged, unreachable, full, or a write broke a constraint."""

    default_code = "store_failed"


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise the database driver's errors (SQLite's, or psycopg's on PostgreSQL) as
    :class:`StoreError`, with the same message."""
    try:
        yield
    except StoreError:
        raise
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from exc
    except Exception as exc:
        # psycopg is imported only by a PostgreSQL hub; a SQLite hub never loads it to ask.
        psycopg = sys.modules.get("psycopg")
        if psycopg is not None and isinstance(exc, psycopg.Error):
            raise StoreError(str(exc)) from exc
        raise
