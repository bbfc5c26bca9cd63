"""Garbage-collection pacing is confined to its block: the projector's, ingest's, nested."""

from __future__ import annotations

import gc

import pytest

from projections.gc_pacing import (
    INGEST_YOUNG_THRESHOLD,
    PROJECTOR_YOUNG_THRESHOLD,
    YOUNG_THRESHOLD,
    fewer_collections,
)

# The API's and a rebuild's pace, ingest's rarer one and the projector's rarest.
PACES = pytest.mark.parametrize(
    "young", [YOUNG_THRESHOLD, INGEST_YOUNG_THRESHOLD, PROJECTOR_YOUNG_THRESHOLD]
)


@PACES
def test_thresholds_and_frozen_objects_come_back_after_the_block(young: int) -> None:
    before = gc.get_threshold()
    with fewer_collections(young):
        assert gc.get_threshold() == (young, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@PACES
def test_an_error_inside_the_block_restores_them_too(young: int) -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections(young):
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_block_inside_another_leaves_the_outer_one_in_force() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        with fewer_collections():
            pass
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_batch_of_garbage_dies_before_any_collection_walks_it() -> None:
    with fewer_collections(INGEST_YOUNG_THRESHOLD):
        collected = gc.get_stats()[0]["collections"]
        for _ in range(5):
            # A batch's worth of containers (more than the projector's young generation
            # holds), alive together, then freed.
            batch = [{"n": n, "items": [n]} for n in range(15_000)]
            del batch
        assert gc.get_stats()[0]["collections"] == collected


def test_a_rarer_pace_inside_a_block_holds_until_it_closes() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        with fewer_collections(INGEST_YOUNG_THRESHOLD):
            assert gc.get_threshold()[0] == INGEST_YOUNG_THRESHOLD
            with fewer_collections():
                assert gc.get_threshold()[0] == INGEST_YOUNG_THRESHOLD
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
