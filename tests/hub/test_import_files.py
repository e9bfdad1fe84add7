"""`sanji hub import` looks at each carried file before reading it: links are refused, not followed;
anything larger than the largest frame the protocol accepts is refused unread; the rest of the stick
is still imported, and every refusal is listed with its reason and kept for the operator."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from node import usb_files
from protocol.limits import FILE_MAX_BYTES
from replica import carried_files
from sanji.cli import main
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("hub_backend")  # every test on SQLite and on PostgreSQL

IMMEDIATE_ITEM = "360802-0001"


def _import(capsys: pytest.CaptureFixture[str], hub_dir: Path, *paths: Path) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["hub", "import", str(hub_dir), *map(str, paths), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _reasons(doc: dict[str, object]) -> dict[str, str]:
    rejected = doc["rejected"]
    assert isinstance(rejected, list)
    return {Path(r["file"]).name: r["reason"] for r in rejected}


@pytest.fixture
def stick(make_world: Callable[..., World], tmp_path: Path) -> tuple[World, Path]:
    """A village's honest export (two applications) on a stick, the hub folder closed for the CLI."""
    w = make_world(("T1", "township", ""), ("T1-V1", "village", "T1"))
    v1 = w.get("T1-V1")
    w.accept(v1, IMMEDIATE_ITEM)
    w.accept(v1, IMMEDIATE_ITEM)
    usb = tmp_path / "usb"
    exported = usb_files.export(v1, usb)
    assert exported["changes"] == 2
    w.hub.close()
    return w, usb


def _batches_taken(hub_dir: Path) -> int:
    """Batches the hub took (applied or held for review: admission is not what these tests are about)."""
    from hub.service import Hub

    hub = Hub.open(hub_dir)
    try:
        return hub.store.batches_taken()
    finally:
        hub.close()


def test_links_and_oversized_files_are_refused_unread_and_the_rest_is_imported(
    stick: tuple[World, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w, usb = stick
    batches = sorted(usb.glob("*.sjb"))
    assert batches
    # A link to a genuine batch elsewhere: even pointing at something valid it is not followed.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "other.sjb").write_bytes(batches[0].read_bytes())
    (usb / "link.sjb").symlink_to(elsewhere / "other.sjb")
    (usb / "linked-folder").symlink_to(elsewhere, target_is_directory=True)
    (usb / "to-the-hub-keys").symlink_to(w.root / "hub")
    # Sparse, so it costs no disk; one byte over the cap. Reading it would be refused only afterwards.
    with (usb / "huge.sjb").open("wb") as f:
        f.truncate(FILE_MAX_BYTES + 1)
    os.mkfifo(usb / "pipe.sjb")  # reading a pipe would wait for a writer forever

    code, doc = _import(capsys, w.root / "hub", usb)

    assert code == 2
    assert doc["accepted"] == len(batches) and doc["duplicates"] == 0
    reasons = _reasons(doc)
    assert set(reasons) == {"link.sjb", "linked-folder", "to-the-hub-keys", "huge.sjb", "pipe.sjb"}
    for name in ("link.sjb", "linked-folder", "to-the-hub-keys"):
        assert reasons[name].startswith("symlink: ") and "符号链接" in reasons[name]
    assert reasons["huge.sjb"].startswith("too_large: ") and "最大批次" in reasons["huge.sjb"]
    assert str(FILE_MAX_BYTES + 1) in reasons["huge.sjb"]
    assert reasons["pipe.sjb"].startswith("not_a_file: ") and "不是普通文件" in reasons["pipe.sjb"]
    assert _batches_taken(w.root / "hub") == len(batches)
    # The operator sees the refusals too, not only whoever ran the command.
    from hub.service import Hub

    hub = Hub.open(w.root / "hub")
    try:
        total, last = hub.store.rejections(20)
        assert total == 5
        assert {str(r["source"]) for r in last} == {f"file:{n}" for n in reasons}
    finally:
        hub.close()


def test_a_symlink_named_on_the_command_line_is_refused(
    stick: tuple[World, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w, usb = stick
    link = tmp_path / "usb-link"
    link.symlink_to(usb, target_is_directory=True)
    batch = sorted(usb.glob("*.sjb"))[0]
    file_link = tmp_path / "one.sjb"
    file_link.symlink_to(batch)

    code, doc = _import(capsys, w.root / "hub", link, file_link)

    assert code == 2 and doc["accepted"] == 0
    assert set(_reasons(doc)) == {"usb-link", "one.sjb"}
    assert _batches_taken(w.root / "hub") == 0
    # The real folder, named as it is, goes in whole.
    code, doc = _import(capsys, w.root / "hub", usb)
    assert code == 0 and doc["rejected"] == [] and _batches_taken(w.root / "hub") == 1


def test_the_size_is_checked_before_a_byte_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_read = os.read

    def spy(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(carried_files.os, "read", spy)
    big = tmp_path / "big.sjb"
    with big.open("wb") as f:
        f.truncate(1001)
    with pytest.raises(carried_files.CarriedFileRefused) as refused:
        carried_files.read(big, max_bytes=1000)
    assert refused.value.refusal.code == "too_large" and reads == []
    fits = tmp_path / "fits.sjb"
    fits.write_bytes(b"x" * 1000)
    assert carried_files.read(fits, max_bytes=1000) == b"x" * 1000


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"hub keys")
    entry = tmp_path / "batch.sjb"
    entry.write_bytes(b"a batch")
    files, refused = carried_files.collect([tmp_path])
    assert entry in files and refused == []
    entry.unlink()
    entry.symlink_to(target)  # between the listing and the read
    with pytest.raises(carried_files.CarriedFileRefused) as exc:
        carried_files.read(entry)
    assert exc.value.refusal.code == "symlink"


def test_a_missing_path_is_refused_before_anything_is_imported(
    stick: tuple[World, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w, usb = stick
    capsys.readouterr()
    code = main(["hub", "import", str(w.root / "hub"), str(usb), str(tmp_path / "nowhere"), "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "nowhere 不存在" in err
    assert _batches_taken(w.root / "hub") == 0
