"""The tracking code on the 受理通知书: the code itself and a QR code of the hub's tracking address;
and the 受理人 the notice names (issue 16: the signed-in staff member who accepted).

Drawn at acceptance (``node/commands.py``), the code stays in the accepting station's own copy of the
application (every other copy holds ""); the notice reads it from there, so a reprint carries the same
code. The QR code is made here with
segno, as inline SVG, offline.

The address. The hub's public tracking page may not be at the address the station syncs with (a
station may reach the hub on the district's private network, or by USB only; the public page may sit
behind a reverse proxy at a sub-path). So ``DIR/track.json`` may name it as ``{"base_url":
"https://zwfw.example.cn/sanji"}``; without it the station uses the hub address it syncs with. With
neither (a USB-only station with nothing configured) the notice prints the code without a QR code.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from urllib.parse import quote

import segno
from markupsafe import Markup

from node.station import Station
from sync.tracking import FIELD

SETTINGS_FILE = "track.json"


@dataclass(frozen=True)
class TrackNotice:
    code: str  # "" for an application accepted without one (back-entry, or before tracking existed)
    url: str  # "" when the station knows no public address for the page
    qr_svg: Markup  # "" with no url


def base_url(st: Station) -> str:
    path = st.folder / SETTINGS_FILE
    if path.exists():
        configured = str(json.loads(path.read_text("utf-8")).get("base_url", ""))
        if configured:
            return configured.rstrip("/")
    return st.meta.text("hub_url").rstrip("/")


def code_of(st: Station, app_id: str) -> str:
    value = st.records.values("application", app_id).get(FIELD, "")
    return value if isinstance(value, str) else ""


def track_url(base: str, code: str) -> str:
    return f"{base}/track/{quote(code, safe='')}"


def qr_svg(url: str) -> Markup:
    """The address as an inline SVG QR code. Medium error correction: a notice gets folded and stamped.
    segno escapes the title it writes; the SVG has no other text."""
    qr = segno.make(url, error="m", micro=False)
    svg = qr.svg_inline(scale=4, border=4, title="办件查询二维码", svgclass="track-qr", lineclass=None)
    return Markup(svg)  # segno's own markup, built from the URL we made


def staff_name(conn: sqlite3.Connection, user: str) -> str:
    """How the notice and the history name a staff member: 张三（zhangsan）, or the user name alone
    when the account is not held here (a change another station's person made)."""
    if not user:
        return ""
    row = conn.execute("SELECT name FROM staff WHERE user=?", (user,)).fetchone()
    return f"{row[0]}（{user}）" if row is not None else user


def accepted_by(st: Station, app_id: str) -> str:
    """受理人: who wrote the acceptance itself at this station (its first change to the application)."""
    row = st.conn.execute(
        "SELECT author FROM changes WHERE entity='application' AND rid=? AND origin=? ORDER BY epoch, seq LIMIT 1",
        (app_id, st.code),
    ).fetchone()
    return staff_name(st.conn, str(row[0])) if row is not None else ""


def notice(st: Station, app_id: str) -> TrackNotice:
    code = code_of(st, app_id)
    base = base_url(st)
    if not code or not base:
        return TrackNotice(code, "", Markup(""))
    url = track_url(base, code)
    return TrackNotice(code, url, qr_svg(url))
