"""The contract of :class:`hub.store.HubStore`, written once for every backend: the merged records as
the store answers for them (``hub/store/records.py``), application owners (``hub/store/feed.py``), a
station's reconciliation scope (``hub/store/scope.py``), the blob index (``hub/store/blobs.py``) and
the named figures (``hub/store/figures.py``).

Records get into the store the way the hub writes them: through the backend's ``log_changes`` hook,
which logs, folds and projects. The rest of the contract is in ``test_store_contract``.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.store import HubStore
from protocol.codec import pack, unpack
from sync.change import Change

from .store_backends import H1, T0, Backend

ACCEPTED = "2026-03-02T08:00:00+08:00"


def _at(n: int) -> int:
    return (T0 << 16) + n


def _app(seq: int, rid: str, number: str, *, station: str = "T1-V1", status: str = "received") -> Change:
    fields = {"station": station, "number": number, "item": "360802-0001", "status": status, "accepted_at": ACCEPTED}
    return Change(station, 1, seq, _at(seq), "application", rid, fields, {})


def _district(backend: Backend, store: HubStore) -> list[int]:
    """Two applications of T1-V1 and one of T1-V2, a task and its report on the first, and a concurrent
    edit of the first's name by T1-V1 and T1 (a conflict)."""
    changes: Sequence[Change] = [
        _app(1, "app-1", "N-0001"),
        _app(2, "app-2", "N-0002", status="under_review"),
        _app(1, "app-3", "N-0003", station="T1-V2"),
        Change("T1", 1, 1, _at(3), "task", "task-1", {"application": "app-1", "inspector": "F1"}, {}),
        Change("F1", 1, 1, _at(4), "report", "task-1", {"task": "task-1", "photos": ["a" * 64], "signature": "b"}, {}),
        Change("T1-V1", 1, 3, _at(10), "application", "app-1", {"applicant_name": "李四"}, {}),
        Change("T1", 1, 2, _at(11), "application", "app-1", {"applicant_name": "王五"}, {}),
    ]
    return backend.log_changes(store, changes)


# -- applications, tasks, reports --------------------------------------------------------------------


def test_applications_are_found_by_number_listed_and_counted(backend: Backend, store: HubStore) -> None:
    """``application_id(number)``; the listing (``list_applications``, ``iter_applications``) filtered
    by station and status; ``application_counts`` per station and ``applications_held``."""
    _district(backend, store)
    assert store.application_id("N-0002") == "app-2" and store.application_id("N-9999") is None
    assert {a["number"] for a in store.list_applications()} == {"N-0001", "N-0002", "N-0003"}
    assert [a["id"] for a in store.iter_applications(station="T1-V2")] == ["app-3"]
    assert [a["id"] for a in store.list_applications(station="T1-V1", status="under_review")] == ["app-2"]
    assert store.application_counts() == {"T1-V1": 2, "T1-V2": 1}
    assert store.applications_held() == 3 and store.applications_held("T1-V1") == 2
    assert store.status_counts("T1-V1") == {"received": 1, "under_review": 1} and store.status_counts("T9") == {}


def test_tasks_and_reports_are_read_from_the_records_and_the_log(backend: Backend, store: HubStore) -> None:
    """``has_task``, ``task_ids`` (newest first), ``tasks_of``; ``report_states`` (the merged reports);
    ``report_fields_from(origin)`` (the report changes that origin wrote, packed)."""
    _district(backend, store)
    assert store.has_task("app-1") and not store.has_task("app-2")
    assert store.task_ids() == [("task-1", "app-1")]
    records = store.record_store(lambda origin: 1)
    assert [(t, f.get("inspector")) for t, f in store.tasks_of(records, "app-1")] == [("task-1", "F1")]
    assert len(list(store.report_states())) == 1
    (fields,) = store.report_fields_from("F1")
    assert unpack(fields) == {"task": "task-1", "photos": ["a" * 64], "signature": "b"}
    assert list(store.report_fields_from("T1")) == []


