"""Station-only columns and tables for sealing citizens' data at rest (issue 16, ``node/at_rest.py``).

Migration set ``sanji.node.sealing``, applied by ``node/store.py`` at every open, so an older folder
gains them empty and behaves as before until it has a data key.

- ``changes.digest``: the anti-entropy digest of the *plaintext* change (``sync/scope.change_digest``),
  computed at write time; ``node/scope_leaves.py`` reads it instead of hashing the sealed fields, so
  the station's tree agrees with the hub's, which holds plaintext.
- ``changes.hub_seal``: the change's personal values sealed to the hub (``protocol/hub_seal.py``);
  a batch carries it, so building one needs no key.
- ``search_tokens``: keyed tokens (HMAC under a key derived from the data key) of an application's
  ID number and full name, so an exact search needs no scan of sealed values.
- ``conflicts_record``: the conflicts of one record, which a sign-in seals with that record's changes
  (``node/at_rest_conflicts.py``) chunk by chunk; without it each chunk scans the table.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("sanji.node.sealing")


@migrations()
def m001_sealed_changes(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE changes ADD COLUMN digest BLOB")
    db.execute("ALTER TABLE changes ADD COLUMN hub_seal BLOB")
    db.execute(
        "CREATE TABLE search_tokens (application TEXT NOT NULL, kind TEXT NOT NULL, token BLOB NOT NULL,"
        " PRIMARY KEY (application, kind))"
    )
    db.execute("CREATE INDEX search_tokens_token ON search_tokens (token)")


@migrations()
def m002_conflicts_by_record(db: sqlite_utils.Database) -> None:
    db.execute("CREATE INDEX IF NOT EXISTS conflicts_record ON conflicts (entity, record)")
