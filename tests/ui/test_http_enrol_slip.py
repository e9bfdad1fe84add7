"""The dashboard's enrolment slip shows what `sanji hub enroll` prints: the token, the hub root key's
fingerprint (which the token carries and the station checks) and the token as a QR code."""

from __future__ import annotations

import re
from typing import Any

from tests.ui.inproc import Pair, csrf_of, login


async def test_the_enrolment_slip_shows_the_fingerprint_and_a_qr_code(hub_client: Any, pair: Pair) -> None:
    await login(hub_client)
    page = await hub_client.get("/stations")
    resp = await hub_client.post(
        "/stations/enrol",
        data={
            "csrf": csrf_of(await page.text()),
            "code": "360802-T01-07",
            "name": "兴桥镇七村便民服务站",
            "tier": "village",
            "parent": "360802-T01",
            "hub_url": "http://127.0.0.1:8700",
        },
    )
    html = await resp.text()
    assert resp.status == 200, html[:500]
    token = re.search(r'<code id="token">([^<]+)</code>', html)
    fingerprint = re.search(r'<code id="fingerprint">([^<]+)</code>', html)
    assert token and fingerprint
    assert fingerprint.group(1).replace("-", "") in token.group(1).replace("-", "")
    assert re.search(r'<td id="token-qr"><svg [^>]*class="segno"', html), "the QR code is inline SVG"
    assert "--enrollment 文件 --token 令牌" in html
