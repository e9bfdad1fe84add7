"""The station's 补交材料 form on an application's page: tick the deferred (容缺) materials the citizen
brought, the day they came (today by default), and record them (``node.supplement.supplement``, as
``sanji node supplement``). A refusal shows on the page with the command's reason; nothing is written."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from node.supplement import supplement
from node.ui import apps as ui_apps
from node.ui.page import form_post, station_of
from node.ui.signin import author_of
from present.webui import read_form
from replica.errors import Refused

DONE_NOTICE = "已登记补交材料，将在下次同步时上传区局。"


@form_post
async def record(request: web.Request) -> web.StreamResponse:
    st = station_of(request)
    number = request.match_info["number"]
    form = await read_form(request)
    names = [str(v) for v in form.getall("material", [])]
    received = str(form.get("received", "")).strip()[:10]
    if not names:
        return await ui_apps._detail(request, number, status=400, error="请勾选申请人送来的容缺材料。")
    try:
        supplement(st, number, names, received or None, author=author_of(request))
    except Refused as exc:
        return await ui_apps._detail(request, number, status=409, error=f"未能登记补交材料：{exc}")
    return web.Response(status=303, headers={"Location": f"/applications/{quote(number, safe='')}?done=supplemented"})


def setup(app: web.Application) -> None:
    app.router.add_post("/applications/{number}/supplement", record)
