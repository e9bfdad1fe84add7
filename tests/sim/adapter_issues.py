"""A record: the adapter bugs (node/, hub/, replica/) the simulator found while it ran a mirror of the
adapters, each with how it went wrong. All of them are fixed in the real code, which the simulator now
runs itself (district.py), and ``FIXED_IN`` says where; the regression seeds in test_sim.py that found
them run against that code. ``python -m tests.sim --list-issues`` prints this.
"""

from __future__ import annotations

ADAPTER_ISSUES: dict[str, str] = {
    "reconcile_returns_own_future_seqs": (
        "node/reconcile.py _apply_theirs() takes the station's own changes back from the hub without looking "
        "at their seqs. A station whose database was copied back by hand (so it is still in its old epoch, "
        "with its seq counter rewound) gets its lost changes back from the nightly reconciliation under seqs "
        "above its counter. Its next write then reuses one of those (origin, epoch, seq) keys: "
        "RecordStore.apply() skips it as a duplicate, yet Station.write() commits the new seq and the command "
        "reports success, so an application the station 'accepted' (and numbered, and printed a receipt "
        "for) exists nowhere, not even at the station. node/uplink.py build_outbox() also batches the "
        "returned changes as new and moves batched_seq past the counter. A station handed its own change "
        "beyond its counter knows it was copied back: it should start a new epoch at once"
    ),
    "fork_ack_requeues_superseded": (
        "node/uplink.py record_acks() sets a batch answered with FORK to 'rejected' before reissue_after_fork() "
        "runs; the first time, the re-issue then marks it 'superseded', but a second copy of that answer (a "
        "duplicated response, or the acks file carried back by hand) finds the epoch already moved on, so the "
        "re-issue does nothing and the batch stays 'rejected': it is offered again on every push, answered FORK "
        "every time, and the station never shows itself synced; leaving a superseded batch alone fixes it"
    ),
    "duplicate_number_blocks_ingest": (
        "replica/records.py keeps a UNIQUE index on applications.number. A station copied back by hand has "
        "its counter rewound, so it can hand out again a number it already gave another application the "
        "same day (numbers are unique by construction only while the counter never goes back), and "
        "node/epoch.py reissue_after_fork() re-issues that application with its number unchanged (the "
        "number is FIXED once written, and the citizen holds it on a receipt). At the hub the repeat is an "
        "IntegrityError: ingest fails with HTTP 500 for that batch and every later one, and the station's "
        "reconciliation fails the same way, so its queue never drains and its later applications never "
        "arrive. The hub already raises a fork alert for such a station; it should record the repeated "
        "number for the operator (and the station should number anything new in a new epoch) rather than "
        "fail the transaction"
    ),
    "held_identical_batch_is_fork": (
        "hub/ingest.py _all_held_identically() looks for the batch's changes only in the changes table. After "
        "a hub restore, a station's nightly repair re-sends what the hub lost and _fast_forward() moves the "
        "cursor past it, but a re-sent change whose application the restored hub does not hold yet is held in "
        "quarantine instead; when the original batch file then arrives (a USB stick, a retry) it overlaps "
        "seqs the hub holds without a batch record, classify() says FORK, and the quarantined copy is not "
        "recognised as identical: a false fork alarm, the batch held whole, and the station re-issuing its "
        "changes under a new epoch; counting identical changes held in quarantine as held fixes it"
    ),
    "hub_restore_reuses_own_seqs": (
        "hub/service.py writes the hub's own changes (operator decisions, notes) always under epoch 1 with the "
        "seq kept in hub_meta, and hub/restore.py puts a backup back without moving to a new epoch; the hub "
        "then hands out again the seqs of decisions it made after the backup, with other content; stations "
        "that already hold the lost decisions skip the new ones as duplicates of (origin, epoch, seq), so "
        "their records and the hub's never agree again; a restore should start a new epoch for the hub's "
        "own changes, as node/epoch.py does for a station"
    ),
    "feed_page_skips_ahead": (
        "node/uplink.py apply_feed() moves feed_cursor to a page's 'next' without checking that the page starts "
        "at or before the cursor. A page asked for before the cursor went back (the first page after a hub "
        "restore, whose 'after' is the old generation's cursor, or any page from before the station's own "
        "restore), taken again later (a duplicated answer, or a feed file imported by hand), moves the "
        "cursor past entries the station never pulled, and the feed never offers them again; only the "
        "nightly reconciliation can repair it. The generation switch also throws that page away, so taking "
        "the same page twice has different effects. Moving the cursor only when 'after' <= cursor (and "
        "keeping the authentic changes of the page that switched generation) fixes both"
    ),
    "restore_rolls_back_catalogue": (
        "node/epoch.py restore() copies the whole backup over the database, catalogues table included, so a "
        "station restored from a backup older than its newest release goes back to a lower catalogue version "
        "(DESIGN: a node never goes to a lower version) and accepts applications under the old release until "
        "its next pull; keeping the newer signed releases across the restore fixes it"
    ),
    "restore_rewinds_hlc": (
        "node/epoch.py restore() puts back the backup's hlc with everything else; when the clock has gone back "
        "since (a wrong clock corrected between backup and restore), the station stamps its next writes at or "
        "below stamps it already used, so its later edits can lose last-writer-wins against its own earlier "
        "ones; restore should keep the newest stamp it can read from the database it replaces"
    ),
}


FIXED_IN: dict[str, str] = {
    "reconcile_returns_own_future_seqs": "node/reconcile.py _apply_theirs: a new epoch at once",
    "fork_ack_requeues_superseded": "sync/outbox.py: SUPERSEDED absorbs a fork or refusal answered again",
    "duplicate_number_blocks_ingest": "hub/schema.py, node/store.py: the number index is not unique",
    "held_identical_batch_is_fork": "hub/ingest.py _all_held_identically: quarantined copies count",
    "hub_restore_reuses_own_seqs": "hub/restore.py: the restored hub continues in a new epoch",
    "feed_page_skips_ahead": "sync/feed_cursor.py: a page that starts past the cursor is EARLY, refused",
    "restore_rolls_back_catalogue": "node/epoch.py restore: newer releases are kept",
    "restore_rewinds_hlc": "node/epoch.py restore: the newest stamp is kept",
}
