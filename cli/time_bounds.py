"""The times a command accepts (--from, --to, --as-of): aware, and within years that every
conversion and database can hold, so that year 1 or 9999 is a clear error, not a traceback."""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def parse_bounded(value: str, option: str) -> datetime:
    """RFC 3339 / ISO 8601 (no offset: UTC) within EARLIEST..LATEST, or ValueError saying so."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{option}: expected a date or time like 2026-03-01T00:00:00Z, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Compared as naive UTC-shifted values: astimezone itself overflows near year 1 / 9999.
    offset = moment.utcoffset()
    assert offset is not None
    naive_utc_ok = (
        EARLIEST.replace(tzinfo=None) + offset
        <= moment.replace(tzinfo=None)
        < LATEST.replace(tzinfo=None) + offset
    )
    if not naive_utc_ok:
        raise ValueError(
            f"{option}: must be from {EARLIEST.date()} and before {LATEST.date()}, got {value!r}"
        )
    return moment
