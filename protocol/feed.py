"""Downstream sync on the wire: the station's signed `pull` request and the hub's `feed` page.

A pull travels base64 in the `X-Sanji-Request` header; its body says where the station's cursor is
(`after`), what it holds, and, online, a `nonce` the page must answer in its signed header. A page
carries the station's changes after `after` up to `next`; its span (`after`, `next`, `more`, and the
pull's `nonce`) is repeated in the signed header, so a station that cannot open the body can still
tell which span it sets aside (`node/feed_quarantine.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocol.errors import MalformedError
from protocol.wire import U62, Field, below, read_fields

NONCE_BYTES = 16  # what a station sends; the hub answers a nonce of at most MAX_NONCE_BYTES
MAX_NONCE_BYTES = 64
RELAY_URL_MAX = 200  # a township relay's address (http://host:port)


@dataclass(frozen=True)
class PullRequest:
    """Body of a `pull` document (station -> hub)."""

    KIND: ClassVar[str] = "pull"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("after", "uint"),
        Field("at_ms", "uint"),
        Field("catalogue_version", "uint", required=False),
        Field("pending", "uint", required=False),
        Field("problem", "str", required=False),
        Field("seq", "uint", required=False),
        Field("epoch", "uint", required=False),
        Field("nonce", "bin", required=False),
        Field("staff_version", "uint", required=False),
        Field("relay", "str", required=False),
        Field("relay_problem", "str", required=False),
        Field("relay_at_ms", "uint", required=False),
        Field("relay_url", "str", required=False),
    )

    after: int  # the station's feed cursor
    at_ms: int  # the station's clock, Unix ms
    catalogue_version: int = 0
    pending: int = 0  # own changes not yet acknowledged
    problem: str | None = None  # what the station shows its staff; None: not said
    seq: int | None = None  # with epoch: what the station had written when it had applied `after`
    epoch: int | None = None
    nonce: bytes = b""  # online pulls: the page must answer it
    staff_version: int = 0  # the newest version of the hub's staff accounts the station has applied
    # A village's report of its township relay misbehaving (node/relay_alert.py): the township's code,
    # what it did (a stable code), and when the village caught it. '' and 0: nothing to report.
    relay: str = ""
    relay_problem: str = ""
    relay_at_ms: int = 0
    # A township's own: the address of its relay listener, as its villages reach it. The hub passes it on
    # in the feed of the township's villages (FeedPage.relay_url). '' withdraws an address told before
    # (the township has none to tell); None: not said, as by a township from before the withdrawal,
    # which leaves whatever the hub holds as it is.
    relay_url: str | None = None

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "after": self.after,
            "at_ms": self.at_ms,
            "catalogue_version": self.catalogue_version,
            "pending": self.pending,
        }
        for name in ("problem", "seq", "epoch"):
            if getattr(self, name) is not None:
                wire[name] = getattr(self, name)
        if self.nonce:
            wire["nonce"] = self.nonce
        if self.staff_version:
            wire["staff_version"] = self.staff_version
        if self.relay:
            wire.update(relay=self.relay, relay_problem=self.relay_problem, relay_at_ms=self.relay_at_ms)
        if self.relay_url is not None:
            wire["relay_url"] = self.relay_url
        return wire

    @classmethod
    def from_wire(cls, body: object) -> PullRequest:
        what = "a pull request"
        f = read_fields(body, cls.FIELDS, what)
        # Counters go into SQLite: anything at or over 2**62 is refused here, not by an overflow later.
        counts = {
            k: below(int(str(f.get(k, 0))), U62, k, what)
            for k in ("after", "at_ms", "catalogue_version", "pending", "staff_version", "relay_at_ms")
        }
        seq, epoch, problem, nonce = f.get("seq"), f.get("epoch"), f.get("problem"), f.get("nonce", b"")
        assert isinstance(nonce, bytes)
        relay, relay_problem = str(f.get("relay", "")), str(f.get("relay_problem", ""))
        said = f.get("relay_url")
        relay_url = None if said is None else str(said)  # '' is a withdrawal, absent is silence
        if len(relay) > 64 or len(relay_problem) > 32 or len(relay_url or "") > RELAY_URL_MAX:
            raise MalformedError(f"{what}: 'relay', 'relay_problem' or 'relay_url' is too long")
        return cls(
            counts["after"],
            counts["at_ms"],
            counts["catalogue_version"],
            counts["pending"],
            problem if isinstance(problem, str) else None,
            seq if isinstance(seq, int) else None,
            epoch if isinstance(epoch, int) else None,
            nonce,
            counts["staff_version"],
            relay,
            relay_problem,
            counts["relay_at_ms"],
            relay_url,
        )


@dataclass(frozen=True)
class FeedSpan:
    """The signed header extras of a `feed` page: its span, and the nonce of the pull it answers."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("after", "uint"),
        Field("next", "uint"),
        Field("more", "bool"),
        Field("nonce", "bin", required=False),
        Field("chain_epoch", "uint", required=False),
        Field("chain_next", "uint", required=False),
    )

    after: int
    next: int
    more: bool
    nonce: bytes = b""
    # The hub's word, as it answered the pull, on the station's own chain in the epoch the pull named:
    # the next seq it expects from it (sync/relay_evidence.py). 0: not said (a hub from before, a stick).
    chain_epoch: int = 0
    chain_next: int = 0

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"after": self.after, "next": self.next, "more": self.more}
        if self.nonce:
            wire["nonce"] = self.nonce
        if self.chain_epoch:
            wire.update(chain_epoch=self.chain_epoch, chain_next=self.chain_next)
        return wire

    @classmethod
    def from_wire(cls, header: object) -> FeedSpan:
        """The span of a page's (signed) header; MalformedError when it carries none (a page from a hub
        before spans were signed)."""
        f = read_fields(header, cls.FIELDS, "a feed page's header")
        after, nxt, nonce = int(str(f["after"])), int(str(f["next"])), f.get("nonce", b"")
        assert isinstance(nonce, bytes)
        chain = (int(str(f.get("chain_epoch", 0))), int(str(f.get("chain_next", 0))))
        return cls(after, nxt, f["more"] is True, nonce, *chain)


