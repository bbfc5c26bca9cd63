"""The traffic generator's stream: generate()'s order, one message at a time, so a
benchmark takes the first N of a long traffic without generating the rest."""

from __future__ import annotations

import itertools

from demo.traffic import TrafficShape, generate, stream


def test_the_stream_is_in_time_order_with_ties_in_generation_order() -> None:
    messages = list(stream(seed=5, shape=TrafficShape(days=4)))
    keys = [m["occurred_at"] for m in messages]
    assert keys == sorted(keys)
    for earlier, later in itertools.pairwise(messages):
        if earlier["occurred_at"] == later["occurred_at"]:
            assert earlier["event_id"] < later["event_id"]


def test_the_first_messages_of_a_very_long_traffic_come_without_generating_it() -> None:
    shape = TrafficShape(stations=12, customers=400, days=10)
    short = generate(seed=9, shape=shape)
    # Refunds of the last day fall after it in the short traffic only; stop before them.
    cut = sum(1 for m in short if m["occurred_at"] < "2026-03-11")
    # A million days: generated up front, they would not fit in memory.
    long = list(itertools.islice(stream(seed=9, shape=TrafficShape(12, 400, 1_000_000)), cut))
    assert long == short[:cut]
