"""The data of ``bench year``: a hub holding N applications accepted over ten years at the district's
114 stations, built fast but stored exactly as ingest stores it.

How it is built, and why the result is what ingest would have produced:

- The hub's applications are made month by month, oldest first, as the stations would have written
  them: one creation change each (fields, materials, due date exactly as ``node/commands.py`` computes
  them), then the workflow's status changes by the hub (审查, 准予/不予许可, 办结) and the station's
  (出件/送达, 撤回, 补交 of a 容缺 material), each at its own time, in time order per origin and with
  gapless seqs.
- Each station's changes are cut into batches of up to ``BATCH`` changes and applied by the tail of
  ``hub/ingest.py``'s ``_ingest_verified``: the same ``RecordStore.run`` (log, fold, projection,
  conflicts), the same ``fan_out`` into the stations' feeds, a signed receipt, ``record_batch`` and the
  ingest cursor. The hub's own changes go through ``RecordStore.apply`` and ``fan_out`` as
  ``Hub.write`` does, and the hub's seq and HLC meta are left where ``Hub.write`` would leave them.
- Skipped: building, signing and opening each batch frame, and asking the admission gate per change.
  The generator writes only changes the gate admits (the same fields and moves the commands write), so
  skipping it changes no row; it is what makes a million applications take minutes, not hours.
- A share of the applications get a concurrent edit of the phone number at the station and the hub
  (a real conflict, found by the fold), and a few hundred changes sit in quarantine.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from bench import common

BATCH = 500
YEARS = 10
CLOSED_STATUSES = ("completed", "delivered")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅文辉"


def _ms(d: datetime) -> int:
    return int(d.timestamp() * 1000)


def _id_number(rng: random.Random, day: date) -> str:
    """A valid 18-digit ID number (GB 11643 check digit) of someone born well before ``day``."""
    born = date(rng.randint(1940, day.year - 19), rng.randint(1, 12), rng.randint(1, 28))
    body = f"360802{born:%Y%m%d}{rng.randint(100, 999)}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
    return body + check


class Builder:
    """Writes the hub's applications, month by month. ``skip`` is the station the real node plays."""

    def __init__(self, hub, spec: list[dict[str, str]], *, skip: str, seed: int = 20) -> None:  # type: ignore[no-untyped-def]
        from sync.acceptance import deferred_due_date, due_date

        self.hub = hub
        self.rng = random.Random(seed)
        self.version, self.cat = hub.catalogue()
        self.cal = self.cat.calendar
        self.items = sorted(self.cat.items.values(), key=lambda i: i.code)
        self.stations = [s["code"] for s in spec if s["code"] != skip]
        self.tiers = {s["code"]: s["tier"] for s in spec}
        self.seq: dict[str, int] = defaultdict(int)
        self.prev: dict[str, bytes] = defaultdict(lambda: bytes(32))
        self.counter: dict[tuple[str, date], int] = defaultdict(int)
        self._due = due_date
        self._defer_due = deferred_due_date
        self.due_cache: dict[tuple[str, date], tuple[str, str]] = {}
        self.made = 0
        self.conflicts = 0
        # record id -> field -> hlc of the version its authors saw, kept across months until the
        # application's last write (base, as a station or the hub would have stamped it)
        self.seen: dict[str, dict[str, int]] = {}

    def dues(self, item, day: date) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        key = (item.code, day)
        if key not in self.due_cache:
            self.due_cache[key] = (
                self._due(item, day, self.cal).isoformat(),
                self._defer_due(item, day, self.cal).isoformat(),
            )
        return self.due_cache[key]

    def application(self, at: datetime, now: datetime) -> list[tuple[int, str, str, dict[str, object], str]]:
        """One application's life: (ms, origin, record id, fields, entity) in time order. The base of
        each write is filled in when it is applied (what its author had seen)."""
        from replica.ids import iso_from_ms, uuid7
        from sync.numbering import application_number

        rng = self.rng
        station = rng.choice(self.stations)
        item = rng.choice(self.items)
        day = at.astimezone(common_china()).date()
        self.counter[(station, day)] += 1
        number = application_number(station, day, 1, self.counter[(station, day)])
        ms = _ms(at)
        app_id = uuid7(ms)
        due, defer_due = self.dues(item, day)
        fields: dict[str, object] = {
            "number": number,
            "station": station,
            "item": item.code,
            "catalogue_version": self.version,
            "kind": item.kind,
            "applicant_name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
            "applicant_id": _id_number(rng, day),
            "applicant_phone": f"1{rng.choice('3578')}{rng.randint(0, 999_999_999):09d}",
            "address": f"吉州区{rng.randint(1, 40)}组{rng.randint(1, 99)}号",
            "accepted_at": iso_from_ms(ms),
            "due_date": due,
            "status": "accepted",
        }
        deferrable = [m.name for m in item.materials if m.deferrable]
        deferred = deferrable[:1] if deferrable and rng.random() < 0.3 else []
        for m in item.materials:
            fields["m." + m.name] = ["deferred", defer_due] if m.name in deferred else ["submitted", ""]
        life: list[tuple[int, str, str, dict[str, object], str]] = [(ms, station, app_id, fields, "application")]
        age_days = (now - at).days
        hub = self.hub.hub_id
        t = ms
        hour = 3_600_000

        def later(days: float) -> int:
            nonlocal t
            t += int(days * 86_400_000 * rng.uniform(0.3, 1.0)) + rng.randint(1, hour)
            return t

        # Recent files are still open; a few old ones were forgotten (overdue); the rest closed.
        open_now = age_days < 45 and rng.random() < (1 - age_days / 45)
        stuck = not open_now and rng.random() < 0.004
        if deferred and not (open_now and rng.random() < 0.5):
            life.append((later(3), station, app_id, {"m." + deferred[0]: ["supplemented", ""]}, "application"))
        if item.kind == "immediate" and not open_now and not stuck:
            life.append((later(0.01), hub, app_id, {"status": "completed"}, "application"))
        elif rng.random() < 0.02 and not open_now:
            life.append((later(2), station, app_id, {"status": "withdrawn"}, "application"))
        elif not stuck or rng.random() < 0.5:
            steps = ["under_review"] if (open_now or stuck) else ["under_review", "approved", "completed"]
            if not (open_now or stuck) and rng.random() < 0.05:
                steps = ["under_review", "denied"]
            for s in steps:
                life.append((later(2), hub, app_id, {"status": s}, "application"))
            if steps[-1] == "completed" and rng.random() < 0.6:
                life.append((later(1), station, app_id, {"status": "delivered"}, "application"))
        if rng.random() < 0.002:  # a phone corrected at both ends, neither seeing the other: a conflict
            phone = f"139{rng.randint(0, 99_999_999):08d}"
            life.append((ms + 2 * hour, station, app_id, {"applicant_phone": phone}, "application#blind"))
            life.append((ms + 2 * hour + 1, hub, app_id, {"applicant_phone": phone[:-1] + "0"}, "application#blind"))
            self.conflicts += 1
        # "received" date of a 补交: the day it was written
        for i, (w, o, r, f, e) in enumerate(life):
            for k, v in f.items():
                if isinstance(v, list) and v[0] == "supplemented":
                    life[i] = (w, o, r, {k: ["supplemented", iso_from_ms(w)[:10]]}, e)
        self.made += 1
        shown = sorted((x for x in life if x[0] <= _ms(now)), key=lambda x: x[0])
        # The last write of a life lets the applier forget what its authors had seen of the record.
        shown[-1] = (*shown[-1][:4], shown[-1][4] + "#last")
        return shown


