"""Request ids (the client's if plain, else 32 random hex digits, never the same twice) and
the access log's time (written once per second, and then byte-equal to logging.Formatter's
around second boundaries and in zones with odd offsets and summer time)."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Iterator

import pytest

from api.observe import _LogFormatter, request_id_of

FORMAT = "%(asctime)s %(name)s %(message)s"


def test_a_plain_incoming_id_is_kept() -> None:
    assert request_id_of(b"client-id_1.2") == "client-id_1.2"


@pytest.mark.parametrize("incoming", [b"", b"short", b"with space in it", b"x" * 65, b"\xff" * 9])
def test_a_missing_or_odd_incoming_id_gets_a_new_one(incoming: bytes) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_of(incoming))


def test_new_ids_are_not_repeated() -> None:
    ids = {request_id_of(b"") for _ in range(100_000)}
    assert len(ids) == 100_000


@pytest.fixture(params=["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata"])
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def _instants() -> list[float]:
    """Times around second boundaries (in order, as a log's lines come, and shuffled), a
    summer-time change in Berlin and St John's, and random ones."""
    draw = random.Random(15)
    edges = [1_711_846_799.0, 1_710_054_000.0, 1_700_000_000.0]  # 2024-03-31 CET -> CEST ...
    around = [edge + step / 1000 for edge in edges for step in range(-1500, 1500, 7)]
    scattered = [draw.uniform(0, 2_000_000_000) for _ in range(5_000)]
    shuffled = around[:]
    draw.shuffle(shuffled)
    return around + shuffled + scattered


def test_the_log_time_is_logging_formatters(zone: str) -> None:
    mine, theirs = _LogFormatter(FORMAT), logging.Formatter(FORMAT)
    for created in _instants():
        record = logging.LogRecord("api", logging.INFO, __file__, 1, "GET /x", None, None)
        record.created = created
        record.msecs = (created - int(created)) * 1000
        assert mine.format(record) == theirs.format(record), (zone, created)
