"""Every typed body of the protocol, in the order docs/protocol.md describes them.

One list, so that the specification's field tables can be checked against the code
(``tests/protocol/test_spec_tables.py``) and a new kind cannot be added without its table.
"""

from __future__ import annotations

from protocol.acks import Ack, Acks, Receipt
from protocol.blob import BlobRequest, BlobsHeld
from protocol.enrolment_docs import (
    ChallengeAnswer,
    ChallengeRequest,
    EnrolAnswer,
    EnrolChallenge,
    Enrollment,
    EnrolRequest,
)
from protocol.feed import FeedPage, FeedSpan, PullRequest, StaffEntry
from protocol.hubkey_docs import KeyBundle, KeysDoc, RootChange
from protocol.reconciliation import MerkleAnswer, ReconcileRequest, RecordsAnswer, RepairAnswer, Summary, SummaryAnswer
from protocol.release import Release

BODIES: tuple[type, ...] = (
    Acks,
    Ack,
    Receipt,
    PullRequest,
    FeedPage,
    StaffEntry,
    FeedSpan,
    Release,
    ReconcileRequest,
    MerkleAnswer,
    RecordsAnswer,
    RepairAnswer,
    SummaryAnswer,
    Summary,
    KeysDoc,
    RootChange,
    KeyBundle,
    ChallengeRequest,
    EnrolChallenge,
    ChallengeAnswer,
    EnrolRequest,
    Enrollment,
    EnrolAnswer,
    BlobRequest,
    BlobsHeld,
)

__all__ = ["BODIES"]
