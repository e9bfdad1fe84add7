"""What the hub's signed answers prove about a village's township relay, without any clock.

Two things are decided here, purely (the village's adapter, node/relay_skipped.py and
node/relay_alert.py, keeps the facts and does the I/O):

- **A batch skipped.** The relay forwards a village's traffic in order: every batch left there before a
  pull request goes to the hub before that request (node/relay_forward.py). The page answering a pull
  says, in its signed header, the next seq the hub expects of the village's chain in the epoch the
  pull named (``FeedSpan.chain_epoch``, ``chain_next``). If that seq lies inside a batch the village
  had left at the relay before it left the request, and the hub never answered that batch at all, the
  hub cannot have had it when it answered: the relay carried the later request before the earlier
  batch. Whether it keeps the batch back for good or forwards it afterwards (out of order: a later
  batch sent ahead of it is refused as a gap, and the earlier one still waits here) cannot be told from
  the page, and need not be: either is a misdeed, and the words name both. That is certain, not a
  matter of hours, unlike ``withheld`` (node/relay_withheld.py).
- **A report heard.** A village's report of its relay (``PullRequest.relay*``) is settled only when a
  page the hub signed echoes its digest (``FeedPage.relay_report``): the hub echoes only what it has
  recorded, so a hub that answered and then lost its bookkeeping is simply told again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from protocol.codec import pack


@dataclass(frozen=True)
class Handed:
    """A batch of the village's, waiting for any answer of the hub's, that it left at its relay."""

    epoch: int
    first_seq: int
    last_seq: int
    mark: int  # how many pull requests the village had left at the relay before it first left this batch


@dataclass(frozen=True)
class ChainAt:
    """The hub's signed word on the village's chain when it answered one pull request."""

    epoch: int
    next_seq: int
    asked: int  # that request's place among the village's pull requests left at the relay (1, 2, ...)


def skipped(chain: ChainAt, waiting: Iterable[Handed]) -> Handed | None:
    """The batch the relay provably did not forward before a later pull request it carried (kept back,
    or sent out of order), or None. ``waiting``: the batches the hub has not answered (no ack of any
    kind: an ack, even a refusal, shows the hub had the batch in hand)."""
    if chain.epoch <= 0 or chain.next_seq <= 0:
        return None  # the hub did not say (a hub from before, or a pull without an epoch)
    for batch in waiting:
        # Left before the request, and holding the very seq the hub still waits for.
        if (
            batch.mark < chain.asked
            and batch.epoch == chain.epoch
            and batch.first_seq <= chain.next_seq <= batch.last_seq
        ):
            return batch
    return None


def report_digest(relay: str, problem: str, at_ms: int) -> bytes:
    """The digest naming one relay report (what the hub echoes once it has recorded it)."""
    return hashlib.sha256(pack({"relay": relay, "problem": problem, "at_ms": at_ms})).digest()[:16]


def heard(report: bytes, echoed: bytes | None) -> bool:
    """Whether a page's echo settles the report: only the hub's exact echo of this report does."""
    return bool(report) and echoed == report


__all__ = ["ChainAt", "Handed", "heard", "report_digest", "skipped"]
