"""The numbers held twice, as the nightly job keeps them (``hub/nightly_numbers.py``): which
applications changed since a mark, their numbers, who holds a number, and the kept list
``nightly_duplicate_numbers`` (migration m203 in ``hub/schema.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hub.store.base import StoreBase

CHUNK = 500  # ids or numbers per IN (...): well under SQLite's limit on parameters


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _marks(part: Sequence[str]) -> str:
    return ",".join("?" * len(part))


class NightlyNumbers(StoreBase):
    def applications_changed(self, after_rowid: int, upto_rowid: int) -> set[str]:
        """Ids of the applications with a change logged in (after_rowid, upto_rowid]."""
        return {
            str(rid)
            for (rid,) in self.conn.execute(
                "SELECT DISTINCT rid FROM changes WHERE rowid > ? AND rowid <= ? AND entity = 'application'",
                (after_rowid, upto_rowid),
            )
        }

    def numbers_of(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for part in _chunks(ids):
            found |= {
                str(n)
                for (n,) in self.conn.execute(
                    f"SELECT number FROM applications WHERE id IN ({_marks(part)}) AND number IS NOT NULL", part
                )
            }
        return found

    def holders_of(self, numbers: Sequence[str]) -> dict[str, list[str]]:
        """Each number's applications, ids in order."""
        held: dict[str, list[str]] = {}
        for part in _chunks(numbers):
            for number, app_id in self.conn.execute(
                f"SELECT number, id FROM applications WHERE number IN ({_marks(part)}) ORDER BY number, id", part
            ):
                held.setdefault(str(number), []).append(str(app_id))
        return held

    def listed_duplicate_numbers(self) -> set[str]:
        return {str(n) for (n,) in self.conn.execute("SELECT number FROM nightly_duplicate_numbers")}

    def relist_duplicate_numbers(self, checked: Sequence[str], twice: Iterable[str]) -> None:
        """Of the ``checked`` numbers, list exactly those in ``twice``. Call inside a transaction."""
        for part in _chunks(checked):
            self.conn.execute(f"DELETE FROM nightly_duplicate_numbers WHERE number IN ({_marks(part)})", part)
        self.conn.executemany(
            "INSERT INTO nightly_duplicate_numbers (number) VALUES (?) ON CONFLICT DO NOTHING",
            [(n,) for n in sorted(twice)],
        )
