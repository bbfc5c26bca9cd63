"""Checks and arithmetic on timezone-aware datetimes, in whole seconds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.errors import InvalidValueError

_ONE_SECOND = timedelta(seconds=1)


def require_aware(value: Any, what: str) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise InvalidValueError."""
    if not isinstance(value, datetime):
        raise InvalidValueError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(f"{what} must carry a UTC offset (RFC 3339), got {value}")
    return value


def whole_seconds(start: datetime, end: datetime) -> int:
    """Seconds from ``start`` to ``end``, sub-second remainder dropped (floor)."""
    return (end - start) // _ONE_SECOND
