"""The hub's one SQL text, spoken to PostgreSQL: a psycopg connection with sqlite3's calling style.

The store and ``replica/`` write their SQL once, in SQLite's words, and call ``conn.execute(sql,
params)``, ``executemany``, and the cursor's ``fetchone``/``fetchall``/``rowcount``/``lastrowid``.
:class:`PgConnection` offers exactly that over a psycopg 3 connection, translating each statement once
(cached) with :func:`translate`. The translation is deliberately small and mechanical, outside string
literals only:

- ``?`` placeholders become ``%s`` (and a literal ``%`` becomes ``%%``, psycopg's escape);
- a two-argument ``MAX(a, b)`` / ``MIN(a, b)`` (SQLite's scalar forms) becomes ``GREATEST`` / ``LEAST``;
- ``INSERT OR IGNORE INTO`` becomes ``INSERT INTO … ON CONFLICT DO NOTHING``;
- an empty list ``IN ()`` (SQLite reads it as no match; PostgreSQL refuses it as a syntax error)
  becomes ``= ANY('{}')`` and ``NOT IN ()`` becomes ``<> ALL('{}')``: an empty array of the left
  side's own type, false and true as on SQLite (``IN (NULL)`` would make ``NOT IN`` match nothing);
- SQLite's unary ``+`` before a column (``(+accepted_at, +number)``: it keeps SQLite's planner from
  reading a filter as a range to walk) is dropped after ``(`` or ``,``: PostgreSQL has no unary plus
  on text, and its planner needs no such hint;
- the column ``user`` (a reserved word in PostgreSQL, where bare ``user`` means ``current_user``) is
  quoted;
- an ``INSERT`` into a table whose key the database hands out gets ``RETURNING`` that key, so the
  cursor's ``lastrowid`` is what SQLite's would be.

What would need cleverness is not translated: such statements are written in a form both engines
read the same (``INSERT … ON CONFLICT (key) DO UPDATE`` instead of ``INSERT OR REPLACE``, ``CASE``
instead of summing a comparison). PRAGMAs never reach this layer: the store's PostgreSQL methods say
what stands for them (``hub/store/pg_store.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import NumericLoader

# Tables whose integer key the database hands out (SQLite's INTEGER PRIMARY KEY; an identity column
# here): an INSERT into one returns the new key, which the cursor offers as ``lastrowid``.
IDENTITY_KEYS = {
    "changes": "rowid",
    "quarantine": "id",
    "rejected": "id",
    "alerts": "id",
    "reconciliations": "id",
    "nightly_runs": "id",
    "dash_login_failures": "id",
    "dash_audit": "id",
    "dash_drafts": "id",
}

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_INSERT_INTO = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(\w+)", re.IGNORECASE)
_PAIR_FN = re.compile(r"\b(MAX|MIN)\(", re.IGNORECASE)
_USER = re.compile(r"(?<![\w\"])user(?![\w\"])")
_UNARY_PLUS = re.compile(r"([(,]\s*)\+(?=[A-Za-z_])")
_EMPTY_IN = re.compile(r"\b(NOT\s+)?IN\s*\(\s*\)", re.IGNORECASE)


def _pair_functions(code: str) -> str:
    """``MAX(a, b)`` → ``GREATEST(a, b)`` and ``MIN(a, b)`` → ``LEAST(a, b)``; aggregates (one
    argument) stay as they are."""
    out, pos = [], 0
    for m in _PAIR_FN.finditer(code):
        if m.start() < pos:
            continue
        depth, commas, i = 1, 0, m.end()
        while i < len(code) and depth:
            c = code[i]
            depth += (c == "(") - (c == ")")
            commas += c == "," and depth == 1
            i += 1
        if commas:
            name = "GREATEST" if m.group(1).upper() == "MAX" else "LEAST"
            out.append(code[pos : m.start()] + name + "(")
            pos = m.end()
    out.append(code[pos:])
    return "".join(out)


def _code(part: str) -> str:
    """One stretch of SQL outside string literals, translated."""
    part = part.replace("%", "%%").replace("?", "%s")
    part = _UNARY_PLUS.sub(r"\1", part)
    part = _EMPTY_IN.sub(lambda m: "<> ALL('{}')" if m.group(1) else "= ANY('{}')", part)
    return _USER.sub('"user"', _pair_functions(part))


@lru_cache(maxsize=2048)
def translate(sql: str) -> tuple[str, str | None]:
    """(PostgreSQL text, the key column an INSERT returns or None) for one SQLite-worded statement."""
    pieces, pos = [], 0
    for m in _LITERAL.finditer(sql):
        pieces.append(_code(sql[pos : m.start()]))
        pieces.append(m.group(0).replace("%", "%%"))
        pos = m.end()
    pieces.append(_code(sql[pos:]))
    text = "".join(pieces)
    returning = None
    m = _INSERT_INTO.match(text)
    if m:
        if m.group(1):
            text = text[: m.start(1)] + text[m.end(1) :]
            text += " ON CONFLICT DO NOTHING"
        key = IDENTITY_KEYS.get(m.group(2).lower())
        if key and "RETURNING" not in text.upper():
            text += f" RETURNING {key}"
            returning = key
    return text, returning


def _params(params: Sequence[object] | None) -> Sequence[object]:
    # SQLite stores True as 1 in an INTEGER column; PostgreSQL refuses a boolean there.
    if not params:
        return ()
    if any(p.__class__ is bool for p in params):
        return [int(p) if p.__class__ is bool else p for p in params]  # type: ignore[call-overload]
    return params


class _WholeNumbers(NumericLoader):
    """SUM over integers is ``numeric`` in PostgreSQL; a whole one reads as an ``int``, as SQLite's."""

    def load(self, data: Any) -> Any:
        value = super().load(data)
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return value


