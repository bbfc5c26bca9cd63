"""A roaming CDR's total_cost against evledger's re-priced total: exact, over- or undercharge.

Policy (stated, since OCPI has none): the comparison is on the total including VAT when
the CDR gives it, else excluding VAT; the CDR's own figure (4 decimals in OCPI) is taken
to the currency's minor unit half-up, as every amount in evledger. A difference of at most
``tolerance_minor`` minor units either way is *exact* (a party rounding per period or per
dimension may differ by a cent); beyond it the CDR is an overcharge (billed more than the
tariff gives) or an undercharge. The reason, with both figures and the tolerance, is
written into the ledger event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidValueError
from domain.money import Money
from domain.ocpi import model as ocpi
from domain.ocpi.engine import CdrPricing
from domain.vocabulary import CdrReconciliation

INCL_VAT = "incl_vat"
EXCL_VAT = "excl_vat"
_BASIS_TEXT = {INCL_VAT: "incl. VAT", EXCL_VAT: "excl. VAT"}


@dataclass(frozen=True)
class CdrTolerance:
    """How far a CDR's total may be from the re-priced total and still be exact."""

    tolerance_minor: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.tolerance_minor, bool) or self.tolerance_minor < 0:
            raise InvalidValueError(
                f"the CDR tolerance must be whole minor units >= 0, got {self.tolerance_minor!r}"
            )


@dataclass(frozen=True)
class Reconciliation:
    status: CdrReconciliation
    basis: str
    billed_minor: int
    repriced_minor: int
    difference_minor: int  # billed - re-priced: positive is an overcharge
    tolerance_minor: int
    reason: str

    def to_event(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "basis": self.basis,
            "billed_minor": self.billed_minor,
            "repriced_minor": self.repriced_minor,
            "difference_minor": self.difference_minor,
            "tolerance_minor": self.tolerance_minor,
            "reason": self.reason,
        }


def _text(minor: int, currency: str) -> str:
    return f"{Money(minor, currency).to_major()} {currency}"


def reconcile(cdr: ocpi.Cdr, pricing: CdrPricing, policy: CdrTolerance) -> Reconciliation:
    """Compare the CDR's total_cost with the engine's total under the tolerance policy."""
    currency = cdr.currency
    if cdr.total_cost.incl_vat is not None:
        basis = INCL_VAT
        billed = Money.from_major(cdr.total_cost.incl_vat, currency).minor
        repriced = pricing.total_incl_vat.minor
    else:
        basis = EXCL_VAT
        billed = Money.from_major(cdr.total_cost.excl_vat, currency).minor
        repriced = pricing.total_excl_vat.minor
    difference = billed - repriced
    tolerance = policy.tolerance_minor
    figures = (
        f"total_cost {_BASIS_TEXT[basis]} {_text(billed, currency)}, re-priced "
        f"{_text(repriced, currency)}"
    )
    if abs(difference) <= tolerance:
        status = CdrReconciliation.EXACT
        reason = (
            f"{figures}: equal"
            if difference == 0
            else f"{figures}: {abs(difference)} minor units apart, within the tolerance of "
            f"{tolerance}"
        )
    else:
        status = CdrReconciliation.OVERCHARGE if difference > 0 else CdrReconciliation.UNDERCHARGE
        reason = (
            f"{figures}: billed {_text(abs(difference), currency)} "
            f"{'more' if difference > 0 else 'less'} than the tariff gives (tolerance "
            f"{tolerance} minor units)"
        )
    return Reconciliation(status, basis, billed, repriced, difference, tolerance, reason)


def priced_dimensions(pricing: CdrPricing) -> list[dict[str, Any]]:
    """The engine's cost per dimension, volumes as exact text, money in minor units."""
    return [
        {
            "dimension": d.dimension,
            "volume": str(d.volume),
            "billed_volume": str(d.billed_volume),
            "excl_vat_minor": d.excl_vat.minor,
            "incl_vat_minor": d.incl_vat.minor,
        }
        for d in pricing.dimensions
    ]
