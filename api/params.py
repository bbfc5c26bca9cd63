"""Shared request parameters: ids, page limits and times, checked before any query."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Path, Query, Request
from starlette.convertors import Convertor, register_url_convertor

from api.problems import Problem
from api.raw_ids import segment_id

MAX_PAGE = 500
# No control characters: PostgreSQL text cannot hold NUL, and no id upstream has them.
ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"


class _IdConvertor(Convertor[str]):
    """A path's id (`{payment_id:id}`): one segment of the path as api/raw_ids.py gives it
    (line breaks included, so such an id reaches its route and its 422), decoded."""

    regex = r"[^/]+"

    def convert(self, value: str) -> str:
        return segment_id(value)

    def to_string(self, value: str) -> str:
        return value.replace("%", "%25").replace("/", "%2F")


register_url_convertor("id", _IdConvertor())

# How a path reaches any id the upstream contract accepts.
_IN_A_PATH = (
    " Escape it as a URL path's segment: a `/` in it as `%2F` (as is, it separates "
    "segments), and an id that is `.` or `..` needs its dots as `%2E`, as clients remove "
    "those segments otherwise."
)


def _id(description: str) -> Any:
    return Path(description=description + _IN_A_PATH, pattern=ID_PATTERN, max_length=200)


CustomerId = Annotated[str, _id("The customer's upstream id.")]
StationId = Annotated[str, _id("The station's upstream id.")]
PaymentId = Annotated[str, _id("The payment's upstream id.")]
RefundId = Annotated[str, _id("The refund's upstream id.")]
TrailId = Annotated[str, _id("A session, payment or refund id (S-..., P-..., R-...).")]
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
        json_schema_extra={"format": "date-time"},
        description="Created at or after this time: RFC 3339 with an offset, e.g. "
        "2024-05-01T00:00:00Z.",
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=64,
        json_schema_extra={"format": "date-time"},
        description="Created before this time: RFC 3339 with an offset.",
    ),
]
FilterId = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=200)]

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)


# A URL path segment's characters besides letters, digits and `-._~`: RFC 3986's
# sub-delims, `:` and `@`.
SEGMENT_SAFE = "!$&'()*+,;=:@"


def link_segment(value: str, safe: str = SEGMENT_SAFE) -> str:
    """``value`` written as one segment of a link: escaped but for ``safe``, and its dots
    escaped if it is `.` or `..`, which a client would otherwise remove with the segment
    before it."""
    escaped = quote(value, safe=safe)
    return escaped.replace(".", "%2E") if escaped in (".", "..") else escaped


def link_path(path: str) -> str:
    """A request's path as the routes see it (api/raw_ids.py: a `%` only where an escape
    starts) written for a link to it."""
    return "/".join(link_segment(part, "%") for part in path.split("/"))


def parse_time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time with an offset (Z or +hh:mm); anything else is a 422 problem."""
    if value is None:
        return None
    match = _RFC3339.match(value)
    if match is None:
        raise Problem(
            422, f"`{name}` is not an RFC 3339 time like 2024-05-01T10:00:00Z, got {value!r}"
        )
    day, clock, fraction, offset = match.groups()
    if offset is None:
        raise Problem(422, f"`{name}` needs an offset (Z or +02:00): without one it is ambiguous")
    micros = (fraction or "")[:7]
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}{micros}{zone}")
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Problem(422, f"`{name}` is not a valid time: {value!r}") from None
    return moment


# Each route's query parameters, and whether a key check refuses its unknown ones.
_DECLARED: dict[int, tuple[frozenset[str], bool]] = {}
# Dependencies that check the request's key and then its query (`api/auth.py:require`).
_KEY_CHECKS: set[Callable[..., Any]] = set()

_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])


def checks_query_after_key(dependency: _Dependency) -> _Dependency:
    """Marks a key-checking dependency that calls `refuse_unknown_query` once the key is
    good: the application-wide check then leaves its endpoints to it, so a request without
    a key is a 401 whatever its query (FastAPI solves the application's dependencies
    before an endpoint's)."""
    _KEY_CHECKS.add(dependency)
    return dependency


async def no_unknown_query(request: Request) -> None:
    """Refuse query parameters the endpoint does not take: a misspelt filter (`?stauts=`)
    would otherwise be ignored and answer with everything. Endpoints that need a key are
    checked after it (`checks_query_after_key`)."""
    declared = _declared(request)
    if declared is not None and not declared[1]:
        refuse_unknown_query(request)


def refuse_unknown_query(request: Request) -> None:
    """A 422 problem naming the first query parameter the request's endpoint does not take."""
    declared = _declared(request)
    if declared is None:
        return
    refuse_query_outside(request.query_params, declared[0])


def refuse_query_outside(given: Iterable[str], declared: frozenset[str]) -> None:
    """A 422 problem naming the first of ``given`` that is not ``declared``."""
    unknown = sorted(set(given) - declared)
    if unknown:
        takes = ", ".join(sorted(declared)) or "none"
        raise Problem(422, f"unknown query parameter {unknown[0]!r}; this endpoint takes: {takes}")


def _declared(request: Request) -> tuple[frozenset[str], bool] | None:
    """The route's query parameters and whether a key check refuses the others; None
    outside a route."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    declared = _DECLARED.get(id(route))
    if declared is None:
        declared = (frozenset(_query_names(dependant)), _key_checked(dependant))
        _DECLARED[id(route)] = declared
    return declared


def _key_checked(dependant: Any) -> bool:
    return dependant.call in _KEY_CHECKS or any(_key_checked(sub) for sub in dependant.dependencies)


def _query_names(dependant: Any) -> set[str]:
    names = {str(param.alias) for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
