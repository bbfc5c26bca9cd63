"""handle_batch: one save per batch, and exactly the ledger that one-at-a-time handling gives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from domain.application import BillingApplication
from domain.commands import AuthorisePayment, Command, PublishTariff, VoidPayment
from domain.errors import IdempotencyConflictError
from domain.results import CommandResult, Outcome
from tests.unit.domain.test_application import Upstream, make_env


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


def test_a_concurrent_writer_between_decide_and_save_redoes_the_batch_on_fresh_state(
    tmp_path: Path,
) -> None:
    up = Upstream()
    setup = [up.tariff(), up.start(), up.authorise()]
    void = VoidPayment(
        event_id="other-writer-void",
        occurred_at=setup[-1].occurred_at,
        payment_id="P1",
        reason="cancelled at the terminal",
    )
    batch = [up.stop(), up.capture(988)]

    env = make_env("sqlite", tmp_path)
    app = BillingApplication(env=env)
    other = BillingApplication(env=env)  # another instance on the same ledger
    app.handle_batch(setup)
    saves = 0
    original_save = app.save

    def save_after_the_other_writer(*objs: Any, **kwargs: Any) -> Any:
        nonlocal saves
        saves += 1
        if saves == 1:  # the batch's one save: the other writer gets in first
            other.handle(void)
        return original_save(*objs, **kwargs)

    app.save = save_after_the_other_writer  # type: ignore[method-assign]
    results = app.handle_batch(batch)

    (tmp_path / "reference").mkdir()
    reference = BillingApplication(env=make_env("sqlite", tmp_path / "reference"))
    for command in [*setup, void]:
        reference.handle(command)
    reference_results = [reference.handle(command) for command in batch]
    assert saves > 1, "the batch was not redone"
    assert summary(results) == summary(reference_results)
    capture = results[1]
    assert isinstance(capture, CommandResult)
    assert capture.outcome is Outcome.REJECTED
    assert [row[1:3] for row in ledger(app)] == [row[1:3] for row in ledger(reference)]


def test_an_unexpected_error_in_one_command_is_its_result_and_the_rest_are_applied(
    tmp_path: Path,
) -> None:
    up = Upstream()
    commands = [up.tariff(), up.start(), up.authorise(), up.stop()]
    app = BillingApplication(env=make_env("popo", tmp_path))
    decide_authorise = app._deciders[AuthorisePayment]

    def broken(command: AuthorisePayment) -> Any:
        raise KeyError("a defect in the authorisation rule")

    app._deciders[AuthorisePayment] = broken
    results = app.handle_batch(commands)

    assert isinstance(results[2], KeyError)
    assert [r.outcome for r in results if isinstance(r, CommandResult)] == [Outcome.APPLIED] * 3
    assert app.get_session("S1").priced is not None
    # Once the defect is fixed, the dead-lettered message applies normally.
    app._deciders[AuthorisePayment] = decide_authorise
    (again,) = app.handle_batch([commands[2]])
    assert isinstance(again, CommandResult)
    assert again.outcome is Outcome.APPLIED


def test_a_store_that_is_down_is_raised_not_judged(tmp_path: Path) -> None:
    up = Upstream()
    app = BillingApplication(env=make_env("popo", tmp_path))

    def unavailable(*objs: Any, **kwargs: Any) -> Any:
        raise OperationalError("broker unreachable")

    app.save = unavailable  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        app.handle_batch([up.tariff(), up.start()])
