"""A test's own SQL on a hub's store, whichever backend it is on: ``hub.db`` through sqlite3, or the
PostgreSQL database the folder names through the store's dialect (the same ``?`` placeholders and
SQLite spellings the store's own SQL uses). For tests that read or edit the hub behind its back."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from hub.store import DB_NAME, database_of


class PgTestConnection:
    """The little of ``sqlite3.Connection`` the tests use, over a PostgreSQL connection in autocommit
    (each statement commits as it runs, so ``commit`` has nothing left to do)."""

    def __init__(self, dsn: str) -> None:
        from hub.store.pg_dialect import PgConnection

        self.conn = PgConnection.connect(dsn)

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self.conn.execute(sql, params)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> PgTestConnection:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        pass  # as sqlite3's: the block ends a transaction, not the connection


def hub_sql(folder: Path, *, timeout: float = 10) -> sqlite3.Connection | PgTestConnection:
    dsn = database_of(folder)
    if dsn is None:
        return sqlite3.connect(folder / DB_NAME, timeout=timeout)
    return PgTestConnection(dsn)
