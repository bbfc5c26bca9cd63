"""The RoamingCdr aggregate: an OCPI CDR received, re-priced, reconciled, maybe reversed.

OCPI CDRs are never updated: a wrong one is reversed by a credit CDR (its own aggregate,
``credit: true``) and may be followed by a replacement CDR with a new id. Nothing here is
edited either: a reversal is a new event whose postings undo every posting of the CDR.
The events carry what re-pricing needs (the CDR's and the tariff's OCPI JSON text and the
time zone), so the ledger alone can re-price every CDR.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain import postings
from domain.cdr_reconciliation import Reconciliation, priced_dimensions
from domain.creation import create, trigger
from domain.ids import roaming_cdr_aggregate_id
from domain.ocpi import model as ocpi
from domain.ocpi.engine import CdrPricing
from domain.pricing import ROUNDING
from domain.vocabulary import CdrReconciliation, CdrRejection, CdrStatus


class RoamingCdr(Aggregate):
    """One OCPI CDR (country_code, party_id, id) as the ledger holds it."""

    class Received(Aggregate.Created):
        """The CDR arrived; ``document`` is its OCPI JSON text, unchanged."""

        country_code: str
        party_id: str
        cdr_id: str
        session_id: str | None
        location_id: str
        currency: str
        start_date_time: datetime
        end_date_time: datetime
        total_cost_excl_vat: str
        total_cost_incl_vat: str | None
        credit: bool
        credit_reference_id: str | None
        document: str
        occurred_at: datetime

        def apply(self, aggregate: RoamingCdr) -> None:
            aggregate.country_code = self.country_code
            aggregate.party_id = self.party_id
            aggregate.cdr_id = self.cdr_id
            aggregate.currency = self.currency
            aggregate.credit = self.credit
            aggregate.document = self.document

    class Priced(Aggregate.Event):
        """The engine's price, per dimension in minor units, with the inputs it used."""

        tariff_id: str
        tariff_source: str  # "cdr" (the CDR's own tariffs) or "ledger" (an ocpi.tariff)
        tariff_last_updated: datetime | None
        tariff_document: str
        time_zone: str
        time_zone_source: str  # "message" (the ocpi.cdr's time_zone) or "location"
        currency: str
        dimensions: list[dict[str, Any]]
        total_excl_vat_minor: int
        total_incl_vat_minor: int
        bounded_by: list[str]
        notes: list[str]
        rounding: str
        postings: list[dict[str, Any]]

        def apply(self, aggregate: RoamingCdr) -> None:
            aggregate.posted.extend(self.postings)

    class Reconciled(Aggregate.Event):
        """The CDR's total_cost against the re-priced total (``reason`` says both)."""

        status: str
        basis: str
        billed_minor: int
        repriced_minor: int
        difference_minor: int
        tolerance_minor: int
        reason: str
        currency: str
        postings: list[dict[str, Any]]

        def apply(self, aggregate: RoamingCdr) -> None:
            aggregate.status = CdrStatus.RECONCILED
            aggregate.reconciliation = CdrReconciliation(self.status)
            aggregate.difference_minor = self.difference_minor
            aggregate.posted.extend(self.postings)

    class Rejected(Aggregate.Event):
        """The CDR could not be re-priced (or, for a credit CDR, applied); never guessed."""

        reason_code: str
        reason: str
        occurred_at: datetime

        def apply(self, aggregate: RoamingCdr) -> None:
            aggregate.status = CdrStatus.REJECTED

    class Reversed(Aggregate.Event):
        """A credit CDR reversed this one: ``postings`` undo every posting it had."""

        credit_cdr_id: str
        occurred_at: datetime
        postings: list[dict[str, Any]]

        def apply(self, aggregate: RoamingCdr) -> None:
            aggregate.status = CdrStatus.REVERSED
            aggregate.reversed_by = self.credit_cdr_id
            aggregate.posted.extend(self.postings)

    class CreditApplied(Aggregate.Event):
        """This credit CDR reversed ``original_cdr_id`` (its postings are on the original)."""

        original_cdr_id: str
        occurred_at: datetime

        def apply(self, aggregate: RoamingCdr) -> None:
            aggregate.status = CdrStatus.CREDIT

    def __init__(self) -> None:
        self.country_code = ""
        self.party_id = ""
        self.cdr_id = ""
        self.currency = ""
        self.credit = False
        self.document = ""
        self.status: CdrStatus | None = None
        self.reconciliation: CdrReconciliation | None = None
        self.difference_minor = 0
        self.reversed_by: str | None = None
        self.posted: list[dict[str, Any]] = []

    @classmethod
    def receive(
        cls,
        cdr: ocpi.Cdr,
        *,
        session_id: str | None,
        location_id: str,
        document: str,
        occurred_at: datetime,
    ) -> RoamingCdr:
        return create(
            cls,
            cls.Received,
            id=roaming_cdr_aggregate_id(cdr.country_code, cdr.party_id, cdr.id),
            country_code=cdr.country_code,
            party_id=cdr.party_id,
            cdr_id=cdr.id,
            session_id=session_id,
            location_id=location_id,
            currency=cdr.currency,
            start_date_time=cdr.start_date_time,
            end_date_time=cdr.end_date_time,
            total_cost_excl_vat=str(cdr.total_cost.excl_vat),
            total_cost_incl_vat=(
                None if cdr.total_cost.incl_vat is None else str(cdr.total_cost.incl_vat)
            ),
            credit=cdr.credit,
            credit_reference_id=cdr.credit_reference_id,
            document=document,
            occurred_at=occurred_at,
        )

    def price(
        self,
        pricing: CdrPricing,
        *,
        tariff_id: str,
        tariff_source: str,
        tariff_last_updated: datetime | None,
        tariff_document: str,
        time_zone_source: str,
    ) -> None:
        excl, incl = pricing.total_excl_vat.minor, pricing.total_incl_vat.minor
        trigger(
            self,
            self.Priced,
            tariff_id=tariff_id,
            tariff_source=tariff_source,
            tariff_last_updated=tariff_last_updated,
            tariff_document=tariff_document,
            time_zone=pricing.time_zone,
            time_zone_source=time_zone_source,
            currency=pricing.currency,
            dimensions=priced_dimensions(pricing),
            total_excl_vat_minor=excl,
            total_incl_vat_minor=incl,
            bounded_by=list(pricing.bounded_by),
            notes=list(pricing.notes),
            rounding=ROUNDING,
            postings=postings.cdr_priced(excl, incl, pricing.currency),
        )

    def reconcile(self, reconciliation: Reconciliation) -> None:
        trigger(
            self,
            self.Reconciled,
            **reconciliation.to_event(),
            currency=self.currency,
            postings=postings.cdr_reconciled(
                reconciliation.difference_minor,
                reconciliation.status is CdrReconciliation.EXACT,
                self.currency,
            ),
        )

    def reject(self, code: CdrRejection, reason: str, at: datetime) -> None:
        trigger(self, self.Rejected, reason_code=code.value, reason=reason, occurred_at=at)

    def reverse(self, *, credit_cdr_id: str, at: datetime) -> None:
        trigger(
            self,
            self.Reversed,
            credit_cdr_id=credit_cdr_id,
            occurred_at=at,
            postings=postings.reversal(self.posted),
        )

    def apply_credit(self, *, original_cdr_id: str, at: datetime) -> None:
        trigger(self, self.CreditApplied, original_cdr_id=original_cdr_id, occurred_at=at)
