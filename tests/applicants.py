"""Generated applicants and the sample catalogue, read as plain JSON, for the process-level tests.

Identifiers are made up with a correct GB 11643 check character (computed here, not by the code under
test) and belong to nobody. The catalogue is read from the JSON file itself, so a test's expectations
do not come from the code it checks.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sanji

CATALOGUE_FILE = Path(sanji.__file__).resolve().parent / "data" / "catalogue-sample.json"
DISTRICT = "360802"
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_MAP = "10X98765432"
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张"


def id_check_char(first17: str) -> str:
    return ID_CHECK_MAP[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


class People:
    """Generated applicants: valid-looking identifiers that belong to nobody."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.count = 0

    def id_number(self) -> str:
        born = date(1940, 1, 1) + timedelta(days=self.rng.randrange(0, 365 * 64))
        first17 = f"{DISTRICT}{born:%Y%m%d}{self.rng.randrange(1000):03d}"
        return first17 + id_check_char(first17)

    def phone(self) -> str:
        return f"139{self.rng.randrange(10**8):08d}"

    def name(self) -> str:
        self.count += 1
        return f"{self.rng.choice(SURNAMES)}测{self.count}"

    def address(self) -> str:
        return f"测试镇测试村{self.rng.randrange(1, 20)}组{self.rng.randrange(1, 99)}号"


def catalogue_doc() -> dict[str, Any]:
    return dict(json.loads(CATALOGUE_FILE.read_text(encoding="utf-8")))


def catalogue_items() -> dict[str, dict[str, Any]]:
    return {str(it["code"]): it for it in catalogue_doc()["items"]}


def required_materials(item: str) -> list[str]:
    return [str(m["name"]) for m in catalogue_items()[item]["materials"] if m.get("required")]


def accept_args(folder: object, people: People, item: str, *, defer: tuple[str, ...] = ()) -> list[object]:
    """`sanji node accept` arguments for one generated applicant: every required material submitted,
    those in `defer` deferred (容缺)."""
    args: list[object] = [
        "node",
        "accept",
        folder,
        "--item",
        item,
        "--name",
        people.name(),
        "--id-number",
        people.id_number(),
        "--phone",
        people.phone(),
        "--address",
        people.address(),
    ]
    for m in required_materials(item):
        args += ["--defer" if m in defer else "--material", m]
    return args
