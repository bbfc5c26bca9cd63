"""An embedded (SQLite) ledger built from a generated day of traffic, shared by the tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from consumers.contract import parse_message
from consumers.translate import to_command
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication

BATCH = 200


def apply_traffic(application: BillingApplication, seed: int = 11) -> list[dict[str, object]]:
    """Apply a generated day of upstream messages; returns the messages."""
    messages = generate(seed, TrafficShape(days=1))
    commands = [to_command(parse_message(json.dumps(m).encode())) for m in messages]
    for start in range(0, len(commands), BATCH):
        application.handle_batch(commands[start : start + BATCH])
    return messages


def refunded_payment(messages: list[dict[str, object]]) -> tuple[str, str]:
    """(payment id, refund id) of a payment with an issued refund."""
    payment_of = {
        m["refund_id"]: m["payment_id"] for m in messages if m["type"] == "refund.requested"
    }
    refund_id = next(str(m["refund_id"]) for m in messages if m["type"] == "refund.issued")
    return str(payment_of[refund_id]), refund_id


@pytest.fixture(scope="session")
def built_embedded_ledger(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[dict[str, object]]]:
    data_dir = tmp_path_factory.mktemp("embedded-ledger")
    application = BillingApplication(
        env=bootstrap(Settings(data_dir=data_dir)).ledger.environment()
    )
    try:
        messages = apply_traffic(application)
    finally:
        application.close()
    return data_dir, messages


@pytest.fixture
def embedded(
    built_embedded_ledger: tuple[Path, list[dict[str, object]]], tmp_path: Path
) -> Settings:
    """Settings of a private copy of the generated embedded ledger."""
    source, _ = built_embedded_ledger
    data_dir = tmp_path / "source"
    shutil.copytree(source, data_dir)
    return Settings(data_dir=data_dir)


@pytest.fixture
def traffic(built_embedded_ledger: tuple[Path, list[dict[str, object]]]) -> list[dict[str, object]]:
    return built_embedded_ledger[1]
