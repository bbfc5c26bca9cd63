"""handle_batch: one save per batch, and exactly the ledger that one-at-a-time handling gives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.application import BillingApplication
from domain.commands import Command, PublishTariff
from domain.errors import IdempotencyConflictError
from domain.results import CommandResult, Outcome
from tests.unit.test_application import Upstream, make_env


def scenario(up: Upstream) -> list[Command]:
    """Two sessions, captures before and after pricing, refunds of both kinds, repeats."""
    tariff = up.tariff()
    start = up.start()
    capture_early = up.capture(900)
    commands: list[Command] = [
        tariff,
        start,
        up.start("S2", 0),
        up.authorise(),
        capture_early,  # captured before the session is priced: reconciled at the stop
        up.stop(),
        up.stop("S2", 0),  # a 0 Wh session
        start,  # the same message again, inside the batch
        up.refund("R1", 100, "overcharge"),
        up.refund("R2", 5000),  # above the refundable balance: rejected automatically
        up.capture(10, payment_id="P-unknown"),
        up.tariff(price_per_kwh=Decimal("0.45")),
        tariff,
    ]
    return commands


def ledger(app: BillingApplication) -> list[tuple[Any, ...]]:
    """The stored events without their recording times, in notification order."""
    rows = []
    for notification in app.recorder.select_notifications(start=1, limit=100_000):
        event = app.mapper.to_domain_event(notification)
        state = {k: v for k, v in event.__dict__.items() if k != "timestamp"}
        rows.append((notification.id, notification.topic, notification.originator_version, state))
    return rows


def summary(results: Sequence[CommandResult | Exception]) -> list[Any]:
    return [
        type(result).__name__
        if isinstance(result, Exception)
        else (result.outcome, result.rejection_reason, result.event_names)
        for result in results
    ]


@pytest.mark.parametrize("backend", ["popo", "sqlite"])
@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_batches_store_exactly_what_single_commands_store(
    backend: str, batch_size: int, tmp_path: Path
) -> None:
    commands = scenario(Upstream())
    (tmp_path / "single").mkdir()
    single = BillingApplication(env=make_env(backend, tmp_path / "single"))
    single_results = [single.handle(command) for command in commands]

    (tmp_path / "batched").mkdir()
    batched = BillingApplication(env=make_env(backend, tmp_path / "batched"))
    batched_results: list[CommandResult | Exception] = []
    for at in range(0, len(commands), batch_size):
        batched_results.extend(batched.handle_batch(commands[at : at + batch_size]))

    assert summary(batched_results) == summary(single_results)
    assert ledger(batched) == ledger(single)
    assert Outcome.DUPLICATE in [r.outcome for r in single_results]
    assert Outcome.REJECTED in [r.outcome for r in single_results]


def test_a_batch_is_one_insert(tmp_path: Path) -> None:
    app = BillingApplication(env=make_env("popo", tmp_path))
    inserts: list[int] = []
    original = app.recorder.insert_events

    def counting_insert(events: Any, **kwargs: Any) -> Any:
        inserts.append(len(events))
        return original(events, **kwargs)

    app.recorder.insert_events = counting_insert  # type: ignore[method-assign]
    app.handle_batch(scenario(Upstream()))
    assert len(inserts) == 1
    assert inserts[0] == len(app.recorder.select_notifications(start=1, limit=10_000))


def test_a_reused_event_id_comes_back_as_its_error_and_the_rest_is_applied(
    tmp_path: Path,
) -> None:
    up = Upstream()
    tariff = up.tariff()
    reused = replace(tariff, price_per_kwh=Decimal("0.99"))
    assert isinstance(reused, PublishTariff)
    app = BillingApplication(env=make_env("popo", tmp_path))
    results = app.handle_batch([tariff, reused, up.start()])
    assert isinstance(results[1], IdempotencyConflictError)
    assert [r.outcome for r in results if isinstance(r, CommandResult)] == [
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    assert app.get_session("S1").session_id == "S1"
