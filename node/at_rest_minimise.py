"""Minimisation: a delivered application's personal values are cut down to their masks once the hub
has long held them (issue 16).

When an application is delivered and every change of ours about it has been receipted by the hub at
least ``minimise_after_days`` ago (30 unless ``DIR/staff.json`` says ``{"minimise_after_days": N}``),
the station keeps only the masks: each sealed value of the application and of its tasks becomes
``[mask, None]`` in ``changes``, (re-folded) ``records`` and ``conflicts``.
No key is needed (nothing is opened), so the nightly job does it unattended. The plaintext digests
stay, so the station's Merkle leaves still agree with the hub's. The hub keeps the record of truth.

The changes' hub seals (``changes.hub_seal``) stay: they are sealed to the hub's X25519 key, so the
station, and a thief with its folder and its staff's passwords, can open nothing in them. They are what
lets a repair re-send a minimised change whole to a hub restored from a backup older than the change
(the hub opens them with its current or a retired sealing key, ``hub/seal_keys.py``). A change
minimised before its seal was kept (or never given one) is re-sent with its masks alone; the hub holds
it as ``minimised``, saying where the values are still kept (``hub/sealed_changes.py``).

Only at a station that seals at rest; a station without a data key keeps what it has, as before.
"""

from __future__ import annotations

import json
from pathlib import Path

from node import at_rest, at_rest_conflicts
from node.station import Station
from protocol.codec import pack_map, unpack
from replica import refold
from replica.errors import Refused
from sync import sealed_value
from sync.model import PERSONAL
from sync.outbox import BatchState

DEFAULT_DAYS = 30
SETTINGS_FILE = "staff.json"
MAX_DAYS = 3650


def days_for(folder: Path) -> int:
    path = folder / SETTINGS_FILE
    if not path.exists():
        return DEFAULT_DAYS
    try:
        value = json.loads(path.read_text("utf-8")).get("minimise_after_days", DEFAULT_DAYS)
    except (ValueError, AttributeError, OSError):
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DAYS:
        raise Refused(
            f"{path} 中的 minimise_after_days 应为 1 到 {MAX_DAYS} 之间的整数"
            "（办结送达并经区局回执多少天后只保留遮蔽信息）"
            " (minimise_after_days must be a whole number of days)",
            code="bad_settings",
        )
    return value


def _receipted_long_ago(st: Station, app_id: str, limit_ms: int) -> bool:
    """Every change of ours about ``app_id`` lies in a batch the hub receipted before ``limit_ms``."""
    ours = st.conn.execute(
        "SELECT epoch, seq FROM changes WHERE application=? AND origin=?", (app_id, st.code)
    ).fetchall()
    for epoch, seq in ours:
        row = st.conn.execute(
            "SELECT 1 FROM outbox WHERE epoch=? AND first_seq<=? AND last_seq>=? AND state=? AND receipted_ms<?",
            (epoch, seq, seq, BatchState.RECEIPTED.value, limit_ms),
        ).fetchone()
        if row is None:
            return False
    return True


def _cut(value: object) -> object:
    if sealed_value.is_sealed(value):
        assert isinstance(value, bytes)
        return sealed_value.encode(sealed_value.decode(value)[0], None)
    return value


def minimise(st: Station, days: int | None = None) -> int:
    """Cut every eligible application down to masks; returns how many were cut."""
    if not at_rest.has_data_key(st.conn):
        return 0
    limit = st.clock() - (days or days_for(st.folder)) * 86_400_000
    done = 0
    candidates = st.conn.execute("SELECT id FROM applications WHERE status='delivered'").fetchall()
    for (app_id,) in candidates:
        keys: set[tuple[str, str]] = set()
        with st.transaction():
            if not _receipted_long_ago(st, str(app_id), limit):
                continue
            rows = st.conn.execute(
                "SELECT rowid, entity, rid, fields FROM changes"
                " WHERE application=? AND entity IN ('application', 'task')",
                (app_id,),
            ).fetchall()
            for rowid, entity, rid, raw in rows:
                fields = unpack(bytes(raw))
                assert isinstance(fields, dict)
                personal = PERSONAL.get(str(entity), frozenset())
                cut = {k: (_cut(v) if k in personal else v) for k, v in fields.items()}
                if cut != fields:
                    st.conn.execute("UPDATE changes SET fields=? WHERE rowid=?", (pack_map(cut), rowid))
                    keys.add((str(entity), str(rid)))
            at_rest_conflicts.cut(st.conn, sorted(keys))  # the same values, kept beside the fold
        if keys:
            refold.fix(st.records, sorted(keys))
            done += 1
    return done
