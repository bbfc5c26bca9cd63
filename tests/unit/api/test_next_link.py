"""A history page's `next` link, read back the way a server and api/raw_ids.py read a
request, names the same owner and the same period, whatever the id's characters (`/` and
`%` included) and the times' offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, quote, unquote, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from api.params import parse_time
from api.raw_ids import segment_id, with_segmented_path
from api.routes_read import next_link
from projections.payment_history import HistoryFilter

# Any id of the API's pattern, `/` and `%` included.
_IDS = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)


def _routed(raw: str) -> str:
    """The path the routes see for a request of this raw path (as a server decodes it)."""
    return str(with_segmented_path({"raw_path": raw.encode(), "path": unquote(raw)})["path"])


def _owner(path: str) -> str:
    segments = path.split("/")
    assert len(segments) == 5, path  # one segment for the id: the route's
    return segment_id(segments[3])


_OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_TIMES = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(datetime(1970, 1, 2), datetime(2999, 12, 30)),
    _OFFSETS,
)


@given(_IDS, st.none() | _TIMES, st.none() | _TIMES, st.integers(1, 500))
def test_the_link_reads_back_as_the_same_page(
    owner: str, period_from: datetime | None, period_to: datetime | None, limit: int
) -> None:
    path = _routed(f"/v1/customers/{quote(owner, safe='')}/payments")
    assert _owner(path) == owner
    wanted = HistoryFilter(
        customer_id=owner, period_from=period_from, period_to=period_to, limit=limit
    )
    link = urlsplit(next_link(path, wanted, "Q1VSU09S"))
    assert link.path.isascii() and " " not in link.path
    assert _owner(_routed(link.path)) == owner
    query = parse_qs(link.query, strict_parsing=True)
    assert query["limit"] == [str(limit)] and query["after"] == ["Q1VSU09S"]
    for name, moment in (("from", period_from), ("to", period_to)):
        read = parse_time(query[name][0], name) if name in query else None
        assert read == moment
        assert read is None or read.utcoffset() == moment.utcoffset()  # type: ignore[union-attr]


def test_a_percent_in_an_id_is_not_read_as_an_escape() -> None:
    path = _routed("/v1/stations/50%252Foff/payments")  # the id 50%2Foff, escaped
    link = next_link(path, HistoryFilter(station_id="x"), "C")
    assert link.startswith("/v1/stations/50%252Foff/payments?")
