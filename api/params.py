"""Shared request parameters: ids, page limits and times, checked before any query."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query

from api.problems import Problem

MAX_PAGE = 500
# No control characters: PostgreSQL text cannot hold NUL, and no id upstream has them.
ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"

CustomerId = Annotated[
    str, Path(description="The customer's upstream id.", pattern=ID_PATTERN, max_length=200)
]
StationId = Annotated[
    str, Path(description="The station's upstream id.", pattern=ID_PATTERN, max_length=200)
]
PaymentId = Annotated[
    str, Path(description="The payment's upstream id.", pattern=ID_PATTERN, max_length=200)
]
RefundId = Annotated[
    str, Path(description="The refund's upstream id.", pattern=ID_PATTERN, max_length=200)
]
TrailId = Annotated[
    str,
    Path(
        description="A session, payment or refund id (S-..., P-..., R-...).",
        pattern=ID_PATTERN,
        max_length=200,
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Rows per page, 1 to {MAX_PAGE}.")]
After = Annotated[
    str | None,
    Query(max_length=1000, description="The `next_cursor` of the previous page."),
]
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=64,
        description="Created at or after this time: RFC 3339 with an offset, e.g. "
        "2024-05-01T00:00:00Z.",
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=64,
        description="Created before this time: RFC 3339 with an offset.",
    ),
]
FilterId = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=200)]


def parse_time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time with an offset; anything else is a 400 problem."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(
            400, f"`{name}` is not a time: expected RFC 3339 like 2024-05-01T10:00:00Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Problem(
            400, f"`{name}` needs an offset (Z or +02:00): a time without one is ambiguous"
        )
    return moment
