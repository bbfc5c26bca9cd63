"""Aggregate ids are uuid5 of the evledger namespace and the kind-prefixed upstream id:
fixed forever, since every ledger already holds them."""

from __future__ import annotations

from uuid import UUID, uuid5

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValueError
from domain.ids import (
    EVLEDGER_NAMESPACE,
    payment_aggregate_id,
    processed_message_id,
    refund_aggregate_id,
    session_aggregate_id,
    tariff_aggregate_id,
)


@pytest.mark.parametrize("upstream_id", ["S1", "sess-0001", "é€😀", "x" * 300])
def test_ids_are_the_standard_uuid5_of_the_kind_and_the_upstream_id(upstream_id: str) -> None:
    for kind, derive in (
        ("session", session_aggregate_id),
        ("tariff", tariff_aggregate_id),
        ("payment", payment_aggregate_id),
        ("refund", refund_aggregate_id),
    ):
        assert derive(upstream_id) == uuid5(EVLEDGER_NAMESPACE, f"{kind}:{upstream_id}")


def test_a_known_id_never_changes() -> None:
    assert session_aggregate_id("S1") == UUID("0fee002b-5ce2-53ef-972f-b80b9415583e")


def test_an_empty_upstream_id_is_refused() -> None:
    with pytest.raises(InvalidValueError):
        session_aggregate_id("")


@given(st.text(min_size=1))
def test_any_id_is_the_library_s_uuid5_in_every_respect(upstream_id: str) -> None:
    derived = processed_message_id(upstream_id)
    standard = uuid5(EVLEDGER_NAMESPACE, f"message:{upstream_id}")
    assert (derived.int, str(derived), derived.version, derived.variant) == (
        standard.int,
        str(standard),
        standard.version,
        standard.variant,
    )
    assert derived.is_safe == standard.is_safe


@pytest.mark.parametrize("upstream_id", ["", None, 7, ["S1"], {"id": "S1"}])
def test_what_is_not_a_non_empty_string_is_refused_in_words(upstream_id: object) -> None:
    # An unhashable value never reaches the cache's key: the same refusal as any other.
    with pytest.raises(InvalidValueError, match="session id must be a non-empty string"):
        session_aggregate_id(upstream_id)  # type: ignore[arg-type]


def test_kinds_kept_apart_and_found_again() -> None:
    first = session_aggregate_id("shared-1")
    assert session_aggregate_id("shared-1") is first  # kept
    assert tariff_aggregate_id("shared-1") != first
    assert processed_message_id("shared-1") == uuid5(EVLEDGER_NAMESPACE, "message:shared-1")
