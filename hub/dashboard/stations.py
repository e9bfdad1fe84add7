"""Dashboard pages about stations: the overview, the station tree with enrolment and revocation, one
station's sync health, and the audit trail.

Every page is read and rendered in the read model's thread (``shown``); enrolment and revocation write
on the loop, in their own transaction, and show their page once that has committed."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web
from markupsafe import Markup

from hub import enrolment, slip
from hub.charts import sync_history
from hub.dashboard import data
from hub.dashboard.auth import audit, hub_of, operator, page, redirect, refuse, refused, session_of, shown
from hub.reads import ReadHub
from present.webui import TIER_NAMES, read_form
from replica.errors import Refused

NOTICES = {
    "revoked": "已吊销该站点的密钥，其后续上传将被拒收。",
}


@operator
async def overview(request: web.Request) -> web.StreamResponse:
    return await shown(request, lambda hub: page(request, hub, "overview.html", o=data.overview(hub)))


@operator
async def live(request: web.Request) -> web.StreamResponse:
    """The part of the overview that refreshes itself (dashboard.js fetches it every 20 s)."""
    return await shown(request, lambda hub: page(request, hub, "_overview_live.html", o=data.overview(hub)))


async def _stations_page(
    request: web.Request,
    *,
    status: int = 200,
    error: str = "",
    form: dict[str, str] | None = None,
    enrolled: dict[str, str] | None = None,
) -> web.StreamResponse:
    return await shown(request, lambda hub: _render_stations(request, hub, status, error, form, enrolled))


def _render_stations(
    request: web.Request,
    hub: ReadHub,
    status: int,
    error: str,
    form: dict[str, str] | None,
    enrolled: dict[str, str] | None,
) -> web.Response:
    rows = data.stations(hub)
    parents = [r for r in rows if r["tier"] in ("township", "street")]
    default_url = f"{request.scheme}://{request.host}"
    return page(
        request,
        hub,
        "stations.html",
        status=status,
        tree=data.tree(rows),
        parents=parents,
        tiers=[(t, TIER_NAMES[t]) for t in enrolment.STATION_TIERS],
        error=error,
        form=form or {"code": "", "name": "", "tier": "village", "parent": "", "hub_url": default_url},
        enrolled=enrolled,
        notice=NOTICES.get(request.query.get("done", ""), ""),
    )


@operator
async def stations_page(request: web.Request) -> web.StreamResponse:
    return await _stations_page(request)


@operator
async def enrol(request: web.Request) -> web.StreamResponse:
    """Register (or re-register) a station and show its one-time token, once."""
    hub = hub_of(request)
    form = await read_form(request)
    values = {k: str(form.get(k, "")).strip() for k in ("code", "name", "tier", "parent", "hub_url")}
    problems = []
    if not values["code"]:
        problems.append("请填写站点编码")
    if not values["name"]:
        problems.append("请填写站点名称")
    if values["tier"] not in enrolment.STATION_TIERS:
        problems.append("请选择层级")
    if values["tier"] in ("village", "community") and not values["parent"]:
        problems.append("村/社区站点须选择所属镇（街道）")
    if values["tier"] in ("township", "street"):
        values["parent"] = ""
    if problems:
        return await _stations_page(request, status=400, error="；".join(problems) + "。", form=values)
    try:
        token = enrolment.register(
            hub, station=values["code"], name=values["name"], tier=values["tier"], parent=values["parent"]
        )
    except Refused as exc:
        return await _stations_page(request, status=400, error=f"登记未成功：{exc}", form=values)
    with hub.store.transaction():
        audit(request, "enrol", values["code"], detail=f"{values['name']} {values['tier']} {values['parent']}")
    # The slip: the station compares the fingerprint with what `node init` pins; the QR code is the token.
    return await _stations_page(
        request,
        enrolled={
            "code": values["code"],
            "name": values["name"],
            "token": token,
            "hub_url": values["hub_url"],
            "fingerprint": enrolment.fingerprint_of(hub),
            "qr": Markup(slip.token_qr(token).svg_inline(scale=4)),
        },
    )


@operator
async def enrolment_file(request: web.Request) -> web.StreamResponse:
    """The file an offline station starts from. The token travels in the POST body, never in a URL."""
    hub = hub_of(request)
    code = request.match_info["code"]
    form = await read_form(request)
    token = str(form.get("token", ""))
    found = hub.store.token(enrolment.token_hash(token)) if token else None
    if found is None or found[0] != code or found[3] is not None or found[2] < hub.clock():
        return await refused(request, 400, "该令牌无效、已使用或已过期，无法生成登记文件；请重新登记站点以获取新令牌。")
    body = enrolment.enrolment_file(hub, code, token, str(form.get("hub_url", "")).strip())
    with hub.store.transaction():
        audit(request, "enrolment_file", code)
    return web.Response(
        body=body,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{code}.sje"', "Cache-Control": "no-store"},
    )


@operator
async def revoke(request: web.Request) -> web.StreamResponse:
    hub = hub_of(request)
    code = request.match_info["code"]
    form = await read_form(request)
    reason = str(form.get("reason", "")).strip()
    with hub.store.transaction():
        known = hub.store.revoke(code)
        if known:
            hub.store.alert(
                "revoked",
                code,
                f"运维人员 {session_of(request).user} 吊销" + (f"：{reason}" if reason else ""),
                hub.clock(),
            )
            audit(request, "revoke", code, reason=reason)
    if not known:  # nothing was written; the page is shown once the transaction has ended
        return await refused(request, 404, f"没有登记编码为 {code} 的站点。")
    hub.forget_tiers()
    return redirect(f"/stations/{code}?done=revoked")


@operator
async def station_page(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]

    def build(hub: ReadHub) -> web.Response:
        detail = data.station_detail(hub, code)
        if detail is None:
            return refuse(request, hub, 404, f"没有登记编码为 {code} 的站点。")
        return page(
            request,
            hub,
            "station.html",
            d=detail,
            chart=sync_history(detail["history"]),
            notice=NOTICES.get(request.query.get("done", ""), ""),
        )

    return await shown(request, build)


@operator
async def audit_page(request: web.Request) -> web.StreamResponse:
    return await shown(
        request, lambda hub: page(request, hub, "audit.html", rows=[asdict(r) for r in hub.reads.audit_trail(300)])
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/", overview)
    app.router.add_get("/live", live)
    app.router.add_get("/stations", stations_page)
    app.router.add_post("/stations/enrol", enrol)
    app.router.add_get("/stations/{code}", station_page)
    app.router.add_post("/stations/{code}/enrolment-file", enrolment_file)
    app.router.add_post("/stations/{code}/revoke", revoke)
    app.router.add_get("/audit", audit_page)
