"""The sweep of killed rebuilds' leftovers (replay/leftovers.py) says what it removed in one
line; a home it cannot sweep (its server down, another role's schema) is a warning line of
its own, never the end of the command, and the other homes are swept all the same."""

from __future__ import annotations

from typing import Any

from projections.databases.errors import DatabaseUnavailable
from replay.leftovers import remove_leftovers
from replay.targets import Leftover


class _Home:
    def __init__(self, found: list[Leftover] | Exception) -> None:
        self.found = found

    def remove_abandoned_rebuilds(self) -> list[Leftover]:
        if isinstance(self.found, Exception):
            raise self.found
        return self.found


def test_a_home_that_cannot_be_swept_is_a_warning_and_the_others_are_swept() -> None:
    homes: list[Any] = [
        _Home(DatabaseUnavailable("PostgreSQL at 127.0.0.1:9: connection refused\nhint")),
        _Home([Leftover("analytics.rebuild-x.duckdb", 3 * 1024 * 1024)]),
    ]
    said: list[str] = []
    remove_leftovers(homes, said.append)
    assert said == [
        "cannot remove what killed rebuilds left behind: PostgreSQL at 127.0.0.1:9:"
        " connection refused",
        "removed what killed rebuilds left behind, 3.0 MiB: analytics.rebuild-x.duckdb (3.0 MiB)",
    ]


def test_nothing_left_behind_says_nothing() -> None:
    said: list[str] = []
    remove_leftovers([_Home([])], said.append)  # type: ignore[list-item]
    assert said == []
