"""The feed cursor's table (sync/feed_cursor.py): a page never moves the cursor past entries not pulled."""

from __future__ import annotations

from sync.feed_cursor import (
    TRANSITIONS,
    CursorAction,
    FeedCursor,
    PageVerdict,
    advance,
    follow,
    judge,
    skip,
)

V = PageVerdict


def test_every_verdict_has_an_action() -> None:
    assert set(TRANSITIONS) == set(PageVerdict)


def test_a_page_that_starts_past_the_cursor_is_early_whatever_its_generation() -> None:
    c = FeedCursor("g1", 10)
    assert judge(c, after=11, generation="g1") is V.EARLY
    assert judge(c, after=11, generation="g2") is V.EARLY
    assert TRANSITIONS[V.EARLY] is CursorAction.REFUSE


def test_pages_at_or_before_the_cursor_apply_and_never_move_it_back() -> None:
    c = FeedCursor("g1", 10)
    assert judge(c, after=10, generation="g1") is V.APPLY
    assert judge(c, after=3, generation=None) is V.APPLY  # an old page, or one without a generation
    assert advance(c, 7) == c
    assert advance(c, 15) == FeedCursor("g1", 15)


def test_a_new_generation_restarts_at_zero_and_the_first_one_is_followed() -> None:
    c = FeedCursor("g1", 10)
    assert judge(c, after=10, generation="g2") is V.NEW_GENERATION
    assert follow(c, V.NEW_GENERATION, "g2") == FeedCursor("g2", 0)
    assert TRANSITIONS[V.NEW_GENERATION] is CursorAction.RESTART
    fresh = FeedCursor("", 0)
    assert judge(fresh, after=0, generation="g1") is V.FIRST_GENERATION
    assert follow(fresh, V.FIRST_GENERATION, "g1") == FeedCursor("g1", 0)
    assert follow(c, V.APPLY, "g1") == c


def test_a_genuine_unusable_page_is_stepped_over_only_when_it_covers_the_cursor() -> None:
    c = FeedCursor("g1", 10)
    assert skip(c, after=8, nxt=20) == FeedCursor("g1", 20)
    assert skip(c, after=11, nxt=20) is None  # starts past us: would skip entries never pulled
    assert skip(c, after=2, nxt=10) is None  # already applied: nothing to step over
