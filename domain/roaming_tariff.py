"""The RoamingTariff aggregate: every version of an OCPI party's Tariff, by its last_updated.

A CDR is re-priced with the version in force at its start (the latest last_updated not
after it), kept in the ledger as the OCPI JSON text it arrived in.
"""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from domain.creation import create, trigger
from domain.ids import roaming_tariff_aggregate_id


class RoamingTariff(Aggregate):
    """One OCPI Tariff (country_code, party_id, id) and its versions."""

    class Recorded(Aggregate.Created):
        """The first version of the tariff; ``document`` is the OCPI object's JSON text."""

        country_code: str
        party_id: str
        tariff_id: str
        last_updated: datetime
        currency: str
        document: str

        def apply(self, aggregate: RoamingTariff) -> None:
            aggregate.country_code = self.country_code
            aggregate.party_id = self.party_id
            aggregate.tariff_id = self.tariff_id
            aggregate.versions[self.last_updated] = self.document

    class Updated(Aggregate.Event):
        """Another version (OCPI parties update a tariff in place; the ledger keeps each)."""

        last_updated: datetime
        currency: str
        document: str

        def apply(self, aggregate: RoamingTariff) -> None:
            aggregate.versions[self.last_updated] = self.document

    def __init__(self) -> None:
        self.country_code = ""
        self.party_id = ""
        self.tariff_id = ""
        self.versions: dict[datetime, str] = {}

    @classmethod
    def record(
        cls,
        *,
        country_code: str,
        party_id: str,
        tariff_id: str,
        last_updated: datetime,
        currency: str,
        document: str,
    ) -> RoamingTariff:
        return create(
            cls,
            cls.Recorded,
            id=roaming_tariff_aggregate_id(country_code, party_id, tariff_id),
            country_code=country_code,
            party_id=party_id,
            tariff_id=tariff_id,
            last_updated=last_updated,
            currency=currency,
            document=document,
        )

    def has_version(self, last_updated: datetime) -> bool:
        return last_updated in self.versions

    def update(self, *, last_updated: datetime, currency: str, document: str) -> None:
        trigger(self, self.Updated, last_updated=last_updated, currency=currency, document=document)

    def version_at(self, moment: datetime) -> tuple[datetime, str] | None:
        """The version in force at ``moment`` (latest last_updated not after it), if any."""
        earlier = [stamp for stamp in self.versions if stamp <= moment]
        if not earlier:
            return None
        stamp = max(earlier)
        return stamp, self.versions[stamp]