def common_china():  # type: ignore[no-untyped-def]
    from replica.ids import CHINA

    return CHINA


def build_hub(hub, spec: list[dict[str, str]], n: int, *, skip: str, now: datetime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """N applications over ``YEARS`` years ending ``now``; returns counts of what was written."""
    b = Builder(hub, spec, skip=skip)
    start = now - timedelta(days=365 * YEARS)
    months = YEARS * 12
    pending: dict[int, list[tuple[int, str, str, dict[str, object], str]]] = defaultdict(list)
    month_ms = 30 * 86_400_000
    t0 = _ms(start)
    per_month = [n // months + (1 if i < n % months else 0) for i in range(months)]
    hub.store.conn.execute("PRAGMA synchronous=OFF")  # a build, not a service: nothing to lose on a crash
    for m in range(months + 4):
        if m < months:
            for _ in range(per_month[m]):
                at = datetime.fromtimestamp((t0 + m * month_ms + b.rng.randint(0, month_ms - 1)) / 1000, tz=UTC)
                for ev in b.application(at, now):
                    pending[min((ev[0] - t0) // month_ms, months + 3)].append(ev)
        events = sorted(pending.pop(m, []), key=lambda e: e[0])
        if events:
            with hub.store.transaction():
                _apply_month(hub, b, events)
        if m % 12 == 11:
            common.log(f"year {m // 12 + 1}: {b.made} applications")
    hub.store.conn.execute("PRAGMA synchronous=FULL")
    _quarantine(hub, b, now)
    return {"bulk_applications": b.made, "conflicts_made": b.conflicts}


def _apply_month(hub, b: Builder, events: list[tuple[int, str, str, dict[str, object], str]]) -> None:  # type: ignore[no-untyped-def]
    """Apply one month of changes: each station's in batches as ingest does, the hub's as Hub.write."""
    from hub.feed import fan_out
    from sync.change import Change
    from sync.hlc import tick

    by_origin: dict[str, list[Change]] = defaultdict(list)
    hlcs: dict[str, int] = {}
    seen = b.seen
    for ms, origin, rid, fields, entity in events:
        hlc = tick(hlcs.get(origin, 0), ms)
        hlcs[origin] = hlc
        b.seq[origin] += 1
        blind = "#blind" in entity
        cells = seen.setdefault(rid, {})
        base = {} if blind or "number" in fields else {k: cells[k] for k in fields if k in cells}
        by_origin[origin].append(Change(origin, 1, b.seq[origin], hlc, "application", rid, dict(fields), base))
        if not blind:
            for k in fields:
                cells[k] = hlc
        if entity.endswith("#last"):
            del seen[rid]
    hub_id = hub.hub_id
    for origin, changes in by_origin.items():
        if origin == hub_id:
            result = hub.records.apply(changes)
            fan_out(hub, result.logged)
            hub.store.set_meta("seq", b.seq[origin])
            hub.store.set_meta("hlc", max(int(str(hub.store.get_meta("hlc", 0))), hlcs[origin]))
            continue
        for i in range(0, len(changes), BATCH):
            _station_batch(hub, b, origin, changes[i : i + BATCH])


def _station_batch(hub, b: Builder, origin: str, changes: list) -> None:  # type: ignore[no-untyped-def,type-arg]
    """What ``_ingest_verified`` writes for an admitted batch, from ``run`` to the cursor."""
    import hashlib

    from hub.feed import Lookup, fan_out
    from protocol.acks import Receipt
    from protocol.wire import sign_message
    from replica.ids import iso_from_ms
    from sync.session import Cursor

    run = hub.records.run()
    look = Lookup(hub, run)
    run.prefetch((c.entity, c.id) for c in changes)
    for c in changes:
        entry = run.add(c)
        if entry is not None:
            fan_out(hub, [entry], look)
    run.finish()
    hub.observe_hlc(max(c.hlc for c in changes))
    first, last = changes[0].seq, changes[-1].seq
    bhash = hashlib.sha256(b.prev[origin] + f"{origin}/{first}-{last}".encode()).digest()
    b.prev[origin] = bhash
    at = iso_from_ms(changes[-1].hlc >> 16)
    receipt = sign_message(
        Receipt(bhash, origin, 1, first, last, len(changes), 0, hub.hub_id, hub.name, at),
        signer=hub.hub_id,
        recipient=origin,
        signing_key=hub.keys.sign,
    ).frame
    received = (changes[-1].hlc >> 16) + 1000
    hub.store.record_batch(
        bhash,
        origin,
        1,
        first,
        last,
        now_ms=received,
        result="applied",
        applied=len(changes),
        quarantined=0,
        receipt=receipt,
        source="http",
    )
    hub.store.seen(origin, received)
    hub.store.set_cursor(origin, 1, Cursor(last + 1, bhash))


def _quarantine(hub, b: Builder, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """A few hundred held changes, spread over stations (a refused move, a stale catalogue)."""
    from protocol.codec import pack

    with hub.store.transaction():
        for i in range(400):
            origin = b.rng.choice(b.stations)
            hub.store.quarantine(
                origin,
                1,
                10_000_000 + i,
                bytes(32),
                pack([origin, 1, 10_000_000 + i, 0, "application", f"q{i}", {"status": "approved"}, {}]),
                "本站无权作出该决定 (a station may not decide this item)",
                _ms(now) - b.rng.randint(0, 90) * 86_400_000,
                code="not_allowed",
            )
