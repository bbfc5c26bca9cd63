"""The write application on the Kafka ledger asks for all of a batch's message records in
one index look-up, and judges repeats exactly as one look-up per message would."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from domain.application import BillingApplication
from domain.ids import processed_message_id
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
        assert wallets.recorder.recorded_originators([*opened, *never]) == opened  # type: ignore[attr-defined]
        assert wallets.recorder.recorded_originators([]) == set()  # type: ignore[attr-defined]
    finally:
        wallets.close()


def test_repeats_are_judged_as_one_by_one_look_ups_judge_them(
    kafka_bootstrap: str, ledger_topic: str, tmp_path: Path
) -> None:
    up = Upstream()
    tariff, start, start_s2 = up.tariff(), up.start(), up.start("S2", 0)
    batches = [[tariff, start], [start, start_s2, start_s2, up.authorise(), tariff]]

    reference = BillingApplication(env=make_env("popo", tmp_path))
    expected = [reference.handle(command) for batch in batches for command in batch]

    app = BillingApplication(env=app_env(kafka_bootstrap, ledger_topic))
    looked_up: list[Any] = []
    select_events = app.recorder.select_events

    def recording(originator_id: Any, **kwargs: Any) -> Any:
        looked_up.append(originator_id)
        return select_events(originator_id, **kwargs)

    app.recorder.select_events = recording  # type: ignore[method-assign]
    try:
        results: list[CommandResult | Exception] = []
        for batch in batches:
            results.extend(app.handle_batch(batch))
    finally:
        app.close()

    assert summary(results) == summary(expected)
    outcomes = [r.outcome for r in results if isinstance(r, CommandResult)]
    assert outcomes.count(Outcome.DUPLICATE) == 3
    # New messages were found new by the batch's one look-up, not one by one; only the
    # records of messages already processed are read (to judge the repeat).
    new_messages = {processed_message_id(c.event_id) for c in (start_s2, batches[1][3])}
    assert not new_messages & set(looked_up)
    assert processed_message_id(start.event_id) in looked_up
