"""Shared builders for the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from domain.tariff import TariffTerms

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def eur_terms() -> TariffTerms:
    return TariffTerms(
        currency="EUR",
        price_per_kwh=Decimal("0.39"),
        vat_rate=Decimal("0.19"),
        session_fee_minor=50,
    )


@pytest.fixture
def application(tmp_path: Path) -> Iterator[BillingApplication]:
    """The billing application on the embedded default's SQLite ledger in ``tmp_path``."""
    root = bootstrap(Settings.embedded_in(tmp_path))
    try:
        yield root.application()
    finally:
        root.close()
