"""Checksums a sharded rebuild's workers took early count only where the models stand
exactly where they stood then, on every shard; anything else is checksummed again. Rebuilt
checksums taken while the rebuild moved are not offered for the live tables either."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from replay.checksum import TableChecksum
from replay.home_sqlite import SqliteHome
from replay.rebuild import Remote
from replay.shard_processes import ShardWorkers
from replay.targets import ModelGroup

GROUP = ModelGroup(SqliteHome(Path("views.sqlite3")), (PaymentHistory, RefundStatusView))
SUMS = {"payment_history": TableChecksum("payment_history", 3, 7)}
TAKEN_AT = {
    "payment_history": 10,
    "payment_history@1": 12,
    "refund_status": 10,
    "refund_status@1": 12,
    "analytics": 4,  # another group's model in the same answer: not this group's business
}


def remote(positions: dict[str, int] | None) -> Remote:
    # The workers are not asked anything here: only what they answered is looked at.
    taken = Remote(cast(ShardWorkers, None), 0, ["payment_history"])
    taken.early = {True: (SUMS, positions), False: (SUMS, positions)}
    return taken


def test_early_checksums_count_at_the_positions_they_were_taken_at() -> None:
    ours = {name: at for name, at in TAKEN_AT.items() if name != "analytics"}
    assert remote(TAKEN_AT).live_at(ours, GROUP) == SUMS
    assert remote(TAKEN_AT).rebuilt_at(ours, GROUP) == SUMS


def test_a_model_moved_on_any_shard_is_checksummed_again() -> None:
    moved = {name: at for name, at in TAKEN_AT.items() if name != "analytics"}
    moved["refund_status@1"] = 13
    assert remote(TAKEN_AT).live_at(moved, GROUP) is None
    assert remote(TAKEN_AT).rebuilt_at(moved, GROUP) is None


def test_checksums_taken_while_the_models_moved_never_count() -> None:
    ours = {name: at for name, at in TAKEN_AT.items() if name != "analytics"}
    assert remote(None).live_at(ours, GROUP) is None
    assert remote(None).rebuilt_at(ours, GROUP) is None


def test_no_early_checksums_means_checksumming_when_compared() -> None:
    empty = Remote(cast(ShardWorkers, None), 0, ["payment_history"])
    assert empty.live_at({}, GROUP) is None
    empty.early = {True: None}  # the workers could not take them (no live model yet)
    assert empty.live_at({}, GROUP) is None


class _Answering:
    """The workers as Remote sees them: the rebuilt checksums answered at ``positions``;
    what the live checksums were asked with is kept."""

    def __init__(self, positions: dict[str, int] | None) -> None:
        self.positions = positions
        self.asked_like: list[Mapping[str, TableChecksum] | None] = []

    def ask_checksums(
        self, group: int, tables: Sequence[str], *, live: bool = False, **more: Any
    ) -> int:
        if live:
            self.asked_like.append(more.get("like"))
        return int(live)

    def collect_checksums(self, ticket: int) -> tuple[dict[str, TableChecksum], Any]:
        return SUMS, self.positions


def test_only_rebuilt_checksums_taken_at_known_positions_stand_for_the_live_ones() -> None:
    for positions, like in [(TAKEN_AT, SUMS), (None, None)]:
        workers = _Answering(positions)
        early = Remote(cast(ShardWorkers, workers), 0, ["payment_history"])
        early.ask(live=False)
        early.collect()
        assert workers.asked_like == [like]


def test_live_checksums_the_rebuild_process_took_ask_no_live_task() -> None:
    # Taken by the rebuild process while the workers checksummed the rebuilt tables
    # (Remote.checksum_live): they count where the live models stood then.
    workers = _Answering(TAKEN_AT)
    taken = Remote(cast(ShardWorkers, workers), 0, ["payment_history"])
    taken.early[True] = (SUMS, {"payment_history": 10})
    taken.ask(live=False)
    taken.collect()
    assert workers.asked_like == []
    assert taken.early[True] == (SUMS, {"payment_history": 10})
    assert taken.early[False] == (SUMS, TAKEN_AT)


def test_live_fingerprints_equal_to_the_rebuilt_ones_give_the_rebuilt_checksums() -> None:
    # Fingerprinted by the rebuild process (Remote.checksum_live) where the home has
    # fingerprints: a table whose fingerprint is its rebuilt twin's has its checksum.
    printed = {"payment_history": TableChecksum("payment_history", 3, 7, fingerprint="3:9:c")}
    at = {"payment_history": 10}
    for live_print, asked in [("3:9:c", []), ("3:8:c", [printed]), (None, [printed])]:
        workers = _Answering(TAKEN_AT)
        workers.collect_checksums = lambda ticket: (printed, TAKEN_AT)  # type: ignore[method-assign]
        remote = Remote(cast(ShardWorkers, workers), 0, ["payment_history"])
        remote.live_prints = ({"payment_history": live_print}, at)
        remote.ask(live=False)
        remote.collect()
        assert workers.asked_like == asked
        if not asked:
            taken = remote.early[True]
            assert taken == (printed, at)
            assert taken[0]["payment_history"] is printed["payment_history"]


def test_live_fingerprints_stand_for_nothing_when_the_rebuilt_checksums_moved() -> None:
    workers = _Answering(None)  # the rebuilt tables moved while they were checksummed
    remote = Remote(cast(ShardWorkers, workers), 0, ["payment_history"])
    remote.live_prints = ({"payment_history": None}, {"payment_history": 10})
    remote.ask(live=False)
    remote.collect()
    assert workers.asked_like == [None]
