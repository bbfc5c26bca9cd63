"""The ledger compared event for event: the rows a ledger holds, and the rows a clean
in-memory run of the same upstream messages gives. Shared by the ingest tests, the cluster
tests and the chaos bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consumers.contract import parse_message
from consumers.translate import to_command
from domain.application import BillingApplication

Rows = list[tuple[Any, ...]]


def ledger_rows(application: BillingApplication) -> Rows:
    """The ledger as (id, topic, version, state without the recording time)."""
    rows = []
    start = 1
    while True:
        page = application.recorder.select_notifications(start=start, limit=1000)
        for notification in page:
            event = application.mapper.to_domain_event(notification)
            state = {k: v for k, v in event.__dict__.items() if k != "timestamp"}
            rows.append(
                (notification.id, notification.topic, notification.originator_version, state)
            )
        if len(page) < 1000:
            return rows
        start = page[-1].id + 1


def expected_ledger(messages: list[dict[str, Any]]) -> Rows:
    """The ledger the same messages give with no failure at all: in memory, no services."""
    reference = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    commands = [to_command(parse_message(json.dumps(m).encode())) for m in messages]
    for at in range(0, len(commands), 500):
        reference.handle_batch(commands[at : at + 500])
    return ledger_rows(reference)


def kafka_ledger_rows(bootstrap_servers: str, topic_prefix: str, data_dir: Path) -> Rows:
    """The rows of the Kafka ledger ``<topic_prefix>.ledger`` (data_dir: the reader's
    index files)."""
    from bootstrap import Settings, bootstrap

    settings = Settings(
        kafka_bootstrap=bootstrap_servers, topic_prefix=topic_prefix, data_dir=data_dir
    )
    application = BillingApplication(env=bootstrap(settings).ledger.environment())
    try:
        return ledger_rows(application)
    finally:
        application.close()
