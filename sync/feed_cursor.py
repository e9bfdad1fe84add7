"""The station's feed cursor, sans I/O: what a feed page does to how far a station has applied its feed.

Theory of operation
-------------------
The hub numbers the entries of each station's feed; a page covers ``(after, next]`` of one
*generation* of that numbering (a hub restored from a backup starts a new one). A station keeps a
``FeedCursor``: the generation it follows and the position it has applied up to. ``judge`` sorts an
authentic page into exactly one ``PageVerdict``, and ``TRANSITIONS`` says what each verdict does:

- ``APPLY``: the page starts at or before the cursor: apply it, and move the cursor to ``next`` (never
  back: an old page taken again applies nothing new and moves nothing);
- ``EARLY``: it starts past the cursor, so applying it would skip entries never pulled (pages imported
  out of order): refuse it; the earlier pages come first;
- ``NEW_GENERATION``: the hub was restored: the cursor means nothing there any more, so it restarts at
  0 in the new generation and the station asks again (changes it already holds are skipped);
- ``FIRST_GENERATION``: the first page to name a generation: follow it, and apply the page.

A genuine page that cannot be applied (node/feed_quarantine.py) may be stepped over with ``skip``,
only when it covers the cursor. Nothing else moves the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class FeedCursor:
    generation: str = ""
    position: int = 0


class PageVerdict(StrEnum):
    APPLY = "apply"
    EARLY = "early"
    NEW_GENERATION = "new_generation"
    FIRST_GENERATION = "first_generation"


class CursorAction(StrEnum):
    ADVANCE = "advance"  # apply the page, then move to its next (if further)
    REFUSE = "refuse"  # change nothing
    RESTART = "restart"  # follow the new generation from position 0; the page itself is not applied


TRANSITIONS: dict[PageVerdict, CursorAction] = {
    PageVerdict.APPLY: CursorAction.ADVANCE,
    PageVerdict.EARLY: CursorAction.REFUSE,
    PageVerdict.NEW_GENERATION: CursorAction.RESTART,
    PageVerdict.FIRST_GENERATION: CursorAction.ADVANCE,
}


def judge(cursor: FeedCursor, *, after: object, generation: object) -> PageVerdict:
    """Sort an authentic page by its ``after`` and ``generation`` (either may be absent: not an int or
    not a str). A page that starts past the cursor is early whatever its generation."""
    if isinstance(after, int) and after > cursor.position:
        return PageVerdict.EARLY
    if isinstance(generation, str) and generation != cursor.generation:
        return PageVerdict.NEW_GENERATION if cursor.generation else PageVerdict.FIRST_GENERATION
    return PageVerdict.APPLY


def follow(cursor: FeedCursor, verdict: PageVerdict, generation: object) -> FeedCursor:
    """The cursor once a page of ``verdict`` is taken, before its changes apply."""
    action = TRANSITIONS[verdict]
    if action is CursorAction.RESTART:
        return FeedCursor(str(generation), 0)
    if verdict is PageVerdict.FIRST_GENERATION:
        return FeedCursor(str(generation), cursor.position)
    return cursor


def advance(cursor: FeedCursor, nxt: int) -> FeedCursor:
    """The cursor once an applied page's changes are in: at ``next`` when that is further."""
    return FeedCursor(cursor.generation, nxt) if nxt > cursor.position else cursor


def skip(cursor: FeedCursor, *, after: int, nxt: int) -> FeedCursor | None:
    """Step over a genuine page that cannot be applied, only when it covers the cursor; else None."""
    return FeedCursor(cursor.generation, nxt) if after <= cursor.position < nxt else None
