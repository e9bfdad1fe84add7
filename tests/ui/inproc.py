"""A hub and a station in one process, for the aiohttp-level tests: built with the library itself
(no HTTP, no clock tricks), so a test can set up conflicts and quarantine in a few lines."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from hub import enrolment
from hub.feed import feed_page
from hub.ingest import ingest_frame
from hub.passwords import hash_password
from hub.service import Hub
from node import commands, staff_schema, uplink
from node.enrolment import _pin
from node.station import Station
from protocol.document import sign_document
from tests.ui.conftest import ITEM_IMMEDIATE, make_id

OPERATOR, PASSWORD = "liqiang", "correct-horse-pw"
DEAD_HUB = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused at once


class Pair:
    def __init__(self, root: Path, *, database: str | None = None) -> None:
        self.root = root
        self.hub = Hub.create(root / "hub", district="360802", name="吉州区", catalogue=None, database=database)
        with self.hub.store.transaction():
            self.hub.store.add_operator(OPERATOR, hash_password(PASSWORD), self.hub.clock())
        enrolment.register(self.hub, station="360802-T01", name="兴桥镇便民服务中心", tier="township")
        token = enrolment.register(
            self.hub, station="360802-T01-01", name="兴桥镇岗塘村便民服务站", tier="village", parent="360802-T01"
        )
        self.st = Station(root / "village", create=True)
        answer = enrolment.redeem(self.hub, token=token, sign_pub=self.st.keys.sign_pub, seal_pub=self.st.keys.seal_pub)
        _pin(self.st, answer, token, DEAD_HUB, online=True)
        self.serial = 0

    def accept(self, item: str = ITEM_IMMEDIATE, **kw: Any) -> dict[str, Any]:
        self.serial += 1
        person = {
            "name": f"测试申请人{self.serial:02d}",
            "id_number": make_id(self.serial),
            "phone": f"139{self.serial:08d}",
        }
        item_ = self.st.catalogue().catalogue.items[item]
        out = commands.accept(
            self.st,
            commands.Application(
                item=item,
                name=person["name"],
                id_number=person["id_number"],
                phone=person["phone"],
                submitted=[m.name for m in item_.materials if m.required and m.name not in kw.get("deferred", ())],
                **{"address": "兴桥镇岗塘村3组", **kw},  # items needing on-site inspection need one
            ),
        )
        return {**out, **person}

    def push(self) -> None:
        uplink.build_outbox(self.st)
        acks = [ingest_frame(self.hub, f, source="test") for _, f in uplink.unsettled(self.st)]
        doc = sign_document(
            "acks",
            {"acks": [a.to_wire() for a in acks]},
            signer=self.hub.hub_id,
            recipient=self.st.code,
            signing_key=self.hub.keys.sign,
        )
        uplink.read_acks(self.st, doc)

    def pull(self) -> None:
        page = feed_page(self.hub, self.st.code, after=self.st.meta.int("feed_cursor"), catalogue_version=1)
        uplink.apply_feed(self.st, page)

    def conflict(self) -> str:
        """The demo's story: the station asks for materials while the hub moves the file to review."""
        from hub.operations import transition

        number = str(self.accept()["number"])
        self.push()
        commands.transition(self.st, number, "supplement_requested", "请补充户口簿复印件")
        # Later by the clock, as in the demo: within one millisecond the note would go to the station
        # (equal stamps fall to the origin code), and the tests name which side the merge kept.
        time.sleep(0.005)
        transition(self.hub, number, "under_review", "转入审查")
        self.push()
        return number

    def quarantine(self) -> str:
        """A village writing a decision it has no right to: authentic, so held rather than refused."""
        number = str(self.accept()["number"])
        app_id = commands.find(self.st, number)
        with self.st.transaction():
            self.st.write_unchecked("application", app_id, {"decision": "准予（越权）"}, {})
        self.push()
        return number

    def close(self) -> None:
        self.st.close()
        self.hub.close()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


async def login(client: Any, user: str = OPERATOR, password: str = PASSWORD) -> Any:
    """Sign in to the dashboard through its login form (an aiohttp ``TestClient``); returns the answer."""
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={"user": user, "password": password, "csrf": csrf_of(await form.text()), "next": "/"},
        allow_redirects=False,
    )


async def window_sign_in(client: Any, user: str, password: str, then: str = "/") -> Any:
    """Sign in at the station's window through its form (an aiohttp ``TestClient``); returns the answer
    (303 to ``then`` when signed in)."""
    page = await client.get(f"/signin?next={then}")
    return await client.post(
        "/signin",
        data={"csrf": csrf_of(await page.text()), "user": user, "password": password, "next": then},
        allow_redirects=False,
    )


async def post_account_form(client: Any, action: str, **form: str) -> Any:
    """A form of the window's 修改密码 page posted to ``action`` as the signed-in browser (the cookie of
    the latest sign-in) sends it, with the page's CSRF token."""
    page = await client.get("/account/password")
    assert page.status == 200
    return await client.post(action, data={"csrf": csrf_of(await page.text()), **form}, allow_redirects=False)


def staff_hash(pair: Pair, user: str = "zhangsan") -> str:
    """The password hash the station holds for ``user``."""
    found = staff_schema.account(pair.st.conn, user)
    assert found is not None
    return found.password_hash
