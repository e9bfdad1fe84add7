"""Citizens' data sealed at rest on a station (issue 16): values open only in their own row and field,
the station's database file holds none of them in any usual encoding, and keyed search tokens find
exactly the right rows. Every applicant here is generated (tests/applicants.py)."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
import sqlite_utils

from node.data_key import new_data_key
from node.sealed_fields import FIELDS, SealedApplicant, Sealer
from replica.db import transaction
from replica.errors import Refused
from sync.identity import mask_id, mask_name, mask_phone
from tests.applicants import People
from tests.node.staff_helpers import ADMIN_PASSWORD, OTHER_STATION, STATION, T0, first_admin, sign_in, station


def _encodings(value: str) -> list[bytes]:
    """Ways a plaintext could sit in a file: UTF-8, UTF-16 either way round, and msgpack."""
    return [
        value.encode("utf-8"),
        value.encode("utf-16-le"),
        value.encode("utf-16-be"),
        msgpack.packb(value),
    ]


def _people(seed: int, count: int) -> list[dict[str, str]]:
    people = People(seed)
    return [
        {"name": people.name(), "id_number": people.id_number(), "phone": people.phone(), "address": people.address()}
        for _ in range(count)
    ]


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(new_data_key(), STATION)


def test_each_field_opens_in_its_own_row_and_field(sealer: Sealer) -> None:
    for i, person in enumerate(_people(1, 20)):
        app = f"app-{i}"
        sealed = sealer.applicant(app, **person)
        assert sealer.open_applicant(app, sealed) == person
        assert sealed.name_masked == mask_name(person["name"])
        assert sealed.id_masked == mask_id(person["id_number"])
        assert sealed.phone_masked == mask_phone(person["phone"])


def test_a_value_moved_to_another_row_or_field_is_refused(sealer: Sealer) -> None:
    person = _people(2, 1)[0]
    sealed = sealer.applicant("app-1", **person)
    with pytest.raises(Refused) as e:
        sealer.open("app-2", "id_number", sealed.id_number)  # another application's row
    assert e.value.code == "sealed_misplaced" and str(e.value).startswith("这条加密的个人信息与所在的记录或字段不符")
    with pytest.raises(Refused) as e:
        sealer.open("app-1", "address", sealed.name)  # the name put into the address column
    assert e.value.code == "sealed_misplaced"
    swapped = SealedApplicant(**{**sealed.__dict__, "phone": sealed.id_number, "id_number": sealed.phone})
    with pytest.raises(Refused):
        sealer.open_applicant("app-1", swapped)
    # ...and with its own row and field it still opens: nothing was lost.
    assert sealer.open("app-1", "id_number", sealed.id_number) == person["id_number"]


def test_another_stations_key_opens_nothing(sealer: Sealer) -> None:
    sealed = sealer.seal("app-1", "name", "向测1")
    with pytest.raises(Refused) as e:
        Sealer(new_data_key(), STATION).open("app-1", "name", sealed)
    assert e.value.code == "sealed_misplaced"


def test_the_same_key_under_another_station_code_opens_nothing() -> None:
    key = new_data_key()
    sealed = Sealer(key, STATION).seal("app-1", "name", "向测1")
    with pytest.raises(Refused) as e:
        Sealer(key, OTHER_STATION).open("app-1", "name", sealed)
    assert e.value.code == "sealed_misplaced"


@pytest.mark.parametrize("cut", [b"", b"\x01", b"\x02" + b"\x00" * 80])
def test_a_damaged_value_is_refused(sealer: Sealer, cut: bytes) -> None:
    with pytest.raises(Refused) as e:
        sealer.open("app-1", "name", cut)
    assert e.value.code == "sealed_damaged"


def test_an_altered_value_is_refused(sealer: Sealer) -> None:
    sealed = bytearray(sealer.seal("app-1", "phone", "13912345678"))
    sealed[20] ^= 0x40
    with pytest.raises(Refused) as e:
        sealer.open("app-1", "phone", bytes(sealed))
    assert e.value.code == "sealed_misplaced"


def test_lengths_do_not_tell_names_apart(sealer: Sealer) -> None:
    lengths = {len(sealer.seal("a", "name", n)) for n in ("向一", "欧阳测测", "赵测12", "X")}
    assert len(lengths) == 1
    assert len(sealer.seal("a", "address", "测" * 40)) > len(sealer.seal("a", "address", "测"))


def test_unknown_fields_and_empty_ids_are_a_bug_not_a_refusal(sealer: Sealer) -> None:
    with pytest.raises(ValueError):
        sealer.seal("app-1", "email", "x")
    with pytest.raises(ValueError):
        sealer.seal("", "name", "x")
    assert FIELDS == ("name", "id_number", "phone", "address")


def _sealed_table(db: sqlite_utils.Database) -> None:
    # The shape the integration gives the station's applications (docs/architecture.md, "Station data
    # at rest"): sealed columns, two indexed tokens, masked forms.
    db.execute(
        """CREATE TABLE sealed_applicants (id TEXT PRIMARY KEY, name BLOB, id_number BLOB, phone BLOB,
            address BLOB, id_token BLOB, name_token BLOB, name_masked TEXT, id_masked TEXT, phone_masked TEXT)"""
    )
    db.execute("CREATE INDEX sealed_id_token ON sealed_applicants(id_token)")
    db.execute("CREATE INDEX sealed_name_token ON sealed_applicants(name_token)")


def _store(db: sqlite_utils.Database, sealer: Sealer, rows: dict[str, dict[str, str]]) -> None:
    with transaction(db) as conn:
        for app, person in rows.items():
            s = sealer.applicant(app, **person)
            conn.execute(
                "INSERT INTO sealed_applicants VALUES (?,?,?,?,?,?,?,?,?,?)",
                [app, s.name, s.id_number, s.phone, s.address, s.id_token, s.name_token, *s.masked()],
            )


def test_the_database_file_holds_no_plaintext(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    admin = first_admin(db)
    sealer = Sealer(admin.data_key(T0), STATION)
    _sealed_table(db)
    rows = {f"app-{i}": p for i, p in enumerate(_people(3, 40))}
    _store(db, sealer, rows)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [p for p in (tmp_path / "V").iterdir() if p.name.startswith("node.db")]
    raw = b"".join(p.read_bytes() for p in files)
    stored = b"".join(
        bytes(v)
        for row in db.conn.execute("SELECT name, id_number, phone, address FROM sealed_applicants")
        for v in row
    )
    for person in rows.values():
        for field, value in person.items():
            for encoded in _encodings(value):
                assert encoded not in stored, (field, encoded)
                assert encoded not in raw, (field, encoded)
    assert ADMIN_PASSWORD.encode() not in raw


def test_keyed_search_finds_exactly_the_right_rows(tmp_path: Path) -> None:
    db = station(tmp_path / "V")
    admin = first_admin(db)
    sealer = Sealer(admin.data_key(T0), STATION)
    _sealed_table(db)
    people = _people(4, 30)
    rows = {f"app-{i}": p for i, p in enumerate(people)}
    # The same citizen applying twice, and a namesake: another person with the same name.
    rows["app-again"] = dict(people[5])
    rows["app-namesake"] = {**_people(5, 1)[0], "name": people[7]["name"]}
    _store(db, sealer, rows)

    clerk = sign_in(db, "admin", ADMIN_PASSWORD, now_ms=T0 + 1)
    search = Sealer(clerk.data_key(T0 + 1), STATION)  # a later session derives the same tokens

    def by(column: str, token: bytes) -> set[str]:
        sql = f"SELECT id FROM sealed_applicants WHERE {column}=?"
        return {str(r[0]) for r in db.conn.execute(sql, (token,))}

    for app, person in rows.items():
        same_id = {a for a, p in rows.items() if p["id_number"] == person["id_number"]}
        same_name = {a for a, p in rows.items() if p["name"] == person["name"]}
        assert by("id_token", search.id_token(person["id_number"])) == same_id
        assert by("name_token", search.name_token(person["name"])) == same_name
        assert app in same_id and app in same_name
    assert by("id_token", search.id_token(people[5]["id_number"])) == {"app-5", "app-again"}
    assert by("name_token", search.name_token(people[7]["name"])) == {"app-7", "app-namesake"}

    # What staff type: a lower-case x, spaces, full-width digits.
    typed = people[3]["id_number"].lower()
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in typed)
    spaced = f"{typed[:6]} {typed[6:14]} {typed[14:]}"
    for query in (typed, full_width, spaced):
        assert by("id_token", search.id_token(query)) == {"app-3"}
    name = people[9]["name"]
    assert by("name_token", search.name_token(f" {name[0]} {name[1:]} ")) == {"app-9"}

    # A near miss finds nothing, and another station's key finds nothing of ours.
    assert by("name_token", search.name_token(people[9]["name"] + "0")) == set()
    stranger = Sealer(new_data_key(), STATION)
    assert by("id_token", stranger.id_token(people[3]["id_number"])) == set()
