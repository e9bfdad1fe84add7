"""The window's 重置同事密码 form on accounts the hub made (issue 16), at the HTTP level.

A hub-made administrator resets a hub-made colleague through the window: the signed ``staff`` change
waits in the outbox authored by the administrator, and after a sync the hub's account has the new hash
(the hub side at length: tests/hub/test_staff_reset_up.py). An administrator made at the station, whom
the hub does not know, is shown the refusal the hub would hold the change with (``staff_not_self``)
and nothing changes: not the colleague's hash, nor their copy of the data key, nor the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub import quarantine_review, staff
from node import staff_schema
from node.server import create_app
from protocol.codec import unpack
from sync.staff_change import STAFF_ENTITY
from sync.staff_password import ScryptParams, check_password
from tests.conftest import FakeClock
from tests.node.staff_helpers import ADMIN_PASSWORD, with_staff
from tests.ui.inproc import Pair
from tests.ui.test_http_staff_reset import post_reset, sign_in

pytestmark = pytest.mark.slow

CHEAP = ScryptParams(n=2**10, r=8, p=1)  # the hub's hashes; the window's reset uses the real cost
WANG, LISI = "wang-admin-pw-1", "lisi-first-pw"
NEW = "lisi-reset-in-window"


@pytest.fixture
async def client(pair: Pair) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(pair.root / "village", 3600.0, clock=FakeClock())
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def hub_made(pair: Pair, *accounts: tuple[str, str, str]) -> None:
    """``hub add-staff`` for each (user, role, password), then the station's sync brings them."""
    for user, role, password in accounts:
        staff.add_staff(
            pair.hub, station=pair.st.code, user=user, name=f"名{user}", role=role, password=password, params=CHEAP
        )
    pair.pull()


def account(pair: Pair, user: str) -> staff_schema.Account:
    found = staff_schema.account(pair.st.conn, user)
    assert found is not None
    return found


async def test_a_hub_made_administrator_resets_a_hub_made_colleague_and_the_hub_takes_the_new_hash(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    hub_made(pair, ("wang", "admin", WANG), ("lisi", "staff", LISI))
    code = pair.st.code
    before = pair.hub.store.staff_account(code, "lisi")
    assert before is not None and check_password(LISI, before.password_hash)
    assert await sign_in(client, "wang", WANG) == 303
    page = await (await client.get("/account/password")).text()
    assert "重置同事密码" in page and 'value="lisi"' in page
    seq = pair.st.meta.int("seq")

    resp = await post_reset(client, user="lisi", current=WANG, new=NEW, again=NEW)
    assert resp.status == 303 and resp.headers["Location"] == "/account/password?reset=up&who=lisi"
    assert pair.st.meta.int("seq") == seq + 1, "one change waits in the outbox"
    entity, rid, fields, author = pair.st.conn.execute(
        "SELECT entity, rid, fields, author FROM changes WHERE origin=? AND seq=?", (code, seq + 1)
    ).fetchone()
    assert (entity, rid, author) == (STAFF_ENTITY, f"{code}/lisi", "wang")
    written = unpack(bytes(fields))
    assert isinstance(written, dict) and check_password(NEW, written["password_hash"])
    assert NEW.encode() not in bytes(fields), "a hash travels, never the password"
    unsynced = pair.hub.store.staff_account(code, "lisi")
    assert unsynced is not None and unsynced.password_hash == before.password_hash, "the hub waits for the sync"

    pair.push()
    after = pair.hub.store.staff_account(code, "lisi")
    assert after is not None and after.version > before.version
    assert check_password(NEW, after.password_hash) and not check_password(LISI, after.password_hash)
    assert quarantine_review.quarantine_rows(pair.hub) == [], "authentic and authorised: applied, nothing held"
    pair.pull()  # the echo keeps the copy of the data key the reset wrapped for lisi
    assert await sign_in(client, "lisi", LISI) == 401
    assert await sign_in(client, "lisi", NEW) == 303


async def test_a_station_made_administrator_is_shown_the_refusal_and_nothing_changes(
    client: TestClient[Any, Any], pair: Pair
) -> None:
    with_staff(pair.st.db, pair.st.code)  # "admin", made here: the hub does not know them
    hub_made(pair, ("lisi", "staff", LISI))
    before = account(pair, "lisi")
    seq = pair.st.meta.int("seq")
    assert await sign_in(client, "admin", ADMIN_PASSWORD) == 303
    assert 'value="lisi"' in await (await client.get("/account/password")).text()

    resp = await post_reset(client, user="lisi", current=ADMIN_PASSWORD, new=NEW, again=NEW)
    text = await resp.text()
    assert resp.status == 400 and "账户 lisi 的密码只能由本人或本站管理员修改" in text and "admin" in text
    after = account(pair, "lisi")
    assert after.password_hash == before.password_hash and after.wrapped_key == before.wrapped_key
    assert after.grant_key == before.grant_key and check_password(LISI, after.password_hash)
    assert pair.st.meta.int("seq") == seq, "nothing written to the outbox"
    assert await sign_in(client, "lisi", NEW) == 401
    assert await sign_in(client, "lisi", LISI) == 303
