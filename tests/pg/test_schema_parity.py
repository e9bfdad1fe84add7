"""The PostgreSQL schema (``hub/schema_pg.py``, written by hand) has every table and column a SQLite hub
has after all its migrations, and nothing else.

The two are kept apart on purpose (PostgreSQL hubs start from the final shape, with no history to
replay), so a migration added to one side only would otherwise show up as a failure in whichever
query first touches the missing column, on one backend, perhaps in production.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from hub.store import HubStore, PgHubStore

# Bookkeeping each engine keeps in its own way: not part of the hub's schema.
SQLITE_OWN = {"_sqlite_migrations", "sqlite_sequence", "sqlite_stat1", "sqlite_stat4"}
PG_OWN = {"schema_migrations", "store_clock"}  # store_clock: PRAGMA data_version's stand-in


def _sqlite_columns(tmp_path: Path) -> dict[str, set[str]]:
    store = HubStore.create(tmp_path / "hub")
    try:
        conn = store.conn
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: {str(c[1]) for c in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables if t not in SQLITE_OWN
        }
    finally:
        store.close()


def _pg_columns(dsn: str) -> dict[str, set[str]]:
    PgHubStore.open_at(dsn).close()  # applies every migration
    out: dict[str, set[str]] = {}
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
    for table, column in rows:
        if table not in PG_OWN:
            out.setdefault(str(table), set()).add(str(column))
    return out


def test_postgresql_has_every_table_and_column_of_sqlite(tmp_path: Path, pg_dsn: str) -> None:
    sqlite, pg = _sqlite_columns(tmp_path), _pg_columns(pg_dsn)
    assert sorted(set(sqlite) - set(pg)) == [], "tables only on SQLite: add them to hub/schema_pg.py"
    assert sorted(set(pg) - set(sqlite)) == [], "tables only on PostgreSQL: add a SQLite migration"
    differing = {t: (sorted(sqlite[t] - pg[t]), sorted(pg[t] - sqlite[t])) for t in sqlite if sqlite[t] != pg[t]}
    assert differing == {}, "columns (only on SQLite, only on PostgreSQL) per table"
