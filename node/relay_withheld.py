"""A relay that answers but forwards nothing: the clocks that tell a withheld batch from a delayed one.

Dropping is the one misdeed no signature shows: the relay takes the batches, answers politely, and
nothing ever comes back. What the village can see is time. Each batch it hands to the relay is noted
with the first time it was left there (``relay_left``, kept in meta so a restart keeps the clock); its
hub receipt, by whatever path (the relay, the direct link, a stick), settles it and so ends its clock.
Likewise the pull requests left there: ``relay_pull_since`` is when the village began waiting for a
page the hub signed, reset by every genuine page that answers one of them and by a round with the hub
itself. A batch or request still unanswered after ``WITHHELD_MS`` is the relay's misdeed ``withheld``
(node/relay_alert.py), named like the others.

Only the hours the relay was answering count: a round that cannot reach it (the township down) notes
when it went quiet, and the next round it answers moves every clock on by the silence, so a relay that
was simply off is never blamed. The words say "held back or delayed": a township whose own link to the
hub is down delays the same way, and the village cannot tell the two apart.
"""

from __future__ import annotations

from node.station import Station
from node.store import UNSETTLED_SQL

WITHHELD_MS = 12 * 3600 * 1000  # hours of the relay answering after which what it holds is overdue
HOURS = WITHHELD_MS // 3_600_000


def _left(st: Station) -> dict[str, int]:
    kept = st.meta.get("relay_left", {})
    if not isinstance(kept, dict):
        return {}
    return {str(k): int(v) for k, v in kept.items() if isinstance(v, int)}


def left(st: Station, hashes: list[bytes]) -> None:
    """These batches were just handed to the relay: start the clock of those it had not held yet."""
    kept = _left(st)
    new = {h.hex(): st.clock() for h in hashes if h.hex() not in kept}
    if new:
        with st.transaction():
            st.meta.set("relay_left", {**kept, **new})


def asked(st: Station) -> None:
    """A pull request is being left at the relay: the wait for a page starts now, unless it runs already."""
    if not isinstance(st.meta.get("relay_pull_since"), int):
        with st.transaction():
            st.meta.set("relay_pull_since", st.clock())


def answered_page(st: Station) -> None:
    """The relay handed over a page the hub signed for one of our requests: only the request left this
    round is still waiting."""
    with st.transaction():
        st.meta.set("relay_pull_since", st.clock())


def hub_reached(st: Station) -> None:
    """A round with the hub itself: the feed came directly, so no page is owed through the relay."""
    if st.meta.get("relay_pull_since") is not None:
        with st.transaction():
            st.meta.set("relay_pull_since", None)


def unreachable(st: Station) -> None:
    """The relay did not answer: from now until it does, its clocks stand still."""
    if not isinstance(st.meta.get("relay_quiet_since"), int):
        with st.transaction():
            st.meta.set("relay_quiet_since", st.clock())


def reachable(st: Station) -> None:
    """The relay answered: move every clock on by the time it was silent."""
    quiet = st.meta.get("relay_quiet_since")
    if not isinstance(quiet, int):
        return
    gap = max(0, st.clock() - quiet)
    since = st.meta.get("relay_pull_since")
    with st.transaction():
        st.meta.set("relay_left", {k: v + gap for k, v in _left(st).items()})
        st.meta.set("relay_pull_since", since + gap if isinstance(since, int) else None)
        st.meta.set("relay_quiet_since", None)


def overdue(st: Station) -> tuple[str, str] | None:
    """After a round the relay answered: ``("withheld", detail)`` when it has held a batch or left a
    request unanswered past the bound, else None. Settled batches' clocks are dropped here."""
    unsettled = {bytes(r[0]).hex() for r in st.conn.execute(f"SELECT hash FROM outbox WHERE state IN {UNSETTLED_SQL}")}
    kept = _left(st)
    still = {k: v for k, v in kept.items() if k in unsettled}
    if still != kept:
        with st.transaction():
            st.meta.set("relay_left", still)
    now = st.clock()
    late = [v for v in still.values() if now - v >= WITHHELD_MS]
    if late:
        return "withheld", f"{len(late)} 个批次交给它已超过 {HOURS} 小时（它应答期间计），仍无区局回执"
    since = st.meta.get("relay_pull_since")
    if isinstance(since, int) and now - since >= WITHHELD_MS:
        return "withheld", f"留给它的取数请求已超过 {HOURS} 小时（它应答期间计）未转来区局的数据页"
    return None
