"""Shared builders for the domain's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

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
