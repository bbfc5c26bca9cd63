"""Payment history and refund status endpoints, over the read models' own queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote_plus

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import require
from api.keys import ApiKey, Role
from api.params import (
    After,
    CustomerId,
    FilterId,
    From,
    Limit,
    PaymentId,
    RefundId,
    StationId,
    To,
    link_path,
    parse_time,
)
from api.problems import Problem, problem_responses
from api.schemas import (
    JSON,
    SUMMARY_FORMATS,
    PaymentDetail,
    PaymentPage,
    Refund,
    RefundList,
    page_json,
    refund_document,
)
from api.state import ApiState, api_state
from projections.databases.port import COLUMNS, JsonQuery
from projections.payment_history import (
    BadCursor,
    HistoryFilter,
    HistoryQuery,
    history_query,
    payment,
)
from projections.refund_status import REFUND_STATUSES, query_refunds, refund

router = APIRouter(prefix="/v1", tags=["payments and refunds"])
READER_ROLES = (Role.support, Role.auditor)
Reader = Annotated[ApiKey, Depends(require(*READER_ROLES))]
_ERRORS = problem_responses(400, 401, 403, 422, 503)


def history_filter(
    collection: str,
    owner: str,
    *,
    period_from: str | None,
    period_to: str | None,
    limit: int,
    after: str | None,
) -> HistoryFilter:
    """The page a request asks for: ``owner``'s payments in ``collection`` (customers or
    stations), its times parsed (a 422 problem unless RFC 3339 with an offset)."""
    if collection not in ("customers", "stations"):
        raise ValueError(f"no payment history by {collection!r}")
    return HistoryFilter(
        customer_id=owner if collection == "customers" else None,
        station_id=owner if collection == "stations" else None,
        period_from=parse_time(period_from, "from"),
        period_to=parse_time(period_to, "to"),
        limit=limit,
        after=after,
    )


async def history_page(state: ApiState, path: str, wanted: HistoryFilter) -> bytes:
    """A history page's document; ``path`` is the request's, for the `next` link. Shared
    by the routes and their fast path (api/history_fast.py), so both answer the same bytes."""
    queries: list[HistoryQuery] = []

    def build(param: Callable[[Any], Any]) -> JsonQuery:
        queries.append(history_query(param, wanted, columns=(COLUMNS,)))
        return queries[-1].as_json(SUMMARY_FORMATS)

    try:
        # On the event loop, with the other pages asked for meanwhile (api/page_batches.py).
        page = await state.pages.page(build, wanted.limit, _shape(wanted))
    except BadCursor:
        raise Problem(
            400, "`after` is not a cursor this API handed out (use `next_cursor`)"
        ) from None
    query = queries[-1]
    cursor = query.next_cursor(page.count, page.last)
    link = None if cursor is None else next_link(path, wanted, cursor)
    return page_json([page.items] if page.count else [], cursor, link)


def _shape(wanted: HistoryFilter) -> tuple[bool, ...]:
    """What the page's statement text depends on (which filters it has), so a batch of
    pages of one shape is one statement text that psycopg keeps prepared."""
    return (
        wanted.customer_id is None,
        wanted.station_id is None,
        wanted.period_from is None,
        wanted.period_to is None,
        wanted.after is None,
    )


def next_link(path: str, wanted: HistoryFilter, cursor: str) -> str:
    """The link to the page after ``cursor``: ``path`` (decoded, as the request's) encoded
    again, so an id with a space, a ``%``, a letter outside ASCII or a `/`, or one that is
    `..`, names the same owner."""
    # Spelled out: urlencode() took 4% of a page's CPU in a profile; a cursor is URL-safe.
    link = f"{link_path(path)}?limit={wanted.limit}&after={cursor}"
    for name, moment in (("from", wanted.period_from), ("to", wanted.period_to)):
        if moment is not None:
            link += f"&{name}={quote_plus(moment.isoformat())}"
    return link


async def _page(request: Request, wanted: HistoryFilter) -> Response:
    # The path as received, decoded once: `request.url.path` escapes `?`, `#` and `\`
    # again, and next_link would escape those escapes.
    document = await history_page(api_state(request), request.scope["path"], wanted)
    return Response(document, media_type=JSON)


@router.get("/customers/{customer_id:id}/payments", response_model=PaymentPage, responses=_ERRORS)
async def customer_payments(
    request: Request,
    *,
    customer_id: CustomerId,
    key: Reader,
    period_from: From = None,
    period_to: To = None,
    limit: Limit = 50,
    after: After = None,
) -> Response:
    """A customer's payments, newest first, a page at a time (keyset cursor)."""
    wanted = history_filter(
        "customers",
        customer_id,
        period_from=period_from,
        period_to=period_to,
        limit=limit,
        after=after,
    )
    return await _page(request, wanted)


@router.get("/stations/{station_id:id}/payments", response_model=PaymentPage, responses=_ERRORS)
async def station_payments(
    request: Request,
    *,
    station_id: StationId,
    key: Reader,
    period_from: From = None,
    period_to: To = None,
    limit: Limit = 50,
    after: After = None,
) -> Response:
    """A station's payments, newest first, a page at a time (keyset cursor)."""
    wanted = history_filter(
        "stations",
        station_id,
        period_from=period_from,
        period_to=period_to,
        limit=limit,
        after=after,
    )
    return await _page(request, wanted)


@router.get(
    "/payments/{payment_id:id}",
    response_model=PaymentDetail,
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
def payment_detail(request: Request, payment_id: PaymentId, key: Reader) -> PaymentDetail:
    """One payment with its line items, capture, reconciliation and refunds."""
    with api_state(request).views.connection() as db:
        row = payment(db, payment_id)
        if row is None:
            raise Problem(404, f"no payment {payment_id!r} in the payment history")
        refunds = query_refunds(db, payment_id=payment_id, limit=1000)
    return PaymentDetail(
        **{key: value for key, value in row.items() if key != "line_items"},
        line_items=row.get("line_items") or [],
        refunds=[refund_document(item) for item in refunds],
    )


@router.get("/refunds", response_model=RefundList, responses=_ERRORS)
def refunds(
    request: Request,
    *,
    key: Reader,
    status: Annotated[
        str | None, Query(description=f"One of {', '.join(REFUND_STATUSES)}.")
    ] = None,
    customer: FilterId = None,
    station: FilterId = None,
    limit: Limit = 100,
) -> RefundList:
    """Refunds newest first, by status, customer or station."""
    if status is not None and status not in REFUND_STATUSES:
        raise Problem(422, f"`status` must be one of {', '.join(REFUND_STATUSES)}")
    with api_state(request).views.connection() as db:
        rows = query_refunds(
            db, status=status, customer_id=customer, station_id=station, limit=limit
        )
    return RefundList(items=[refund_document(row) for row in rows])


@router.get(
    "/refunds/{refund_id:id}",
    response_model=Refund,
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
def refund_detail(request: Request, refund_id: RefundId, key: Reader) -> Refund:
    """Everything the refund status view knows about one refund."""
    with api_state(request).views.connection() as db:
        row = refund(db, refund_id)
    if row is None:
        raise Problem(404, f"no refund {refund_id!r} in the refund status view")
    return refund_document(row)
