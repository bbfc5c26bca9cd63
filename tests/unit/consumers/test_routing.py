"""The routing rule of a sharded ledger: by charging session, tariffs everywhere, payments and
refunds by the session they belong to; a record on the wrong partition is named misrouted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kafka.partitioner.default import DefaultPartitioner

from consumers.routing import ROUTING_RULE, SessionRouter, misrouted, shard_of


def line(**fields: str) -> bytes:
    return json.dumps(fields).encode()


def test_messages_follow_their_session() -> None:
    router = SessionRouter(4)
    home = shard_of(b"S1", 4)
    routes = [
        router.route(line(type="session.started", session_id="S1", tariff_id="T")),
        router.route(line(type="payment.authorized", session_id="S1", payment_id="P1")),
        router.route(line(type="payment.captured", payment_id="P1")),
        router.route(line(type="refund.requested", refund_id="R1", payment_id="P1")),
        router.route(line(type="refund.issued", refund_id="R1")),
        router.route(line(type="session.stopped", session_id="S1")),
    ]
    assert {(route.key, route.partition, route.everywhere) for route in routes} == {
        (b"S1", home, False)
    }


def test_tariffs_go_everywhere_and_strangers_by_their_own_id() -> None:
    router = SessionRouter(3)
    tariff = router.route(line(type="tariff.published", tariff_id="T"))
    assert tariff.everywhere and tariff.key == b"T"
    stranger = router.route(line(type="payment.captured", payment_id="P9"))
    assert (stranger.key, stranger.partition) == (b"P9", shard_of(b"P9", 3))
    garbage = router.route(b"\xff not json")
    assert (garbage.key, garbage.partition, garbage.everywhere) == (None, None, False)


@pytest.mark.parametrize("key", [b"S1", b"session-42", b"\xe2\x82\xac", b""])
def test_the_shard_of_a_key_is_kafkas_default_partition(key: bytes) -> None:
    class Cluster:
        def topics(self) -> set[str]:
            return {"t"}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(5))

        def available_partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(5))

    partitioner = DefaultPartitioner()
    chosen = partitioner.partition("t", key, key, None, None, Cluster())
    assert shard_of(key, 5) == chosen


def test_misrouted_names_the_rule() -> None:
    home = shard_of(b"S1", 3)
    assert misrouted("session.stopped", "S1", b"S1", home, 3) is None
    assert misrouted("tariff.published", None, None, (home + 1) % 3, 3) is None
    assert misrouted("payment.captured", None, b"S1", home, 3) is None
    for args in [
        ("session.stopped", "S1", b"S1", (home + 1) % 3),
        ("session.stopped", "S1", b"S2", shard_of(b"S2", 3)),
        ("payment.captured", None, None, home),
    ]:
        wrong = misrouted(*args, 3)
        assert wrong is not None
        assert wrong[1].startswith("misrouted") and ROUTING_RULE in wrong[1]


def ocpi_line(kind: str, obj: Any) -> bytes:
    return json.dumps({"type": f"ocpi.{kind}", "event_id": "E", kind: obj}).encode()


def test_ocpi_tariffs_and_locations_go_everywhere_and_a_credit_meets_its_original() -> None:
    router = SessionRouter(3)
    assert router.route(ocpi_line("tariff", {"id": "T1"})).everywhere
    assert router.route(ocpi_line("location", {"id": "L1"})).everywhere
    cdr = {"country_code": "NL", "party_id": "EVL", "id": "CDR-1"}
    original = router.route(ocpi_line("cdr", cdr))
    credit_cdr = {**cdr, "id": "CDR-1-CREDIT", "credit": True, "credit_reference_id": "CDR-1"}
    credit = router.route(ocpi_line("cdr", credit_cdr))
    key = b"ocpi-cdr:NL:EVL:CDR-1"
    assert (original.key, original.partition) == (credit.key, credit.partition)
    assert (original.key, original.partition, original.everywhere) == (
        key,
        shard_of(key, 3),
        False,
    )
    # The CDR's overcharge claim: its refund messages follow the CDR's shard.
    claim = router.route(line(type="refund.approved", refund_id="ocpi-claim:NL:EVL:CDR-1"))
    assert (claim.key, claim.partition) == (key, original.partition)


def test_ocpi_reference_data_is_never_misrouted_and_a_cdr_is_checked_by_its_key() -> None:
    key = "ocpi-cdr:NL:EVL:CDR-1"
    home = shard_of(key.encode(), 3)
    for kind in ("ocpi.tariff", "ocpi.location"):
        assert misrouted(kind, None, None, (home + 1) % 3, 3) is None
    assert misrouted("ocpi.cdr", key, key.encode(), home, 3) is None
    wrong = misrouted("ocpi.cdr", key, b"CDR-1", shard_of(b"CDR-1", 3), 3, key_field="cdr.id")
    assert wrong is not None and wrong[0] == "cdr.id" and ROUTING_RULE in wrong[1]
    assert misrouted("ocpi.cdr", key, key.encode(), (home + 1) % 3, 3) is not None


def test_an_overcharge_claims_refund_messages_follow_its_cdr_in_any_stream() -> None:
    key = b"ocpi-cdr:NL:EVL:CDR-1"
    router = SessionRouter(3)  # a new stream: it never saw the CDR
    for message in (
        line(type="refund.approved", refund_id="ocpi-claim:NL:EVL:CDR-1"),
        line(type="refund.requested", refund_id="R9", payment_id="ocpi-cdr:NL:EVL:CDR-1"),
        line(type="refund.issued", refund_id="R9"),
    ):
        route = router.route(message)
        assert (route.key, route.partition) == (key, shard_of(key, 3))