def test_application_owners_come_from_the_projection(backend: Backend, store: HubStore) -> None:
    """``application_owner(id)`` is (station, item) or None; ``application_owners(ids)`` answers many
    at once and leaves unknown ids out."""
    _district(backend, store)
    assert store.application_owner("app-3") == ("T1-V2", "360802-0001")
    assert store.application_owner("nope") is None
    ids = [f"nope-{n}" for n in range(1200)] + ["app-1", "app-3"]  # more than one query's worth
    assert store.application_owners(ids) == {"app-1": ("T1-V1", "360802-0001"), "app-3": ("T1-V2", "360802-0001")}


# -- conflicts ----------------------------------------------------------------------------------------


def test_a_conflict_is_listed_loaded_and_closed(backend: Backend, store: HubStore) -> None:
    """``conflict_listing`` gives each conflict with its application's number (open ones unless asked);
    ``conflict(id)`` the two sides, packed [hlc, origin, value, ...]; ``close_conflict`` settles it."""
    _district(backend, store)
    (row,) = store.conflict_listing()
    assert (row.entity, row.record, row.field, row.number, bool(row.resolved)) == (
        "application",
        "app-1",
        "applicant_name",
        "N-0001",
        False,
    )
    entry = store.conflict(row.id)
    assert entry is not None and not entry.resolved
    winner, loser = unpack(entry.winner), unpack(entry.loser)
    assert isinstance(winner, list) and isinstance(loser, list)
    assert winner[:3] == [_at(11), "T1", "王五"] and loser[:3] == [_at(10), "T1-V1", "李四"]
    assert store.conflict("nope") is None and store.open_conflicts() == 1
    with store.transaction():
        store.close_conflict(row.id, "确认保留")
    assert store.conflict_listing() == [] and store.open_conflicts() == 0
    (closed,) = store.conflict_listing(include_resolved=True)
    assert closed.resolution == "确认保留" and bool(closed.resolved)


# -- tracking codes ------------------------------------------------------------------------------------


def test_tracking_codes_are_found_kept_once_and_forgotten(store: HubStore) -> None:
    """``add_tracking_code`` keeps the first hash an application carried; ``tracked_application``
    finds it; ``forget_tracking`` drops an application's hash."""
    with store.transaction():
        store.add_tracking_code("h1", "app-1", T0)
        store.add_tracking_code("h1", "app-2", T0)  # the same hash again: ignored
        store.add_tracking_code("h2", "app-2", T0)
    assert store.tracked_application("h1") == "app-1" and store.tracked_application("h2") == "app-2"
    assert sorted(store.tracked_applications()) == ["app-1", "app-2"]
    with store.transaction():
        store.forget_tracking(["app-1"])
    assert store.tracked_application("h1") is None and store.tracked_applications() == ["app-2"]


# -- a station's scope --------------------------------------------------------------------------------


def test_a_stations_scope_is_what_it_wrote_and_what_its_feed_carried(backend: Backend, store: HubStore) -> None:
    """``own_change_rows`` are the station's logged changes, ``fed_change_rows`` the others' in its feed
    (each restricted to record keys when given); ``touched_records`` the records of either logged in a
    span of the log."""
    rowids = _district(backend, store)
    with store.transaction():
        store.add_to_feed("T1-V1", rowids[3])  # the task
        store.add_to_feed("T1-V1", rowids[6])  # T1's edit of app-1
    own = store.own_change_rows("T1-V1")
    assert sorted((r[2], r[5]) for r in own) == [(1, "app-1"), (2, "app-2"), (3, "app-1")]
    first = next(r for r in own if r[2] == 1)
    assert first[:6] == ("T1-V1", 1, 1, _at(1), "application", "app-1")
    assert bytes(first[6]) == pack(dict(_app(1, "app-1", "N-0001").fields)) and bytes(first[7]) == pack({})
    assert sorted((r[0], r[4], r[5]) for r in store.fed_change_rows("T1-V1")) == [
        ("T1", "application", "app-1"),
        ("T1", "task", "task-1"),
    ]
    assert [r[5] for r in store.own_change_rows("T1-V1", ["application:app-2"])] == ["app-2"]
    assert [r[4] for r in store.fed_change_rows("T1-V1", ["task:task-1"])] == ["task"]
    assert store.touched_records("T1-V1", 0, max(rowids)) == {
        ("application", "app-1"),
        ("application", "app-2"),
        ("task", "task-1"),
    }
    assert store.touched_records("T1-V1", rowids[3], max(rowids)) == {("application", "app-1")}


