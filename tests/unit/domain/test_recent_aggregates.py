"""Aggregates kept from one batch to the next: the same ledger as without them, what
another writer stored since is seen, a failed batch keeps nothing, and the count is bounded."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.application import BillingApplication
from domain.commands import AuthorisePayment
from domain.recent_aggregates import RecentAggregates
from domain.results import CommandResult
from domain.settlement import SessionSettlement
from tests.unit.domain.test_application import Upstream, make_env
from tests.unit.domain.test_batches import ledger, scenario, summary


@pytest.mark.parametrize("cache_size", [0, 2, 4096])
def test_batches_with_kept_aggregates_store_what_single_commands_store(
    cache_size: int, tmp_path: Path
) -> None:
    commands = scenario(Upstream())
    single = BillingApplication(env=make_env("popo", tmp_path))
    single_results = [single.handle(command) for command in commands]

    batched = BillingApplication(env=make_env("popo", tmp_path), aggregate_cache_size=cache_size)
    batched_results: list[CommandResult | Exception] = []
    for at in range(0, len(commands), 2):
        batched_results.extend(batched.handle_batch(commands[at : at + 2]))
        assert len(batched._recent) <= cache_size

    assert summary(batched_results) == summary(single_results)
    assert ledger(batched) == ledger(single)


def test_a_kept_aggregate_is_brought_up_to_what_another_writer_stored(tmp_path: Path) -> None:
    up = Upstream()
    env = make_env("sqlite", tmp_path)
    app = BillingApplication(env=env)
    other = BillingApplication(env=env)  # another process on the same ledger
    app.handle_batch([up.tariff(), up.start()])
    assert len(app._recent) == 2  # the tariff and the session

    other.handle(up.tariff(price_per_kwh=Decimal("0.45")))  # revised behind app's back
    app.handle_batch([up.start("S2", 0)])

    assert app.get_session("S2").tariff_version == 2
    assert app.get_session("S1").tariff_version == 1


def test_a_batch_that_fails_keeps_nothing(tmp_path: Path) -> None:
    up = Upstream()
    app = BillingApplication(env=make_env("popo", tmp_path))
    app.handle_batch([up.tariff(), up.start()])
    assert len(app._recent) == 2

    def broken(command: AuthorisePayment) -> Any:
        raise KeyError("a defect in the authorisation rule")

    app._deciders[AuthorisePayment] = broken
    results = app.handle_batch([up.authorise(), up.stop()])

    assert isinstance(results[0], KeyError)
    assert len(app._recent) == 0
    assert app.get_session("S1").priced is not None


def test_an_aggregate_with_unsaved_events_is_not_kept() -> None:
    kept = RecentAggregates(size=2)
    session = SessionSettlement.open("S1")
    kept.keep(session)
    assert len(kept) == 0
    session.collect_events()
    kept.keep(session)
    assert kept.get(session.id) is session
