"""The ledger every live-swap contract test rebuilds from."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.application import BillingApplication
from projections.runner import LedgerSource
from tests.unit.projections.scenario import traffic_ledger


@pytest.fixture(scope="module")
def ledger() -> Iterator[LedgerSource]:
    """A day of traffic in an in-memory ledger, read as the projector reads it."""
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    traffic_ledger(application, days=1, seed=11)
    yield LedgerSource.of(application)
    application.close()
