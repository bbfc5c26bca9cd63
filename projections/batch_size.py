"""How many ledger events a projector or a rebuild applies per read-model transaction: a
module of its own, so that the command line shows it in --help without importing the
projector (and the event-sourcing library with it)."""

from __future__ import annotations

# Each Kafka poll still takes at most store.reader.POLL_RECORDS. Every table costs its
# database a statement per batch whatever its rows (DuckDB about 8 ms for an upsert), so
# larger batches cost less per event: 10,000 took a quarter off a projector's CPU against
# 2,000. Rebuilds, which write far more per batch, use it too.
DEFAULT_BATCH_SIZE = 10_000
