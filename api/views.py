"""The read-model database for requests, lent to one request at a time (a pool on
PostgreSQL, the embedded default's file otherwise); its failures become 503 problems."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from api.problems import Problem
from projections.databases.errors import (
    DatabaseBusy,
    DatabaseUnavailable,
    MissingTable,
)
from projections.databases.port import Database, DatabaseLender

_NOT_BUILT = "the read models are not built yet (run `evledger project`)"


class ViewsDatabase:
    """Lends the payment history / refund status database to one request at a time."""

    def __init__(self, lender: DatabaseLender, kind: str) -> None:
        self._lender = lender
        self.kind = kind

    def open(self) -> None:
        self._lender.open()

    def close(self) -> None:
        self._lender.close()

    @contextmanager
    def connection(self) -> Iterator[Database]:
        """The database for one request; outages become a 503 problem."""
        try:
            with self._lender.lend() as db:
                yield db
        except MissingTable:
            raise Problem(503, _NOT_BUILT) from None
        except DatabaseBusy:
            raise Problem(
                503, "the read-model database is unreachable or busy; try again shortly"
            ) from None
        except DatabaseUnavailable as error:
            # The adapters name the server but never carry the password.
            raise Problem(503, f"the read-model database is unavailable: {error}") from None
