"""The write application on the Kafka ledger asks for the last versions of every aggregate a
batch names in one index look-up, and decides exactly as one look-up per aggregate would."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.application import BillingApplication
from domain.commands import ApproveRefund
from domain.ids import payment_aggregate_id, processed_message_id
from domain.results import CommandResult, Outcome
from tests.integration.store.test_ledger import Wallets, app_env
from tests.unit.domain.test_application import Upstream, make_env
from tests.unit.domain.test_batches import summary

pytestmark = pytest.mark.kafka


def test_the_recorder_tells_which_aggregates_have_events(
    kafka_bootstrap: str, ledger_topic: str
) -> None:
    wallets = Wallets(env=app_env(kafka_bootstrap, ledger_topic))
    try:
        opened = {wallets.open(owner) for owner in ("ada", "bob")}
        never = {uuid.uuid4(), uuid.uuid4()}
        wallet = next(iter(opened))
        wallets.credit(wallet, 5)
        recorder: Any = wallets.recorder
        versions = recorder.recorded_versions([*opened, *never])
        assert versions == {wallet: 2, **{other: 1 for other in opened - {wallet}}}
        assert recorder.recorded_versions([]) == {}
    finally:
        wallets.close()


def reads_of(app: BillingApplication) -> list[Any]:
    """The ids whose events ``app`` reads from its recorder from now on, in order."""
    read: list[Any] = []
    select_events = app.recorder.select_events

    def recording(originator_id: Any, **kwargs: Any) -> Any:
        read.append(originator_id)
        return select_events(originator_id, **kwargs)

    app.recorder.select_events = recording  # type: ignore[method-assign]
    return read


def test_a_batch_reads_only_what_its_one_look_up_cannot_settle(
    kafka_bootstrap: str, ledger_topic: str, tmp_path: Path
) -> None:
    up = Upstream()
    tariff, start, start_s2, authorise = up.tariff(), up.start(), up.start("S2", 0), up.authorise()
    batches = [[tariff, start], [start, start_s2, start_s2, authorise, tariff]]

    reference = BillingApplication(env=make_env("popo", tmp_path))
    expected = [reference.handle(command) for batch in batches for command in batch]

    app = BillingApplication(env=app_env(kafka_bootstrap, ledger_topic))
    read = reads_of(app)
    try:
        results = list(app.handle_batch(batches[0]))
        read.clear()
        results.extend(app.handle_batch(batches[1]))
    finally:
        app.close()

    assert summary(results) == summary(expected)
    outcomes = [r.outcome for r in results if isinstance(r, CommandResult)]
    assert outcomes.count(Outcome.DUPLICATE) == 3
    # New messages, the new session and payment were found absent by the one look-up, and
    # the tariff kept from the first batch was found current: only the records of the
    # messages seen before are read (to judge the repeats).
    assert sorted(map(str, read)) == sorted(
        str(processed_message_id(command.event_id)) for command in (start, tariff)
    )


def test_a_kept_aggregate_that_another_writer_moved_on_is_brought_up_to_date(
    kafka_bootstrap: str, ledger_topic: str
) -> None:
    up = Upstream()
    env = app_env(kafka_bootstrap, ledger_topic)
    app, other = BillingApplication(env=env), BillingApplication(env=env)
    try:
        app.handle_batch([up.tariff(), up.start()])
        other.handle(up.tariff(price_per_kwh=Decimal("0.45")))
        app.handle_batch([up.start("S2", 0)])
        assert app.get_session("S2").tariff_version == 2
    finally:
        other.close()
        app.close()


def test_refunds_reach_the_kept_session_and_payment_without_a_read(
    kafka_bootstrap: str, ledger_topic: str, tmp_path: Path
) -> None:
    up = Upstream()
    first = [up.tariff(), up.start(), up.stop(), up.authorise(amount=988), up.capture(988)]
    request = up.refund("R1", 300)
    # Requested and approved by another writer, between the batches: the approval moves the
    # payment on (a refund approved against it).
    elsewhere = [
        up.refund("R3", 100),
        ApproveRefund(
            event_id=up.next_id(), occurred_at=request.occurred_at, refund_id="R3", decided_by="ops"
        ),
    ]
    approve = ApproveRefund(
        event_id=up.next_id(), occurred_at=request.occurred_at, refund_id="R1", decided_by="ops"
    )

    reference = BillingApplication(env=make_env("popo", tmp_path))
    expected = [reference.handle(command) for command in [*first, request, *elsewhere, approve]]
    del expected[-3:-1]

    app = BillingApplication(env=app_env(kafka_bootstrap, ledger_topic))
    other = BillingApplication(env=app_env(kafka_bootstrap, ledger_topic))
    read = reads_of(app)
    try:
        results = list(app.handle_batch(first))
        read.clear()
        # The request names its payment, kept; its session is reached through it, kept and
        # current: found by the batch's one look-up, nothing read.
        results.extend(app.handle_batch([request]))
        assert read == []
        # Another writer moves the kept payment on: the approval reaches it through the
        # kept refund, and its look-up finds it behind, so it is brought up to date.
        for command in elsewhere:
            other.handle(command)
        read.clear()
        results.extend(app.handle_batch([approve]))
        # Only the payment is read, forward from its kept version (a stale one used would
        # meet a version conflict, and the redo reads every aggregate it needs again).
        assert read == [payment_aggregate_id("P1")]
    finally:
        other.close()
        app.close()
    assert summary(results) == summary(expected)
