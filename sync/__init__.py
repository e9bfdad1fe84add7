"""What every Sanji replica agrees on: clocks, changes, the entity model and its fold, the workflow,
the working-day calendar, batching, sync sessions and reconciliation digests.

Pure: no I/O, no clock, no randomness. Time, ids and keys are passed in.
"""
