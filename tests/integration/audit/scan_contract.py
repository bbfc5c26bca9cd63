"""What every ``LedgerScan`` must do, written once: each ledger's test module subclasses
``LedgerScanTestCase`` and says how its ledger is made and read (as the eventsourcing
library's ``tests.persistence`` test cases are subclassed per recorder)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest
from eventsourcing.persistence import Notification

from audit.scan import LedgerScan, LedgerUnavailable, ScannedRecord
from bootstrap import bootstrap
from bootstrap.settings import Settings
from consumers.contract import parse_message
from consumers.translate import to_command
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from store.records import GENESIS_HASH

# A small day: enough for every kind of event, quick to write to a real broker.
SHAPE = TrafficShape(stations=2, customers=12)


def uuid_text(originator_id: Any) -> str:
    """An originator id as the Kafka ledger writes it (a UUID with dashes)."""
    try:
        return str(UUID(str(originator_id)))
    except ValueError:
        return str(originator_id)


class Ledger:
    """A ledger written by the billing application, and its events as the store read them."""

    def __init__(self, settings: Settings, seed: int = 3) -> None:
        self.settings = settings
        messages = generate(seed, SHAPE)
        commands = [to_command(parse_message(json.dumps(m).encode())) for m in messages]
        application = BillingApplication(env=bootstrap(settings).ledger.environment())
        try:
            for start in range(0, len(commands), 100):
                application.handle_batch(commands[start : start + 100])
            self.notifications: list[Notification] = list(
                application.recorder.select_notifications(start=1, limit=1_000_000)
            )
        finally:
            application.close()


class LedgerScanTestCase(ABC):
    """The ``LedgerScan`` port's contract; subclasses name the ledger."""

    # 'recorded' when the ledger keeps a hash chain, 'none' when it keeps none.
    chain_origin: ClassVar[str]

    @abstractmethod
    def ledger_settings(self, request: pytest.FixtureRequest, data_dir: Path) -> Settings:
        """Settings of a new, empty ledger of this kind, private to the test class."""

    @abstractmethod
    def scan(self, settings: Settings) -> LedgerScan:
        """This kind's scan of the ledger the settings name."""

    @abstractmethod
    def place(self, settings: Settings) -> str:
        """What the scan's description must name: the topic, the file."""

    @abstractmethod
    def missing_scan(self, request: pytest.FixtureRequest, tmp_path: Path) -> LedgerScan:
        """A scan of a ledger that does not exist."""

    @abstractmethod
    def empty_scan(self, request: pytest.FixtureRequest, tmp_path: Path) -> LedgerScan:
        """A scan of a ledger that exists and holds nothing."""

    def forget(self, settings: Settings) -> None:  # noqa: B027 - most ledgers live in tmp
        """Remove what ``ledger_settings`` made outside the test's directories."""

    @pytest.fixture(scope="class")
    @classmethod
    def ledger(
        cls, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Ledger]:
        """Written once per test class: the tests only read it."""
        case = cls()
        settings = case.ledger_settings(request, tmp_path_factory.mktemp("ledger"))
        try:
            yield Ledger(settings)
        finally:
            case.forget(settings)

    def scanned(self, ledger: Ledger) -> list[ScannedRecord]:
        return list(self.scan(ledger.settings).records())

    def test_records_are_the_ledger_in_order_as_written(self, ledger: Ledger) -> None:
        found = self.scanned(ledger)
        assert len(found) == len(ledger.notifications) > 100
        for position, (record, notification) in enumerate(
            zip(found, ledger.notifications, strict=True), start=1
        ):
            assert record.defect is None, record.defect
            assert record.position == position
            assert record.notification_id == notification.id == position
            assert record.originator_id == uuid_text(notification.originator_id)
            assert record.originator_version == notification.originator_version
            assert record.topic == notification.topic
            assert record.state == notification.state

    def test_each_scan_starts_again_from_the_beginning(self, ledger: Ledger) -> None:
        scan = self.scan(ledger.settings)
        first = list(scan.records())
        partial = scan.records()
        next(partial)
        assert list(scan.records()) == first

    def test_the_size_hint_bounds_the_records(self, ledger: Ledger) -> None:
        scan = self.scan(ledger.settings)
        found = list(scan.records())
        hint = scan.size_hint()
        assert hint is not None and hint >= len(found)

    def test_the_chain_is_as_the_ledger_keeps_it(self, ledger: Ledger) -> None:
        scan = self.scan(ledger.settings)
        assert scan.chain_origin == self.chain_origin
        found = list(scan.records())
        if self.chain_origin == "none":
            assert all(record.hash is None and record.prev_hash is None for record in found)
            return
        prev_hash = GENESIS_HASH
        for record in found:
            assert record.prev_hash == prev_hash, record.where()
            assert record.hash == record.content_hash(prev_hash), record.where()
            prev_hash = record.hash

    def test_the_description_names_the_ledger(self, ledger: Ledger) -> None:
        assert self.place(ledger.settings) in self.scan(ledger.settings).description

    def test_a_missing_ledger_is_unavailable(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        with pytest.raises(LedgerUnavailable):
            list(self.missing_scan(request, tmp_path).records())

    def test_an_empty_ledger_has_no_records(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> None:
        assert list(self.empty_scan(request, tmp_path).records()) == []
