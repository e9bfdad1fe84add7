"""`sanji node supplement`: the station records deferred (容缺) materials a citizen brought later.

One change writes each material as ``["supplemented", received date]`` (``replica/supplement.py``);
the station's write path asks the hub's admission question first (``sync/supplement.py``), so what the
hub would hold is refused here, at the window, with the same reason. It syncs like any change.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from node import commands, staff_cli
from node.station import Station
from present.output import emit, supplement_arguments
from replica import supplement as plans
from replica.errors import Refused


def supplement(
    st: Station, number: str, materials: Sequence[str], received: str | None = None, *, author: str = ""
) -> dict[str, object]:
    app_id = commands.find(st, number)
    record = st.records.load("application", app_id)
    owner = record["station"][2] if "station" in record else ""
    if owner != st.code:
        raise Refused(
            f"{number}: 该办件由 {owner} 受理，补交材料请在受理站点登记，或送区局登记 "
            "(only the accepting station or the district records it)",
            code="not_authorised",
        )
    plan = plans.plan(record, number, materials, received, st.clock())
    with st.transaction():
        st.write("application", app_id, plan.fields, plan.base, author=author)
    return plan.result


def offer(st: Station, values: dict[str, object]) -> dict[str, object] | None:
    """What the application page's 补交材料 form offers: the materials still owed, when this station
    accepted the file and it is not closed (the same limits the admission question sets)."""
    owed = plans.outstanding(values)
    if not owed or values.get("station") != st.code or str(values.get("status")) in plans.CLOSED:
        return None
    return {"owed": owed, "today": plans.today(st.clock())}


def add_command(cmd: Callable[[str, str], argparse.ArgumentParser]) -> None:
    supplement_arguments(cmd("supplement", "登记补交的容缺材料（申请人后来送来的材料）"))


def cmd_supplement(args: Any) -> None:
    st = Station(args.dir)
    out = supplement(st, args.number, args.material, args.received, author=staff_cli.author(st, args))
    emit(out, args.json, plans.text)
