"""`sanji hub supplement` and the dashboard's 补交材料 form: the district hall records deferred (容缺)
materials a citizen brought to it rather than to the accepting station.

The same plan as a station's (``replica/supplement.py``) and the same admission question
(``sync/supplement.py``, asked by ``Hub.write``); the change fans out to the accepting station like
any hub change. ``also`` runs in the same transaction (the dashboard's audit row).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hub import operations
from present.output import emit, supplement_arguments
from replica import supplement as plans

if TYPE_CHECKING:
    from hub.service import Hub


def supplement(
    hub: Hub,
    number: str,
    materials: Sequence[str],
    received: str | None = None,
    also: Callable[[dict[str, object]], object] | None = None,
) -> dict[str, object]:
    app_id = operations.find_application(hub, number)
    record = hub.records.load("application", app_id)
    plan = plans.plan(record, number, materials, received, hub.clock())
    with hub.store.transaction():
        hub.write("application", app_id, plan.fields, plan.base)
        if also is not None:
            also(plan.result)
    return plan.result


def add_command(cmd: Callable[[str, str], argparse.ArgumentParser]) -> None:
    supplement_arguments(cmd("supplement", "在区局登记补交的容缺材料（申请人后来送来的材料）"))


def cmd_supplement(args: Any) -> None:
    from hub.service import Hub

    out = supplement(Hub.open(args.dir), args.number, args.material, args.received)
    emit(out, args.json, plans.text)
