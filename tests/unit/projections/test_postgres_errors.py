"""psycopg's errors as the read-model databases' own kinds: a transaction that lost to
another (serialization failure, deadlock) is busy, to be tried again, not an outage;
psycopg's class per SQLSTATE does not derive from its SQLSTATE class's."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from projections.databases.errors import (
    DatabaseBusy,
    DatabaseUnavailable,
    MissingTable,
    ReadModelDatabaseError,
)
from projections.databases.postgres import translate


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (errors.SerializationFailure("could not serialize access"), DatabaseBusy),
        (errors.DeadlockDetected("deadlock detected"), DatabaseBusy),
        (errors.TransactionRollback("transaction rollback"), DatabaseBusy),
        (errors.LockNotAvailable("lock timeout"), DatabaseBusy),
        (errors.QueryCanceled("statement timeout"), DatabaseBusy),
        (psycopg.OperationalError("connection refused"), DatabaseUnavailable),
        (errors.UndefinedTable('relation "payment_history" does not exist'), MissingTable),
    ],
)
def test_each_error_is_its_kind(error: psycopg.Error, kind: type[ReadModelDatabaseError]) -> None:
    translated = translate(error, "postgresql://db.example/ledger")
    assert type(translated) is kind
    assert str(translated) == f"postgresql://db.example/ledger: {error}"


def test_the_sqlstate_classes_are_not_their_class_s_subclasses() -> None:
    # Why translate lists them one by one: were this to change, the list could shrink.
    assert not issubclass(errors.SerializationFailure, errors.TransactionRollback)
    assert not issubclass(errors.DeadlockDetected, errors.TransactionRollback)