class Cursor:
    """What a statement left: its rows, ``rowcount``, and for an INSERT with a handed-out key, that key."""

    def __init__(self, cur: psycopg.Cursor[Any], returning: str | None) -> None:
        self._cur = cur
        self.rowcount = cur.rowcount
        self.lastrowid: int | None = None
        if returning is not None:
            row = cur.fetchone() if cur.pgresult is not None and cur.pgresult.ntuples else None
            self.lastrowid = None if row is None else int(row[0])

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)


class PgConnection:
    """sqlite3's ``execute``/``executemany`` over a psycopg connection in autocommit mode (the store
    writes BEGIN and COMMIT itself, as ``docs/architecture.md`` explains).

    A connection lost between transactions (the server restarted, a failover, an idle connection cut
    by a firewall) is opened again once, and the statement that found it lost runs again: nothing of
    it had run, since it was the first of a transaction or a lone read. A connection lost inside a
    transaction is not: that transaction is gone, its error reaches the caller (``StoreError``), and the
    next statement outside a transaction opens the connection again. ``session`` statements (settings)
    run again on each new connection."""

    def __init__(self, conn: psycopg.Connection[Any], dsn: str = "") -> None:
        self.raw = conn
        self.dsn = dsn
        self.session: list[str] = []
        self._lost = False  # the connection was lost inside a transaction its owner has not settled
        self._trace: Callable[[str], object] | None = None
        conn.adapters.register_loader("numeric", _WholeNumbers)

    def set_session(self, statement: str) -> None:
        """Run a session setting now and on every connection opened again later."""
        self.raw.execute(statement.encode())
        self.session.append(statement)

    def _open_again(self) -> None:
        self._lost = False
        self.raw = psycopg.connect(self.dsn, autocommit=True)
        self.raw.adapters.register_loader("numeric", _WholeNumbers)
        for statement in self.session:
            self.raw.execute(statement.encode())

    def settle(self) -> None:
        """The owner of a transaction lost with the connection has rolled it back: statements outside a
        transaction may open the connection again (see :meth:`_run`)."""
        self._lost = False

    def _run(self, text: str, work: Callable[[], psycopg.Cursor[Any]]) -> psycopg.Cursor[Any]:
        # Lost inside a transaction: until its owner settles it, only a new BEGIN opens the connection
        # again. The rest of that transaction (a piece, its undo, the COMMIT) must fail, never run on a
        # new connection in autocommit, outside the write lock.
        if self.raw.broken and self.dsn and (not self._lost or text.lstrip().upper().startswith("BEGIN")):
            self._open_again()
        between = self.raw.info.transaction_status == TransactionStatus.IDLE
        try:
            return work()
        except psycopg.OperationalError:
            if self.raw.broken and not between:
                self._lost = True
            if not (between and self.dsn and self.raw.broken):
                raise
        self._open_again()
        return work()

    def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        """Called with each statement's PostgreSQL text before it runs, its values bound in as literals,
        as sqlite3's trace is (a statement can then be planned as it ran: ``tests/pg/test_query_plans_pg.py``)."""
        self._trace = callback

    @classmethod
    def connect(cls, dsn: str) -> PgConnection:
        return cls(psycopg.connect(dsn, autocommit=True), dsn)

    def execute(self, sql: str, params: Sequence[object] | None = None) -> Cursor:
        text, returning = translate(sql)
        values = _params(params)
        if self._trace is not None:
            self._trace(psycopg.ClientCursor(self.raw).mogrify(text, values))  # type: ignore[arg-type]
        return Cursor(self._run(text, lambda: self.raw.execute(text, values)), returning)  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> Cursor:
        text, _ = translate(sql)
        if " RETURNING " in text and not sql.upper().count("RETURNING"):
            text = text[: text.rindex(" RETURNING ")]
        cur = self.raw.cursor()
        batch = [_params(r) for r in rows]
        if self._trace is not None:
            for values in batch:  # one call a row, as sqlite3's trace does
                self._trace(psycopg.ClientCursor(self.raw).mogrify(text, values))  # type: ignore[arg-type]
        if batch:
            cur.executemany(text, batch)  # type: ignore[arg-type]
        return Cursor(cur, None)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (a lost connection has none left to undo)."""
        return not self.raw.broken and self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


class PgDatabase:
    """The little of ``sqlite_utils.Database`` the store's callers use: ``conn`` and ``execute``."""

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[object] | None = None) -> Cursor:
        return self.conn.execute(sql, params)


__all__ = ["IDENTITY_KEYS", "Cursor", "PgConnection", "PgDatabase", "translate"]