@dataclass(frozen=True)
class FeedPage:
    """Body of a `feed` document (hub -> station)."""

    KIND: ClassVar[str] = "feed"
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("station", "str"),
        Field("after", "uint"),
        Field("next", "uint"),
        Field("more", "bool"),
        Field("changes", "[change]"),
        Field("origins", "{str: str}", required=False),
        Field("catalogue", "frame or nil", required=False),
        Field("revoked", "[str]", required=False),
        Field("hub_ms", "uint", required=False),
        Field("generation", "str", required=False),
        Field("field_devices", "[str]", required=False),
        Field("staff", "[staff]", required=False),
        Field("relay_url", "str", required=False),
        Field("relay_version", "uint", required=False),
        Field("relay_report", "bin", required=False),
    )

    station: str
    after: int
    next: int
    more: bool
    changes: tuple[list[object], ...]  # checked one by one by sync.change.change_from_wire
    origins: dict[str, str]  # origin -> tier, for the changes' origins
    catalogue: bytes | None = None  # a signed `catalogue` document: a release newer than the station's
    revoked: tuple[str, ...] = ()
    hub_ms: int = 0  # the hub's clock when it made the page (0: not said)
    generation: str | None = None  # changes when the hub is restored from a backup; None: not said
    field_devices: tuple[str, ...] | None = None  # township and street centres only
    staff: tuple[dict[str, object], ...] = ()  # the station's own accounts, each read by StaffEntry.from_wire
    # The township relay of a village, as its township last told the hub ('' none), and the hub's version
    # of that address: a station never lets a lower version replace what it holds (an old page replayed).
    relay_url: str = ""
    relay_version: int = 0
    # The digest of the station's newest relay report (PullRequest.relay*) the hub has durably recorded
    # (sync/relay_evidence.py): the station repeats its report until a page echoes it. None: not said (a
    # hub from before the echo); b"": none recorded yet.
    relay_report: bytes | None = None

    @property
    def span(self) -> FeedSpan:
        return FeedSpan(self.after, self.next, self.more)

    def to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "station": self.station,
            "after": self.after,
            "next": self.next,
            "more": self.more,
            "changes": list(self.changes),
            "origins": dict(self.origins),
            "catalogue": self.catalogue,
            "revoked": list(self.revoked),
            "hub_ms": self.hub_ms,
            "generation": self.generation or "",
        }
        if self.field_devices is not None:
            wire["field_devices"] = list(self.field_devices)
        if self.staff:
            wire["staff"] = [dict(e) for e in self.staff]
        if self.relay_version:
            wire.update(relay_url=self.relay_url, relay_version=self.relay_version)
        if self.relay_report is not None:
            wire["relay_report"] = self.relay_report
        return wire

    @classmethod
    def from_wire(cls, body: object) -> FeedPage:
        f = read_fields(body, cls.FIELDS, "a feed page")
        changes, origins, devices = f["changes"], f.get("origins", {}), f.get("field_devices")
        catalogue, revoked, generation = f.get("catalogue"), f.get("revoked", []), f.get("generation")
        staff = f.get("staff", [])
        assert isinstance(staff, list)
        relay_url, report = str(f.get("relay_url", "")), f.get("relay_report")
        if len(relay_url) > RELAY_URL_MAX:
            raise MalformedError("a feed page: 'relay_url' is too long")
        if isinstance(report, bytes) and len(report) > MAX_NONCE_BYTES:
            raise MalformedError("a feed page: 'relay_report' is too long")
        assert isinstance(changes, list) and isinstance(origins, dict) and isinstance(revoked, list)
        return cls(
            str(f["station"]),
            int(str(f["after"])),
            int(str(f["next"])),
            f["more"] is True,
            tuple(changes),
            {str(k): str(v) for k, v in origins.items()},
            catalogue if isinstance(catalogue, bytes) else None,
            tuple(str(r) for r in revoked),
            int(str(f.get("hub_ms", 0))),
            generation if isinstance(generation, str) else None,
            tuple(str(d) for d in devices) if isinstance(devices, list) else None,
            tuple(staff),
            relay_url,
            below(int(str(f.get("relay_version", 0))), U62, "relay_version", "a feed page"),
            report if isinstance(report, bytes) else None,
        )


