"""docs/protocol.md's field tables are the code's: each typed body's FIELDS, table for table.

Every class in protocol.messages.BODIES has a heading in docs/protocol.md ending in its name in
backticks and parentheses, e.g. ``#### `acks` (`Acks`)``, followed by a table

    | field | type | presence |
    |---|---|---|
    | `acks` | [ack] | required |

with exactly its fields, in order, their wire types (the words of protocol.wire.TYPES) and
"required" or "optional". Print the tables the code implies with:
    .venv/bin/python -m tests.protocol.test_spec_tables
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.messages import BODIES
from protocol.wire import TYPES, Field

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
HEADING = re.compile(r"^#{3,5} .*\(`(\w+)`\)\s*$")
ROW = re.compile(r"^\| `([^`]+)` \| (.+?) \| (required|optional) \|$")


def table(cls: type) -> list[tuple[str, str, str]]:
    fields: tuple[Field, ...] = cls.FIELDS  # type: ignore[attr-defined]
    return [(f.name, f.type, "required" if f.required else "optional") for f in fields]


def render(cls: type) -> str:
    rows = [f"| `{name}` | {kind} | {presence} |" for name, kind, presence in table(cls)]
    return "\n".join(["| field | type | presence |", "|---|---|---|", *rows])


def spec_tables(text: str) -> dict[str, list[tuple[str, str, str]]]:
    """Class name -> the rows of the table under its heading, as written."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if m is None:
            continue
        rows: list[tuple[str, str, str]] = []
        j = i + 1
        while j < len(lines) and not lines[j].startswith("|"):
            j += 1
        assert lines[j : j + 2] == ["| field | type | presence |", "|---|---|---|"], f"table header under {line!r}"
        for row in lines[j + 2 :]:
            if not row.startswith("|"):
                break
            r = ROW.match(row)
            assert r is not None, f"malformed row under {line!r}: {row!r}"
            rows.append((r[1], r[2], r[3]))
        assert m[1] not in found, f"two tables for {m[1]}"
        found[m[1]] = rows
    return found


def test_every_body_has_its_table_and_no_other() -> None:
    written = spec_tables(SPEC.read_text(encoding="utf-8"))
    assert sorted(written) == sorted(cls.__name__ for cls in BODIES)


@pytest.mark.parametrize("cls", BODIES, ids=lambda c: c.__name__)
def test_the_table_is_the_code(cls: type) -> None:
    written = spec_tables(SPEC.read_text(encoding="utf-8"))[cls.__name__]
    assert written == table(cls), (
        f"docs/protocol.md disagrees with {cls.__name__}.FIELDS; it should read:\n{render(cls)}"
    )


@pytest.mark.parametrize("cls", BODIES, ids=lambda c: c.__name__)
def test_every_field_type_is_one_the_spec_defines(cls: type) -> None:
    text = SPEC.read_text(encoding="utf-8")
    for _, kind, _ in table(cls):
        assert kind in TYPES
        types = text.split("### Field types", 1)[1].split("\n#", 1)[0]
        assert f"| {kind} |" in types, f"{kind!r} is not in the spec's list of field types"


if __name__ == "__main__":
    for cls in BODIES:
        print(f"#### ... (`{cls.__name__}`)\n\n{render(cls)}\n")
