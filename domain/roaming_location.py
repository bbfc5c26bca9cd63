"""The RoamingLocation aggregate: an OCPI Location's time zone, by its last_updated.

Tariff restrictions are read in the Location's local time, and a CDR carries no zone: the
ledger keeps each Location's ``time_zone`` so a CDR can be re-priced from the ledger alone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from eventsourcing.domain import Aggregate

from domain.creation import create, trigger
from domain.ids import roaming_location_aggregate_id


class RoamingLocation(Aggregate):
    """One OCPI Location (country_code, party_id, id): its time zone as last updated."""

    class Recorded(Aggregate.Created):
        country_code: str
        party_id: str
        location_id: str
        time_zone: str
        last_updated: datetime

        def apply(self, aggregate: RoamingLocation) -> None:
            aggregate.country_code = self.country_code
            aggregate.party_id = self.party_id
            aggregate.location_id = self.location_id
            aggregate.time_zone = self.time_zone
            aggregate.last_updated = self.last_updated

    class Updated(Aggregate.Event):
        time_zone: str
        last_updated: datetime

        def apply(self, aggregate: RoamingLocation) -> None:
            if self.last_updated >= aggregate.last_updated:
                aggregate.time_zone = self.time_zone
                aggregate.last_updated = self.last_updated

    def __init__(self) -> None:
        self.country_code = ""
        self.party_id = ""
        self.location_id = ""
        self.time_zone = ""
        self.last_updated = datetime.min.replace(tzinfo=UTC)

    @classmethod
    def record(
        cls,
        *,
        country_code: str,
        party_id: str,
        location_id: str,
        time_zone: str,
        last_updated: datetime,
    ) -> RoamingLocation:
        return create(
            cls,
            cls.Recorded,
            id=roaming_location_aggregate_id(country_code, party_id, location_id),
            country_code=country_code,
            party_id=party_id,
            location_id=location_id,
            time_zone=time_zone,
            last_updated=last_updated,
        )

    def update(self, *, time_zone: str, last_updated: datetime) -> None:
        trigger(self, self.Updated, time_zone=time_zone, last_updated=last_updated)
