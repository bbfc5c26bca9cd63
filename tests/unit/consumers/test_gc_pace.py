"""Ingest's garbage-collection pace is confined to its block, inside the projector's."""

from __future__ import annotations

import gc

import pytest

from consumers.gc_pace import YOUNG_THRESHOLD, ingest_collections


def test_ingest_collects_over_its_larger_young_generation_inside_the_block_only() -> None:
    before = gc.get_threshold()
    with ingest_collections():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_an_error_inside_the_block_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), ingest_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_batch_of_garbage_dies_before_any_collection_walks_it() -> None:
    with ingest_collections():
        collected = gc.get_stats()[0]["collections"]
        for _ in range(5):
            # A batch's worth of containers (more than the projector's young generation
            # holds), alive together, then freed.
            batch = [{"n": n, "items": [n]} for n in range(15_000)]
            del batch
        assert gc.get_stats()[0]["collections"] == collected
