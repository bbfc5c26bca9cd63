"""Fewer garbage collections while a projector runs.

A batch allocates hundreds of thousands of short-lived containers (decoded events, facts,
rows), almost none of them in reference cycles, so reference counting frees them; the
cyclic collector, run every 700 allocations by default, mostly walks live objects for
nothing. Freezing what start-up built (modules, classes) and collecting young objects
every ``YOUNG_THRESHOLD`` allocations instead took a tenth off a projector's CPU time
(measured with bench/scale.py), for at most that many uncollected objects held a little
longer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000


# Blocks open now (a list, so the context manager needs no global statement).
_open: list[None] = []


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect less often inside the block; the previous thresholds again after it. A
    block inside another (a rebuild's projection inside the rebuild) changes nothing."""
    _open.append(None)
    if len(_open) > 1:
        try:
            yield
        finally:
            _open.pop()
        return
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        _open.pop()
        gc.set_threshold(*before)
        gc.unfreeze()