@dataclass(frozen=True)
class StaffEntry:
    """One staff account of the station, as the hub states it in the station's feed page.

    Never a password: the scrypt hash the station checks at sign-in and the public half of the grant
    key (``sync/staff_password.py``, ``sync/staff_grant.py``). ``version`` grows with every change the
    hub makes to the account; a station never lets a lower one replace what it holds. Each entry is
    read on its own (``from_wire``), so one the station cannot take costs only that entry."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("user", "str"),
        Field("name", "str"),
        Field("role", "str"),
        Field("enabled", "bool"),
        Field("password_hash", "str"),
        Field("grant_key", "str"),
        Field("version", "uint"),
        # The version at which the hub itself last set the password (add-staff, enable-staff); absent
        # when 0. A password the station changed since it saw that version is kept against this entry
        # until the hub echoes it (sync/staff_change.py).
        Field("password_version", "uint", required=False),
    )

    user: str
    name: str
    role: str
    enabled: bool
    password_hash: str
    grant_key: str
    version: int
    password_version: int = 0

    def to_wire(self) -> dict[str, object]:
        wire = {f.name: getattr(self, f.name) for f in self.FIELDS}
        if not self.password_version:
            del wire["password_version"]  # an entry without one keeps the shape it had before
        return wire

    @classmethod
    def from_wire(cls, entry: object) -> StaffEntry:
        what = "a staff account in a feed page"
        f = read_fields(entry, cls.FIELDS, what)
        return cls(
            str(f["user"]),
            str(f["name"]),
            str(f["role"]),
            f["enabled"] is True,
            str(f["password_hash"]),
            str(f["grant_key"]),
            below(int(str(f["version"])), U62, "version", what),
            below(int(str(f.get("password_version", 0))), U62, "password_version", what),
        )


__all__ = ["MAX_NONCE_BYTES", "NONCE_BYTES", "FeedPage", "FeedSpan", "PullRequest", "StaffEntry"]
