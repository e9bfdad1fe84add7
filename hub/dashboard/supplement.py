"""The dashboard's 补交材料 form on an application's page: the district hall records deferred (容缺)
materials a citizen brought to it, exactly as ``sanji hub supplement`` (``hub/supplement.py``), with an
audit row in the same transaction. A refusal shows on the page with the command's reason."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from hub.dashboard.apps import detail
from hub.dashboard.auth import audit, hub_of, operator, redirect
from hub.supplement import supplement
from present.webui import read_form
from replica.errors import Refused

DONE = "supplemented"
NOTICE = "已登记补交材料，将随下次同步下发受理站点。"


@operator
async def record(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    names = [str(v).strip()[:200] for v in form.getall("material", [])]
    received = str(form.get("received", "")).strip()[:10]
    if not names:
        return await detail(request, number, status=400, move_error="未能登记补交材料：请勾选申请人送来的容缺材料。")

    def audited(out: dict[str, object]) -> None:
        audit(request, "supplement", number, detail=f"补交 {'、'.join(names)}；{out['received']} 收到")

    try:
        supplement(hub, number, names, received or None, also=audited)
    except Refused as exc:
        return await detail(request, number, status=409, move_error=f"未能登记补交材料：{exc}")
    return redirect(f"/applications/{quote(number, safe='')}?done={DONE}")


def setup(app: web.Application) -> None:
    app.router.add_post("/applications/{number}/supplement", record)
