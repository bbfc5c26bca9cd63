"""How a rebuild's work is split into worker units (a shard's database groups apart only
when every shard and group has a core of its own), and the checksums into worker shares."""

from __future__ import annotations

import pytest

from replay.shard_processes import Unit, _shares, work_units, worker_units


def test_one_shard_on_two_cores_is_a_unit_per_group() -> None:
    assert work_units(1, 2, cores=2) == [Unit(0, 0), Unit(0, 1)]


def test_one_shard_on_one_core_is_one_unit_rebuilt_in_process() -> None:
    assert work_units(1, 2, cores=1) == [Unit(0)]


def test_one_group_is_never_split() -> None:
    assert work_units(1, 1, cores=4) == [Unit(0)]


def test_as_many_shards_as_cores_is_a_unit_per_shard() -> None:
    assert work_units(3, 2, cores=2) == [Unit(0), Unit(1), Unit(2)]


def test_fewer_cores_than_shards_and_groups_is_a_unit_per_shard() -> None:
    # Six units on four workers would have two read one shard twice, one after the other.
    assert work_units(3, 2, cores=4) == [Unit(0), Unit(1), Unit(2)]
    assert work_units(3, 2, cores=5) == [Unit(0), Unit(1), Unit(2)]


def test_a_core_for_every_shard_and_group_is_a_unit_each() -> None:
    assert work_units(3, 2, cores=6) == [Unit(s, g) for s in range(3) for g in range(2)]
    assert work_units(2, 2, cores=4) == [Unit(s, g) for s in range(2) for g in range(2)]


def test_checksum_shares_are_even_by_values() -> None:
    # Analytics' postings are most of its values: one worker takes them, the other the rest.
    values = {"postings": 130, "line_items": 60, "sessions": 50, "tariffs": 3}
    assert _shares(list(values), 2, values) == [
        ["postings"],
        ["line_items", "sessions", "tariffs"],
    ]
    # As many rows, but payment_history's 35 columns against three each.
    values = {"payment_history": 35 * 10, "sessions": 16 * 10, "a": 3 * 10, "b": 3 * 10}
    assert _shares(list(values), 2, values) == [["payment_history"], ["sessions", "a", "b"]]
    assert _shares(["a", "b", "c"], 2, {}) == [["a", "c"], ["b"]]
    assert _shares(["a"], 3, {"a": 5}) == [["a"], [], []]


def test_no_worker_has_two_units_of_one_shard() -> None:
    # Shard-major units, every count-th to a worker: a shard's units are in different ones.
    for shards, groups, cores in [(1, 2, 2), (2, 2, 4), (3, 2, 6), (2, 3, 6)]:
        units = work_units(shards, groups, cores=cores)
        for count in range(groups, len(units) + 1):
            shares = worker_units(units, count)
            assert sorted(unit for share in shares for unit in share) == list(range(len(units)))
    with pytest.raises(ValueError, match="two units of one shard"):
        worker_units([Unit(0, 0), Unit(0, 1)], 1)
