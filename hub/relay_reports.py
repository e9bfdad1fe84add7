"""A village's report of its township relay, recorded once and echoed back (issue 17).

The report rides in the village's signed pull request or stick status (``PullRequest.relay*``), and
the hub notes it in bookkeeping nobody waits for (``Committer.later``): a hub that answers the pull and
then stops before that bookkeeping commits has lost it. So the village does not take an answer as proof
the hub heard it; it repeats the report until a page the hub signed echoes the report's digest
(``FeedPage.relay_report``), and the hub echoes only what it has committed. Recording is idempotent:
the digest of the station's newest report is kept beside the alert, in the same transaction, so a
report sent again is not raised again.
"""

from __future__ import annotations

from typing import Protocol

from hub import relay_alerts
from sync.relay_evidence import report_digest


class ReportStore(relay_alerts.RelayStore, Protocol):
    def get_meta(self, key: str, default: object = None) -> object: ...
    def set_meta(self, key: str, value: object) -> None: ...


def _key(station: str) -> str:
    return f"relay_report:{station}"


def record(store: ReportStore, village: str, relay: str, problem: str, at_ms: int, now_ms: int) -> bool:
    """Take a village's report (inside the caller's transaction): raise its alert unless this very
    report was taken before, and remember it as heard. True when the alert was raised now."""
    if not relay:
        return False
    digest = report_digest(relay, problem, at_ms)
    if store.get_meta(_key(village)) == digest:
        return False  # repeated because our echo had not reached the village yet
    raised = relay_alerts.reported(store, village, relay, problem, at_ms, now_ms)
    # Heard even when not raised (a township not its own): the village may stop repeating it.
    store.set_meta(_key(village), digest)
    return raised


def echo(store: ReportStore, station: str, *, asked: bool) -> bytes | None:
    """What a page for ``station`` echoes: the digest of its newest report the hub has recorded; b""
    when the request carried one not recorded yet (the village then knows this hub echoes); None when
    there is nothing to say."""
    kept = store.get_meta(_key(station))
    if isinstance(kept, bytes) and kept:
        return kept
    return b"" if asked else None