def test_reconciliation_sessions_are_kept_per_station(store: HubStore) -> None:
    """``record_reconciliation`` keeps what a station reported; ``reconciliations(station)`` gives its
    sessions oldest first, the summary match as None, or true or false."""
    with store.transaction():
        store.record_reconciliation("T1-V1", T0 + 1, buckets=16, divergent=2, repaired=3, size=900, summary_match=True)
        store.record_reconciliation("T1-V1", T0, buckets=8, divergent=0, repaired=0, size=10, summary_match=None)
        store.record_reconciliation("T1-V2", T0, buckets=8, divergent=0, repaired=0, size=10, summary_match=False)
    got = store.reconciliations("T1-V1")
    assert [(r["at_ms"], r["buckets"], r["bytes"], r["summary_match"]) for r in got] == [
        (T0, 8, 10, None),
        (T0 + 1, 16, 900, 1),
    ]
    assert [bool(r["summary_match"]) for r in store.reconciliations("T1-V2")] == [False]


# -- blobs ------------------------------------------------------------------------------------------------


def test_an_upload_is_claimed_resized_and_ended_by_filing_the_blob(store: HubStore) -> None:
    """``start_upload`` claims a size (a second claim replaces it), ``upload_size`` reads it;
    ``file_blob`` records the blob once and ends its upload; ``end_upload`` drops one."""
    sha, other = "a" * 64, "b" * 64
    assert store.upload_size(sha) is None and not store.blob_filed(sha)
    with store.transaction():
        store.start_upload(sha, 100, "F1", T0)
        store.start_upload(sha, 120, "F1", T0 + 1)
        store.start_upload(other, 5, "F1", T0)
    assert store.upload_size(sha) == 120
    with store.transaction():
        store.file_blob(sha, 120, "F1", "http:1", T0 + 2)
        store.file_blob(sha, 999, "F2", "usb", T0 + 3)  # filed once: the first stays
        store.end_upload(other)
    assert store.blob_filed(sha) and store.filed_blobs() == {sha}
    assert store.upload_size(sha) is None and store.upload_size(other) is None


# -- figures ---------------------------------------------------------------------------------------------


def test_named_figures_count_what_they_name(backend: Backend, store: HubStore) -> None:
    """``changes_logged`` and ``batches_taken`` (all, or one origin's), ``refusals_since`` (refusals,
    counted, in rows written after a time), ``open_quarantine``."""
    _district(backend, store)
    with store.transaction():
        store.record_batch(
            H1, "T1-V1", 1, 1, 3, now_ms=T0, result="applied", applied=3, quarantined=0, receipt=b"", source="t"
        )
        store.reject("http:1", "X", "bad_signature: x", T0)
        store.reject("http:1", "X", "bad_signature: y", T0 + 5)
        store.reject("http:2", "X", "malformed: z", T0 - 10 * 3_600_000)
        store.quarantine("T1-V1", 1, 9, H1, b"r", "x", T0)
    assert store.changes_logged() == 7 and store.changes_logged("T1-V1") == 3 and store.changes_logged("T9") == 0
    assert store.batches_taken() == 1 and store.batches_taken("T1-V1") == 1 and store.batches_taken("T1-V2") == 0
    assert store.refusals_since(T0 - 1) == 2 and store.refusals_since(T0 - 11 * 3_600_000) == 3
    assert store.open_quarantine() == 1
