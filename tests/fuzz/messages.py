"""Hypothesis strategies for hostile upstream messages: valid ones, mutations of valid ones
(hostile values, missing and extra fields, duplicate keys, deep nesting, non-JSON
literals) and raw bytes, over a small id space so that messages meet each other."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.unit.consumers.test_contract import VALID

IDS = {
    "tariff_id": ["T-STD", "T-TOD"],
    "session_id": ["S1", "S2", "S3"],
    "payment_id": ["P1", "P2", "P3"],
    "refund_id": ["R1", "R2"],
}
HOSTILE: list[Any] = [
    2**63, 2**64, -1, 10**40, 999_999_999_999, 0, True, None, 1.5, float("1e308"),
    "", " ", "\u200b", "P\x00", "[/]", "[link=http://x]y", "=HYPERLINK(\"x\")", "\x1b[2J",
    "1e-999999999", "+0.19", ".19", "0.1_9", "\u0660.5", "9999.999999", "1700000000",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-03-01T10:00:00", "x" * 300,
    [], {}, [[[[1]]]], {"a": {"b": {"c": 1}}},
]  # fmt: skip
TIMES = ["2026-03-01T10:00:00Z", "2026-03-01T11:30:00+01:00", "2026-03-02T09:00:00Z",
         "2026-04-02T09:00:00Z", "2026-03-01T09:59:59Z"]  # fmt: skip


@st.composite
def valid_message(draw: st.DrawFn) -> dict[str, Any]:
    message_type = draw(st.sampled_from(sorted(VALID)))
    body: dict[str, Any] = {
        "type": message_type,
        "event_id": f"e{draw(st.integers(0, 400))}",
        "occurred_at": draw(st.sampled_from(TIMES)),
        **VALID[message_type],
    }
    for field, choices in IDS.items():
        if field in body:
            body[field] = draw(st.sampled_from(choices))
    for field in ("amount_minor", "meter_stop_wh"):
        if field in body:
            body[field] = draw(st.integers(0, 100_000))
    if message_type == "session.stopped":
        body["charging_ended_at"] = draw(st.sampled_from([*TIMES, None]))
        if body["charging_ended_at"] is None:
            del body["charging_ended_at"]
    return body


@st.composite
def mutated_message(draw: st.DrawFn) -> bytes:
    body = draw(valid_message())
    how = draw(st.sampled_from(["value", "drop", "extra", "duplicate", "deep", "literal"]))
    field = draw(st.sampled_from(sorted(body)))
    if how == "value":
        body[field] = draw(st.sampled_from(HOSTILE))
    elif how == "drop":
        del body[field]
    elif how == "extra":
        body[draw(st.text(max_size=8))] = draw(st.sampled_from(HOSTILE))
    text = json.dumps(body, allow_nan=True)
    if how == "duplicate":
        other = draw(st.sampled_from(sorted(VALID)))
        text = text[:-1] + f', "type": "{other}"}}'
    elif how == "deep":
        depth = draw(st.sampled_from([17, 1000, 100_000]))
        text = text[:-1] + ', "trace": ' + "[" * depth + "]" * depth + "}"
    elif how == "literal":
        text = text[:-1] + ', "x": ' + draw(st.sampled_from(["NaN", "Infinity", "-Infinity"])) + "}"
    return text.encode()


def message_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(
        valid_message().map(lambda body: json.dumps(body).encode()),
        valid_message().map(lambda body: json.dumps(body).encode()),
        mutated_message(),
        st.binary(max_size=64).filter(
            lambda raw: raw.strip() and b"\n" not in raw and b"\r" not in raw
        ),
    )
