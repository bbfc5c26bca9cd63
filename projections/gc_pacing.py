"""Fewer garbage collections while a projector, a rebuild or ingest runs.

A batch allocates hundreds of thousands of short-lived containers (decoded events, facts,
rows), almost none of them in reference cycles, so reference counting frees them; the
cyclic collector, run every 700 allocations by default, mostly walks live objects for
nothing. Freezing what start-up built (modules, classes) and collecting young objects
every ``YOUNG_THRESHOLD`` allocations instead took a tenth off a projector's CPU time
(measured with bench/scale.py), for at most that many uncollected objects held a little
longer.

Ingest keeps a whole batch alive until its commit (its messages, commands, aggregates,
events and ledger records: tens of thousands of containers) and frees it by reference
counting after. With the projector's young generation a batch still set off a collection or
two that walked it all and moved it to an older generation; ``INGEST_YOUNG_THRESHOLD``,
large enough to hold a batch, lets it die before any collection sees it (bench/
ingest_bench.py: 15 collections per 10,000 messages became one, about 16 -> 3 µs of
collection per message).

A projector's batch (10,000 events: their states, facts, folded rows and columns) is alive
until its last read model commits, so at the projector's old pace every collection walked
the batch in progress, about 0.45 s of collection per 64k events. ``PROJECTOR_YOUNG_THRESHOLD``
lets a collection come every few batches instead and walk what one holds at the most (0.05
s; bench/scale.py --project-only). ``evledger project``, where the projector runs alone,
takes it, and so do a rebuild's worker processes (replay/shard_processes.py; at
``YOUNG_THRESHOLD`` their collections took an eighth of their CPU time at 200,000 events);
``evledger run`` keeps ``YOUNG_THRESHOLD`` for its projector (ingest beside it raises it to
``INGEST_YOUNG_THRESHOLD`` for a batch), and the API and the rebuild process (whose peak
RSS at 2 million events was 296 MiB, not 261, at the projector's pace in one run) keep
``YOUNG_THRESHOLD``, whose pauses are shorter.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000
INGEST_YOUNG_THRESHOLD = 100_000
PROJECTOR_YOUNG_THRESHOLD = 500_000

# The thresholds each open block found, outermost first (the process has one collector).
_open: list[tuple[int, int, int]] = []


@contextmanager
def fewer_collections(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Collect young objects every ``young`` allocations inside the block, or as seldom as
    an enclosing block does if that is rarer; the previous thresholds again after it. The
    outermost block freezes what exists when it opens. Blocks nest: one in another thread
    (`evledger run`: ingest beside the projector) must close before the one it is in."""
    before = gc.get_threshold()
    outermost = not _open
    _open.append(before)
    if outermost:
        gc.freeze()
    gc.set_threshold(max(young, before[0]), *before[1:])
    try:
        yield
    finally:
        _open.pop()
        gc.set_threshold(*before)
        if outermost:
            gc.unfreeze()
