"""The values of the admission question (``sync/admission.py``): the verdict, the facts it is asked
with, and one status as a replica's log holds it. Kept apart so the rule modules share them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sync.catalogue import Catalogue
from sync.change import Change
from sync.fold import Record
from sync.model import RecordContext
from sync.workflow import STATUS_LABELS, Status


@dataclass(frozen=True)
class Admission:
    change: Change | None  # None when the wire value could not even be read as a change
    reason: str  # "" when admitted
    code: str = ""  # a stable machine code for the refusal ("" when admitted)

    @property
    def admitted(self) -> bool:
        return self.change is not None and not self.reason


@dataclass(frozen=True)
class StatusVersion:
    """One status an application has held: written at ``hlc`` by ``origin``."""

    hlc: int
    origin: str
    value: str
    epoch: int = 1
    seq: int = 0
    rowid: int = 0  # where this replica's change log holds it (the hub's feeds point there)


def _none_catalogue(version: int) -> Catalogue | None:
    return None


def _no_holder(number: str) -> str | None:
    return None


def _no_versions() -> Sequence[StatusVersion]:
    return ()


def _no_latest() -> tuple[int, Catalogue] | None:
    return None


def _nothing_published() -> int:
    return 0


def _never() -> bool:
    return False


def _not_delivered(rowid: int) -> bool:
    return False


def _none_held(hlc: int) -> tuple[str, bool] | None:
    return None


def _no_authority(origin: str) -> int:
    return 0


@dataclass(frozen=True)
class StaffFact:
    """A staff account as the replica asking holds it (``sync/staff_change.py``): the hub's accounts
    at the hub, the station's own at a station."""

    role: str
    enabled: bool


def _no_account(station: str, user: str) -> StaffFact | None:
    return None


@dataclass(frozen=True)
class Facts:
    """What the question needs beyond the change, as the replica asking knows it.

    The lookups are called only when the change needs them, so the common case (a change written on
    the latest version of its record) costs no extra reads."""

    context: RecordContext | None  # None when the change's application is unknown here
    current: Record = field(default_factory=dict)  # the record's merged cells now ({} when new)
    application: Mapping[str, object] = field(default_factory=dict)  # its application's values
    task: Mapping[str, object] = field(default_factory=dict)  # a report's task (same id), as held here
    status_versions: Callable[[], Sequence[StatusVersion]] = _no_versions  # the application's statuses
    catalogue: Callable[[int], Catalogue | None] = _none_catalogue  # a published release by version
    number_holder: Callable[[str], str | None] = _no_holder  # the application id holding a number
    # The newest release held, and the highest version ever published: after a restore from backup the
    # hub may no longer hold a release it published (and stations used), but it knows it published it.
    latest_catalogue: Callable[[], tuple[int, Catalogue] | None] = _no_latest
    published_up_to: Callable[[], int] = _nothing_published
    # Whether this replica holds the same origin's change with the same record and fields from an
    # earlier epoch (what a station re-issues after a fork).
    reissued: Callable[[], bool] = _never
    # Whether the logged change at this rowid had reached the author, through its feed, before it wrote
    # this change (the hub knows from the author's signed pulls; see hub/store.py horizons).
    delivered: Callable[[int], bool] = _not_delivered
    authority: Callable[[str], int] = _no_authority  # a tier's weight in the fold (sync/model.py AUTHORITY)
    # (status, released) of one of the author's own held changes to this record, written at an hlc
    held_status: Callable[[int], tuple[str, bool] | None] = _none_held
    # Whether a report on the application, or a decider's approve-without-inspection event, is held
    # (changes logged earlier in the same batch included): what approving an inspection item needs.
    inspected: Callable[[], bool] = _never
    # A station's staff account (station, user), for a password change (sync/staff_change.py).
    staff_account: Callable[[str, str], StaffFact | None] = _no_account


def refused(change: Change, code: str, reason: str) -> Admission:
    return Admission(change, reason, code)


def status_word(value: object) -> str:
    try:
        return STATUS_LABELS[Status(str(value))]
    except ValueError:
        return str(value)
