"""What kind of Sanji folder a path is, and refusals that say so (issue 14 item 11).

`hub status` on a station's folder used to say "run sanji hub init" there, and following that advice
left a half-made hub inside the station. Each command now names what the folder actually holds and
what to type instead, and `init` makes a folder whole or not at all.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from replica.errors import Refused

HUB_DB = "hub.db"
# A hub whose store is PostgreSQL keeps no hub.db: this settings file names its database instead.
HUB_DATABASE = "hub-database.json"
NODE_DB = "node.db"
DEMO_MARKER = ".sanji-demo"  # written by `sanji demo` at the root of its district


def kind(folder: Path) -> str:
    """``hub``, ``station``, ``demo``, ``missing``, ``empty`` or ``other``."""
    if not folder.exists():
        return "missing"
    if not folder.is_dir():
        return "other"
    if (folder / HUB_DB).exists() or (folder / HUB_DATABASE).exists():
        return "hub"
    if (folder / NODE_DB).exists():
        return "station"
    if (folder / DEMO_MARKER).exists():
        return "demo"
    return "other" if any(folder.iterdir()) else "empty"


def _is(folder: Path, what: str) -> str:
    """What the folder holds, and the command that fits it, in one clause."""
    if what == "hub":
        return f"{folder} 是区局（hub）文件夹：请用 sanji hub … {folder}"
    if what == "station":
        return f"{folder} 是站点（node）文件夹：请用 sanji node … {folder}"
    if what == "demo":
        return f"{folder} 是 sanji demo 的演示区：区局在 {folder / 'hub'}，各站点在它旁边的子文件夹里"
    if what == "missing":
        return f"{folder} 不存在：请检查路径"
    if what == "empty":
        return f"{folder} 是空文件夹"
    return f"{folder} 里不是 Sanji 的数据"


def need_hub(folder: Path) -> None:
    """Refuse, naming what the folder is, unless it holds a hub."""
    what = kind(folder)
    if what == "hub":
        return
    advice = "；新建区局请运行 sanji hub init 加一个新文件夹" if what in ("missing", "empty") else ""
    raise Refused(f"这里没有区局：{_is(folder, what)}{advice}", code="not_a_hub")


def need_station(folder: Path) -> None:
    """Refuse, naming what the folder is, unless it holds a station."""
    what = kind(folder)
    if what == "station":
        return
    advice = "；新建站点请运行 sanji node init 加一个新文件夹" if what in ("missing", "empty") else ""
    raise Refused(f"这里没有站点：{_is(folder, what)}{advice}", code="not_a_station")


def need_new(folder: Path, making: str) -> None:
    """Refuse to make ``making`` anywhere but a new or empty folder: nothing is mixed into another's."""
    what = kind(folder)
    if what in ("missing", "empty"):
        return
    raise Refused(f"不能在这里新建{making}：{_is(folder, what)}。请换一个新的空文件夹", code="folder_not_empty")


@contextlib.contextmanager
def made_whole(folder: Path) -> Iterator[None]:
    """Remove what the block made in ``folder`` if it fails, so a failed `init` leaves nothing behind.

    Only a folder that was missing or empty is ever used (see :func:`need_new`), so undoing means
    removing the folder, or its new contents if it was there already."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
