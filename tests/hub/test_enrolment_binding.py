"""An enrolment file is bound to its hub's root (issue 21, row 2): a file alone enrols nobody, a file and
a token that disagree are refused with a reason, and a file re-signed by another hub, its MAC
recomputed with the real token, still does not lead to the root the token names."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import enrolment, keyring
from hub.service import Hub
from node.enrolment import init_from_file
from protocol.codec import pack, unpack
from protocol.enrolment import ENROLMENT_MAGIC, answer_mac, parse_token, token_key
from replica.errors import Refused
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL


def file_for(
    world: World, tmp_path: Path, code: str = "T1-V1", url: str = "http://hub.example:8700"
) -> tuple[Path, str]:
    if world.hub.store.station("T1") is None:
        world.register("T1", "township")
    token = world.register(code, "village", "T1")
    path = tmp_path / f"{code}.sje"
    path.write_bytes(enrolment.enrolment_file(world.hub, code, token, url))
    return path, token


def test_the_file_carries_no_token_and_needs_the_slip(world: World, tmp_path: Path) -> None:
    path, token = file_for(world, tmp_path)
    data = path.read_bytes()
    assert token.encode() not in data and parse_token(token).secret.encode() not in data
    with pytest.raises(Refused, match="登记单上的令牌"):
        init_from_file(tmp_path / "v1", path)
    assert not (tmp_path / "v1").exists()
    out = init_from_file(tmp_path / "v1", path, token=token)
    assert out["hub_fingerprint"] == enrolment.fingerprint_of(world.hub)


def test_a_file_and_a_token_for_another_station_disagree(world: World, tmp_path: Path) -> None:
    path, _ = file_for(world, tmp_path, "T1-V1")
    _, other = file_for(world, tmp_path, "T1-V2")
    with pytest.raises(Refused, match="令牌不符") as err:
        init_from_file(tmp_path / "v1", path, token=other)
    assert err.value.code == "mac_mismatch"
    assert not (tmp_path / "v1").exists()


def test_a_token_from_another_hub_is_refused_by_its_fingerprint(world: World, tmp_path: Path) -> None:
    path, _ = file_for(world, tmp_path)
    other_hub = Hub.create(tmp_path / "other", district="360802", name="另一区局", catalogue=None)
    try:
        enrolment.register(other_hub, station="T1", name="镇", tier="township")
        foreign = enrolment.register(other_hub, station="T1-V1", name="村", tier="village", parent="T1")
    finally:
        other_hub.close()
    with pytest.raises(Refused, match="根密钥指纹与令牌不符") as err:
        init_from_file(tmp_path / "v1", path, token=foreign)
    assert err.value.code == "fingerprint_mismatch"


def test_a_file_re_signed_by_a_rogue_with_the_mac_recomputed_is_refused(world: World, tmp_path: Path) -> None:
    """The issue's attack, with the attacker holding the token too: the rogue hub signs the document,
    ships its own key history, and recomputes the MAC with the real token's key."""
    path, token = file_for(world, tmp_path)
    rogue = Hub.create(tmp_path / "rogue", district="360802", name="假冒区局", catalogue=None)
    try:
        enrolment.register(rogue, station="T1", name="镇", tier="township")
        enrolment.register(rogue, station="T1-V1", name="村", tier="village", parent="T1")
        doc = enrolment.enrolment_document(rogue, "T1-V1", hub_url="http://rogue.example")
        real = unpack(path.read_bytes()[len(ENROLMENT_MAGIC) :])
        assert isinstance(real, dict)
        for keys in (keyring.bundle(rogue), {**keyring.bundle(rogue), "roots": real["keys"]["roots"]}):  # type: ignore[index]
            forged = dict(real, enrollment=doc, keys=keys, mac=answer_mac(token_key(parse_token(token)), b"", doc))
            bad = tmp_path / "forged.sje"
            bad.write_bytes(ENROLMENT_MAGIC + pack(forged))
            with pytest.raises(Refused, match="拒绝"):
                init_from_file(tmp_path / "v1", bad, token=token)
            assert not (tmp_path / "v1").exists()
    finally:
        rogue.close()
    # The genuine file still works with the same token afterwards: nothing was consumed or pinned.
    assert init_from_file(tmp_path / "v1", path, token=token)["station"] == "T1-V1"


def test_the_hub_address_comes_from_the_signed_document(world: World, tmp_path: Path) -> None:
    path, token = file_for(world, tmp_path, url="http://hub.example:8700")
    raw = unpack(path.read_bytes()[len(ENROLMENT_MAGIC) :])
    assert isinstance(raw, dict)
    raw["hub_url"] = "http://rogue.example"  # the unsigned copy is only a label
    path.write_bytes(ENROLMENT_MAGIC + pack(raw))
    init_from_file(tmp_path / "v1", path, token=token)
    from node.station import Station

    st = Station(tmp_path / "v1")
    try:
        assert st.meta.text("hub_url") == "http://hub.example:8700"
    finally:
        st.close()


def test_an_old_format_file_is_refused_with_what_to_do(world: World, tmp_path: Path) -> None:
    _, token = file_for(world, tmp_path)
    old = tmp_path / "old.sje"
    old.write_bytes(b"SJE1" + pack({"token": token}))
    with pytest.raises(Refused, match="旧格式"):
        init_from_file(tmp_path / "v1", old, token=token)
