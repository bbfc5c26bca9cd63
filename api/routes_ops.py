"""Operations endpoints, open without a key: /healthz, /readyz and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.problems import Problem
from api.schemas import Health, ProjectionLag, Readiness, ShardReadiness
from api.state import ApiState, api_state
from audit.ledger_lag import VIEW_PROJECTIONS, ShardLag, shard_lags, shard_positions, total

router = APIRouter(tags=["operations"])


# HEAD as well, for monitors that ask for the status only (uvicorn sends no body to a
# HEAD); out of the OpenAPI description, where it would repeat GET's operation.
@router.get("/healthz", response_model=Health)
@router.head("/healthz", include_in_schema=False)
def healthz() -> Health:
    """The process is up (it checks nothing else)."""
    return Health()


Positions = list[dict[str, int | None]]


def _views_positions(state: ApiState, shards: int) -> tuple[str, Positions]:
    try:
        with state.views.connection() as db:
            return "ok", shard_positions(db, VIEW_PROJECTIONS, shards)
    except Problem as problem:
        status = f"unavailable: {problem.detail}"
    except Exception as error:  # a missing tracking table, say: reported, not raised
        status = f"unavailable: {type(error).__name__}"
    return status, [dict.fromkeys(VIEW_PROJECTIONS) for _ in range(shards)]


def _analytics_positions(state: ApiState, shards: int) -> tuple[str, list[int | None]]:
    import duckdb

    from projections.analytics_queries import open_read_only

    try:
        db = open_read_only(state.root.settings.analytics_path)
        try:
            return "ok", [row["analytics"] for row in shard_positions(db, ["analytics"], shards)]
        finally:
            db.close()
    except FileNotFoundError:
        status = "unavailable: not built yet (run `evledger project`)"
    except duckdb.Error as error:
        status = f"unavailable: {str(error).splitlines()[0] if str(error) else error!r}"
    return status, [None] * shards


def _lags(lags: list[ShardLag], names: list[str]) -> dict[str, ProjectionLag]:
    return {
        name: ProjectionLag(
            position=total(lag.positions[name] for lag in lags),
            lag=total(lag.lag(name) for lag in lags),
            ahead=any(lag.is_ahead(name) for lag in lags),
        )
        for name in names
    }


@router.head("/readyz", include_in_schema=False)
@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "Not ready", "model": Readiness}},
)
def readyz(request: Request) -> JSONResponse:
    """Ready when the payment history / refund status database answers and neither of its
    read models is past the ledger's head (`ahead`: another ledger's). Reports each
    projection's position, lag (ledger events not yet applied) and `ahead`, and the
    analytics database, which serves only the analytics report (ahead or not, it does not
    change `ready`). On a sharded ledger the figures are the shards' sums, and `shards`
    gives each shard's head, positions and lags."""
    state = api_state(request)
    shards = len(state.ledger_heads)
    views, positions = _views_positions(state, shards)
    analytics, analytics_positions = _analytics_positions(state, shards)
    for shard, position in enumerate(analytics_positions):
        positions[shard]["analytics"] = position
    lags = shard_lags(state.ledger_heads, positions)
    names = [*VIEW_PROJECTIONS, "analytics"]
    # Views past the ledger's head are another ledger's: answering from them is wrong.
    views_ahead = any(lag.is_ahead(name) for lag in lags for name in VIEW_PROJECTIONS)
    readiness = Readiness(
        ready=views == "ok" and not views_ahead,
        views_database=views,
        analytics_database=analytics,
        ledger=next((lag.ledger for lag in lags if lag.ledger != "ok"), "ok"),
        ledger_position=total(lag.head for lag in lags),
        projections=_lags(lags, names),
        shards=None
        if shards == 1
        else [
            ShardReadiness(
                shard=lag.shard,
                ledger=lag.ledger,
                ledger_position=lag.head,
                projections=_lags([lag], names),
            )
            for lag in lags
        ],
    )
    # An unsharded ledger's answer is as it always was, without `shards`.
    body = readiness.model_dump(exclude={"shards"} if readiness.shards is None else None)
    return JSONResponse(body, status_code=200 if readiness.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    """Request counts and latencies in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = api_state(request).extras["metrics"].registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
