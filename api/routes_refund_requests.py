"""POST /v1/refunds: a support agent's refund request, onto the ingest topic (202)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.auth import require
from api.keys import ApiKey, Role
from api.observe import MAX_BODY_BYTES
from api.params import link_segment
from api.problems import Problem, problem_responses
from api.refund_requests import (
    IDEMPOTENCY_KEY_PATTERN,
    RefundAccepted,
    RefundRequestBody,
    claim,
    destination,
    mark_published,
    release,
    remember,
    stored,
)
from api.state import api_state

router = APIRouter(prefix="/v1", tags=["refund requests"])


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise Problem(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


def _parse(raw: bytes, content_type: str) -> RefundRequestBody:
    if content_type.split(";", maxsplit=1)[0].strip().lower() != "application/json":
        raise Problem(415, "send the refund request as JSON (Content-Type: application/json)")
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:  # ValueErrors: first
        raise Problem(400, f"the body is not valid JSON ({error})") from None
    except ValueError:  # Python's own limit on an integer's digits (sys.int_info)
        raise Problem(400, "the body has a number of more digits than any field takes") from None
    except RecursionError:
        raise Problem(400, "the body is nested deeper than any refund request") from None
    try:
        return RefundRequestBody.model_validate(document)
    except ValidationError as error:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]}
            for e in error.errors(include_url=False)
        ]
        first = errors[0]
        where = f"`{first['field']}`: " if first["field"] else ""
        raise Problem(422, f"{where}{first['reason']}", errors=errors) from None


@router.post(
    "/refunds",
    status_code=202,
    response_model=RefundAccepted,
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RefundRequestBody.model_json_schema()}},
        }
    },
)
async def request_refund(
    request: Request,
    key: Annotated[ApiKey, Depends(require(Role.support))],
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Unique per refund request (8-200 of A-Z a-z 0-9 . _ : -); it becomes "
            "the message's event_id. Repeating a request with the same key is safe.",
        ),
    ],
) -> JSONResponse:
    """Ask for a refund: publishes `refund.requested` to the ingest topic and answers 202
    with the refund's URL. The ledger decides; the refund's status shows the outcome."""
    from starlette.concurrency import run_in_threadpool

    state = api_state(request)
    body = _parse(await _read_body(request), request.headers.get("content-type", ""))
    publisher = state.publisher
    if publisher is None:
        raise Problem(
            503,
            "refund requests need Kafka: this server runs on the embedded default "
            "(set EVLEDGER_KAFKA_BOOTSTRAP)",
        )

    def publish_once() -> str:
        with state.views.connection() as db:
            state.ensure_tables(db)
            remember(db, idempotency_key, body)
            known = stored(db, idempotency_key, body)
            if known.published:
                return known.refund_id
            claim(db, idempotency_key)  # or a 409 while another request publishes it
            try:
                # Read again under the claim: one that published before we claimed is done.
                claimed = stored(db, idempotency_key, body)
                if not claimed.published:
                    to = destination(db, claimed.message, body.payment_id, publisher.shards)
                    publisher.publish(claimed.message, to)
                    mark_published(db, idempotency_key)
            finally:
                release(db, idempotency_key)
        return claimed.refund_id

    refund_id = await run_in_threadpool(publish_once)
    url = f"/v1/refunds/{link_segment(refund_id)}"
    accepted = RefundAccepted(refund_id=refund_id, event_id=idempotency_key, url=url)
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": url})
