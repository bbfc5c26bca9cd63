"""The analysts' report as a typed document: period, currency, headline figures and named
sections of rows, built from the analytics tables for one currency and optional filters.

Money stays integer minor units of the report's one currency (never added across
currencies); rates and quantities are exact Decimals. Renderers (terminal, JSON, CSV,
HTML) only format what this module computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from projections.analytics import divided, utilisation_ctes
from projections.databases.duckdb import DuckDatabase
from projections.databases.port import Row

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class SeveralCurrencies(ValueError):
    """The data holds more than one currency and no currency was chosen."""

    def __init__(self, currencies: Sequence[str]) -> None:
        self.currencies = tuple(currencies)
        super().__init__(
            f"the data holds amounts in {', '.join(self.currencies)}; a report never adds "
            "different currencies: choose one with --currency "
            f"(for example --currency {self.currencies[0]})"
        )


class UnknownSection(ValueError):
    """A section name that is not one of SECTION_NAMES."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no section {name!r}; choose from {', '.join(SECTION_NAMES)}")


class Kind(StrEnum):
    """How a column's values are to be read (and formatted)."""

    text = "text"
    integer = "integer"
    money = "money"  # integer minor units of the report's currency
    money_rate = "money_rate"  # Decimal minor units per kWh
    kwh = "kwh"
    hours = "hours"
    quantity = "quantity"
    share = "share"  # a fraction, 0.1234 = 12.34 %
    ratio = "ratio"  # a multiple, 1.25 = 1.25 x
    day = "day"
    hour = "hour"  # hour of the day, 0-23
    flag = "flag"


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    kind: Kind


@dataclass(frozen=True)
class Filters:
    """What the report covers: local dates (inclusive), one station, one currency."""

    date_from: date | None = None
    date_to: date | None = None
    station: str | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Section:
    """One named table of the report; ``compact`` lists the columns a short view keeps,
    ``rank_by`` the column a short view orders by (descending), ``totals`` the columns
    that add up."""

    name: str
    title: str
    caption: str
    columns: tuple[Column, ...]
    rows: list[Row] = field(default_factory=list)
    compact: tuple[str, ...] = ()
    rank_by: str | None = None
    totals: tuple[str, ...] = ()

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    def total(self, name: str) -> Any:
        return sum((row[name] or 0 for row in self.rows), start=0)


@dataclass(frozen=True)
class Headline:
    gross_minor: int = 0
    net_minor: int = 0
    vat_minor: int = 0
    energy_kwh: Decimal = Decimal(0)
    sessions: int = 0
    customers: int = 0
    repeat_customers: int = 0
    stations: int = 0
    net_minor_per_kwh: Decimal | None = None
    gross_minor_per_kwh: Decimal | None = None
    payments: int = 0
    refunds: int = 0
    refund_rate: Decimal | None = None
    refunded_minor: int = 0
    books_balanced: bool = True


@dataclass(frozen=True)
class Report:
    period_from: date | None
    period_to: date | None
    currency: str | None
    filters: Filters
    headline: Headline
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        raise UnknownSection(name)


def _quantize(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class _Scope:
    """The filtered facts as common table expressions, and their parameters.

    ``fleet``: sessions of the currency and dates (every station, for fleet comparisons);
    ``s``: those of the chosen station; ``p``: their payments (and, with no station
    chosen, payments that never had a session, by their UTC creation date); ``r``: the
    refunds of those payments, with the station of their session.
    """

    sql: str
    params: list[Any]
    station: str | None
    currency: str

    def query(self, db: DuckDatabase, body: str, params: Sequence[Any] = ()) -> list[Row]:
        return db.execute(f"WITH {self.sql} {body}", [*self.params, *params])


def _scope(filters: Filters, currency: str) -> _Scope:
    session_conditions: list[str] = ["currency = ?"]
    session_params: list[Any] = [currency]
    payment_conditions: list[str] = ["pay.currency = ?"]
    payment_params: list[Any] = [currency]
    if filters.date_from is not None:
        session_conditions.append("CAST(started_at_local AS DATE) >= ?")
        payment_conditions.append("CAST(pay.created_at AS DATE) >= ?")
        session_params.append(filters.date_from)
        payment_params.append(filters.date_from)
    if filters.date_to is not None:
        session_conditions.append("CAST(started_at_local AS DATE) <= ?")
        payment_conditions.append("CAST(pay.created_at AS DATE) <= ?")
        session_params.append(filters.date_to)
        payment_params.append(filters.date_to)
    station_condition = "TRUE" if filters.station is None else "station_id = ?"
    station_params = [] if filters.station is None else [filters.station]
    if filters.station is not None:
        payment_conditions.append("FALSE")
    sql = f"""
        fleet AS (SELECT * FROM fact_sessions WHERE {" AND ".join(session_conditions)}),
        s AS (SELECT * FROM fleet WHERE {station_condition}),
        p AS (SELECT pay.* FROM fact_payments pay JOIN s ON s.session_key = pay.session_key
              UNION ALL
              SELECT pay.* FROM fact_payments pay
              WHERE pay.session_key IS NULL AND {" AND ".join(payment_conditions)}),
        r AS (SELECT ref.*, s.station_id FROM fact_refunds ref
              JOIN p ON p.payment_key = ref.payment_key
              LEFT JOIN s ON s.session_key = COALESCE(ref.session_key, p.session_key))"""
    params = [*session_params, *station_params, *payment_params]
    return _Scope(sql, params, filters.station, currency)


def currencies(db: DuckDatabase) -> list[str]:
    """Every currency the sessions and payments were in."""
    rows = db.execute(
        "SELECT currency FROM fact_sessions WHERE currency IS NOT NULL "
        "UNION SELECT currency FROM fact_payments WHERE currency IS NOT NULL ORDER BY 1"
    )
    return [str(row["currency"]) for row in rows]


def build_report(db: DuckDatabase, filters: Filters = Filters()) -> Report:
    """The report for ``filters``; without a currency the data must hold only one
    (otherwise SeveralCurrencies). No data at all gives an empty report."""
    currency = filters.currency
    if currency is None:
        found = currencies(db)
        if len(found) > 1:
            raise SeveralCurrencies(found)
        currency = found[0] if found else None
    # No data: the same sections, empty (no currency matches the empty code).
    scope = _scope(filters, currency or "")
    period = scope.query(
        db,
        "SELECT CAST(MIN(started_at_local) AS DATE) AS first, "
        "CAST(MAX(started_at_local) AS DATE) AS last FROM s",
    )[0]
    sections = tuple(replace(section, rows=rows(db, scope)) for section, rows in _SECTIONS)
    if currency is None:
        return Report(filters.date_from, filters.date_to, None, filters, Headline(), sections)
    report = Report(
        filters.date_from or period["first"],
        filters.date_to or period["last"],
        currency,
        filters,
        Headline(),
        sections,
    )
    return replace(report, headline=_headline(db, scope, report.section("trial_balance")))


def _headline(db: DuckDatabase, scope: _Scope, trial_balance: Section) -> Headline:
    totals = scope.query(
        db,
        "SELECT COALESCE(SUM(total_minor), 0) AS gross, COALESCE(SUM(subtotal_minor), 0) AS net,"
        " COALESCE(SUM(vat_minor), 0) AS vat, COALESCE(SUM(energy_kwh), 0) AS energy_kwh,"
        " COALESCE(SUM(energy_wh) FILTER (WHERE total_minor IS NOT NULL), 0) AS priced_wh,"
        " COUNT(*) AS sessions, COUNT(DISTINCT customer_id) AS customers,"
        " COUNT(DISTINCT station_id) AS stations FROM s",
    )[0]
    repeat = scope.query(
        db,
        "SELECT COUNT(*) AS repeat FROM (SELECT customer_id FROM s GROUP BY customer_id "
        "HAVING COUNT(*) > 1)",
    )[0]
    refunds = scope.query(
        db,
        "SELECT (SELECT COUNT(*) FROM p) AS payments, (SELECT COUNT(*) FROM r) AS refunds, "
        "(SELECT COALESCE(SUM(issued_minor), 0) FROM r WHERE status = 'issued') AS refunded",
    )[0]
    priced_wh = int(totals["priced_wh"])
    payments, refund_count = int(refunds["payments"]), int(refunds["refunds"])

    def per_kwh(minor: int) -> Decimal | None:
        return _quantize(Decimal(minor * 1000) / priced_wh, "0.01") if priced_wh else None

    return Headline(
        gross_minor=int(totals["gross"]),
        net_minor=int(totals["net"]),
        vat_minor=int(totals["vat"]),
        energy_kwh=Decimal(totals["energy_kwh"]),
        sessions=int(totals["sessions"]),
        customers=int(totals["customers"]),
        repeat_customers=int(repeat["repeat"]),
        stations=int(totals["stations"]),
        net_minor_per_kwh=per_kwh(int(totals["net"])),
        gross_minor_per_kwh=per_kwh(int(totals["gross"])),
        payments=payments,
        refunds=refund_count,
        refund_rate=_quantize(Decimal(refund_count) / payments, "0.0001") if payments else None,
        refunded_minor=int(refunds["refunded"]),
        books_balanced=trial_balance.total("debit_minor") == trial_balance.total("credit_minor"),
    )


_DAY = Column("local_day", "day", Kind.day)
_STATION = Column("station_id", "station", Kind.text)
_SESSIONS = Column("sessions", "sessions", Kind.integer)
_ENERGY = Column("energy_kwh", "energy kWh", Kind.kwh)
_MONEY_DAY_COLUMNS = (
    _SESSIONS,
    _ENERGY,
    Column("net_minor", "net", Kind.money),
    Column("vat_minor", "VAT", Kind.money),
    Column("gross_minor", "gross", Kind.money),
)
_MONEY_DAY_SQL = (
    "COUNT(*) AS sessions, COALESCE(SUM(energy_kwh), 0) AS energy_kwh, "
    "COALESCE(SUM(subtotal_minor), 0) AS net_minor, COALESCE(SUM(vat_minor), 0) AS vat_minor, "
    "COALESCE(SUM(total_minor), 0) AS gross_minor"
)
_MONEY_DAY_TOTALS = ("sessions", "energy_kwh", "net_minor", "vat_minor", "gross_minor")

# Where a section's rows come from: the database, within the report's scope.
RowSource = Callable[[DuckDatabase, _Scope], list[Row]]


def _select(
    body: str,
    params: Callable[[_Scope], Sequence[Any]] = lambda scope: (),
    then: Callable[[Row], None] = lambda row: None,
) -> RowSource:
    """Rows of a SELECT over the scope's tables (``body`` may add its own common table
    expressions after a comma), with ``params`` of its own, each row finished by ``then``."""

    def rows(db: DuckDatabase, scope: _Scope) -> list[Row]:
        found = scope.query(db, body, params(scope))
        for row in found:
            then(row)
        return found

    return rows


def _weekday_name(row: Row) -> None:
    row["weekday_name"] = WEEKDAY_NAMES[int(row["weekday"]) - 1]


def _trial_balance_rows(db: DuckDatabase, scope: _Scope) -> list[Row]:
    """The whole ledger's postings in the scope's currency: no date or station applies."""
    rows = db.execute(
        "SELECT account, "
        "COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'debit'), 0) AS debit_minor, "
        "COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'credit'), 0) AS credit_minor "
        "FROM fact_postings WHERE currency = ? GROUP BY account ORDER BY account",
        [scope.currency],
    )
    for row in rows:
        row["balance_minor"] = row["debit_minor"] - row["credit_minor"]
    return rows


# Sessions per customer, in bands an operator talks about: (label, lowest, highest).
_VISIT_BANDS = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21+", 21, None),
)


def _customer_spend(db: DuckDatabase, scope: _Scope) -> list[Row]:
    return scope.query(
        db,
        "SELECT customer_id, COUNT(*) AS sessions, COALESCE(SUM(total_minor), 0) AS spend "
        "FROM s GROUP BY customer_id",
    )


def _visit_rows(db: DuckDatabase, scope: _Scope) -> list[Row]:
    customers = _customer_spend(db, scope)
    rows: list[Row] = []
    for label, low, high in _VISIT_BANDS:
        band = [
            c for c in customers if low <= c["sessions"] and (high is None or c["sessions"] <= high)
        ]
        if customers and (band or high is not None):
            rows.append(
                {
                    "visits": label,
                    "customers": len(band),
                    "sessions": sum(int(c["sessions"]) for c in band),
                    "spend_minor": sum(int(c["spend"]) for c in band),
                }
            )
    return rows


def _nice_width(largest: int, buckets: int = 10) -> int:
    """A round bucket width (1, 2 or 5 times a power of ten, in minor units) that splits
    0..largest into at most about ``buckets`` buckets."""
    raw = max(1, -(-largest // buckets))
    power = 1
    while True:
        for step in (1, 2, 5):
            if step * power >= raw:
                return step * power
        power *= 10


def _spend_rows(db: DuckDatabase, scope: _Scope) -> list[Row]:
    spends = sorted(int(c["spend"]) for c in _customer_spend(db, scope))
    rows: list[Row] = []
    if spends:
        # Round bands up to the 95th percentile; the few biggest spenders share the last,
        # open band instead of stretching the scale for everyone else.
        typical = spends[(len(spends) - 1) * 95 // 100]
        width = _nice_width(typical + 1, 8)
        start = 0
        while start < spends[-1] + 1:
            end: int | None = start + width if start + width <= typical else None
            inside = [s for s in spends if start <= s and (end is None or s < end)]
            rows.append(
                {
                    "from_minor": start,
                    "to_minor": end,
                    "customers": len(inside),
                    "spend_minor": sum(inside),
                }
            )
            if end is None:
                break
            start = end
    return rows


# The report's sections in order: each as a Section without rows, and where its rows come from.
_SECTIONS: tuple[tuple[Section, RowSource], ...] = (
    (
        Section(
            "revenue_by_day",
            "Revenue and energy per day",
            "What the stations earned and delivered each day, by the stations' local date. "
            "Net is before VAT, gross is what drivers paid.",
            (_DAY, *_MONEY_DAY_COLUMNS),
            compact=("local_day", "sessions", "energy_kwh", "net_minor", "gross_minor"),
            totals=_MONEY_DAY_TOTALS,
        ),
        _select(
            f"SELECT CAST(started_at_local AS DATE) AS local_day, {_MONEY_DAY_SQL} "
            "FROM s GROUP BY local_day ORDER BY local_day"
        ),
    ),
    (
        Section(
            "revenue_by_station_day",
            "Revenue and energy per station and day",
            "The same daily figures for each station on its own (choose a station in the "
            "chart above to see its days).",
            (_DAY, _STATION, *_MONEY_DAY_COLUMNS),
            compact=("local_day", "station_id", "sessions", "energy_kwh", "gross_minor"),
            rank_by="gross_minor",
            totals=_MONEY_DAY_TOTALS,
        ),
        _select(
            f"SELECT CAST(started_at_local AS DATE) AS local_day, station_id, {_MONEY_DAY_SQL} "
            "FROM s GROUP BY local_day, station_id ORDER BY local_day, station_id"
        ),
    ),
    (
        Section(
            "sessions_by_weekday_hour",
            "Sessions by weekday and hour",
            "When drivers start charging: sessions started in each hour of each weekday, "
            "in the stations' local time. Darker is busier.",
            (
                Column("weekday", "weekday no", Kind.integer),
                Column("weekday_name", "weekday", Kind.text),
                Column("local_hour", "hour", Kind.hour),
                _SESSIONS,
                _ENERGY,
            ),
            compact=("weekday_name", "local_hour", "sessions", "energy_kwh"),
            rank_by="sessions",
            totals=("sessions", "energy_kwh"),
        ),
        _select(
            "SELECT isodow(started_at_local) AS weekday, hour(started_at_local) AS local_hour, "
            "COUNT(*) AS sessions, COALESCE(SUM(energy_kwh), 0) AS energy_kwh FROM s "
            "WHERE started_at_local IS NOT NULL GROUP BY ALL ORDER BY weekday, local_hour",
            then=_weekday_name,
        ),
    ),
    (
        Section(
            "station_utilisation",
            "Station utilisation",
            "Share of the time each station's connectors were occupied. Under half the fleet "
            "average is under-used, over one and a half times is over-used.",
            (
                _STATION,
                Column("connectors", "connectors", Kind.integer),
                _SESSIONS,
                Column("occupied_hours", "occupied h", Kind.hours),
                Column("charging_hours", "charging h", Kind.hours),
                Column("idle_hours", "idle h", Kind.hours),
                Column("utilisation", "utilisation", Kind.share),
                Column("vs_fleet_average", "vs fleet", Kind.ratio),
                Column("band", "band", Kind.text),
            ),
            compact=("station_id", "sessions", "occupied_hours", "utilisation", "band"),
            totals=("sessions", "occupied_hours", "charging_hours", "idle_hours"),
        ),
        # As the station_utilisation view, on the filtered sessions; the bands compare
        # with the whole fleet even when one station is chosen.
        _select(
            f""", {utilisation_ctes("fleet")}
            SELECT * FROM utilisation WHERE ? IS NULL OR station_id = ?
            ORDER BY utilisation DESC, station_id""",
            params=lambda scope: [scope.station, scope.station],
        ),
    ),
    (
        Section(
            "price_by_tariff",
            "Price per kWh by tariff",
            "What a kWh really earned on each tariff version, before VAT, with session fees "
            "and time charges included.",
            (
                Column("tariff_id", "tariff", Kind.text),
                Column("tariff_version", "version", Kind.integer),
                _SESSIONS,
                _ENERGY,
                Column("net_minor", "net", Kind.money),
                Column("net_minor_per_kwh", "net per kWh", Kind.money_rate),
            ),
            compact=("tariff_id", "tariff_version", "sessions", "net_minor", "net_minor_per_kwh"),
            totals=("sessions", "energy_kwh", "net_minor"),
        ),
        _select(
            "SELECT tariff_id, tariff_version, COUNT(*) AS sessions,"
            " SUM(energy_kwh) AS energy_kwh, SUM(subtotal_minor) AS net_minor, "
            + divided("SUM(subtotal_minor) * 1000", "SUM(energy_wh)", 2, "DECIMAL(18,2)")
            + " AS net_minor_per_kwh FROM s WHERE total_minor IS NOT NULL GROUP BY ALL"
            " ORDER BY tariff_id, tariff_version"
        ),
    ),
    (
        Section(
            "price_by_component",
            "Price per kWh by tariff and component",
            "What each part of the price (energy by time window, time, idle fees, session "
            "fees) adds to a kWh's net price on each tariff; the parts add up to the tariff's "
            "price per kWh.",
            (
                Column("tariff_id", "tariff", Kind.text),
                Column("component", "component", Kind.text),
                Column("window_name", "window", Kind.text),
                Column("unit", "unit", Kind.text),
                Column("quantity", "quantity", Kind.quantity),
                Column("amount_minor", "net", Kind.money),
                Column("minor_per_kwh", "per kWh", Kind.money_rate),
            ),
            compact=("tariff_id", "component", "window_name", "amount_minor", "minor_per_kwh"),
            totals=("amount_minor",),
        ),
        _select(
            f""", tariff_energy AS (
                SELECT tariff_id, SUM(energy_wh) AS energy_wh FROM s
                WHERE total_minor IS NOT NULL GROUP BY tariff_id)
            SELECT s.tariff_id, li.component, COALESCE(li.window_name, '') AS window_name,
                   li.unit, SUM(li.quantity) AS quantity, SUM(li.amount_minor) AS amount_minor,
                   {divided("SUM(li.amount_minor) * 1000", "MAX(t.energy_wh)", 2, "DECIMAL(18,2)")}
                       AS minor_per_kwh
            FROM fact_line_items li JOIN s ON s.session_key = li.session_key
            JOIN tariff_energy t ON t.tariff_id = s.tariff_id
            WHERE s.total_minor IS NOT NULL
            GROUP BY s.tariff_id, li.component, window_name, li.unit
            ORDER BY s.tariff_id, amount_minor DESC, li.component, window_name"""
        ),
    ),
    (
        Section(
            "refunds_by_station_reason",
            "Refunds by station and reason",
            "Refund requests traced to the station of their session. A reason seen more than "
            "once at a station is a recurring issue worth a visit.",
            (
                _STATION,
                Column("reason", "reason", Kind.text),
                Column("refunds", "refunds", Kind.integer),
                Column("issued", "issued", Kind.integer),
                Column("rejected", "rejected", Kind.integer),
                Column("requested_minor", "requested", Kind.money),
                Column("issued_minor", "paid back", Kind.money),
                Column("refunds_per_session", "per session", Kind.share),
                Column("recurring", "recurring", Kind.flag),
            ),
            compact=("station_id", "reason", "refunds", "issued_minor", "recurring"),
            rank_by="refunds",
            totals=("refunds", "issued", "rejected", "requested_minor", "issued_minor"),
        ),
        _select(
            f""", station_sessions AS (SELECT station_id, COUNT(*) AS sessions FROM s
                                       GROUP BY station_id)
            SELECT COALESCE(r.station_id, '') AS station_id, r.reason, COUNT(*) AS refunds,
                   COUNT(*) FILTER (WHERE r.status = 'issued') AS issued,
                   COUNT(*) FILTER (WHERE r.status = 'rejected') AS rejected,
                   SUM(r.amount_minor) AS requested_minor,
                   COALESCE(SUM(r.issued_minor), 0) AS issued_minor,
                   {divided("COUNT(*)", "MAX(ss.sessions)", 4, "DECIMAL(9,4)")}
                       AS refunds_per_session,
                   COUNT(*) > 1 AS recurring
            FROM r LEFT JOIN station_sessions ss ON ss.station_id = r.station_id
            GROUP BY r.station_id, r.reason ORDER BY refunds DESC, station_id, r.reason"""
        ),
    ),
    (
        Section(
            "customer_visits",
            "Repeat customers",
            "How often customers came back: customers by number of sessions in the period, "
            "with what they spent (gross).",
            (
                Column("visits", "sessions each", Kind.text),
                Column("customers", "customers", Kind.integer),
                _SESSIONS,
                Column("spend_minor", "spend", Kind.money),
            ),
            totals=("customers", "sessions", "spend_minor"),
        ),
        _visit_rows,
    ),
    (
        Section(
            "spend_distribution",
            "Spend per customer",
            "How much customers spent in the period (gross): the number of customers in each "
            "spend band, from the band's lower bound up to (not including) its upper bound; the "
            "last band is open-ended.",
            (
                Column("from_minor", "from", Kind.money),
                Column("to_minor", "to", Kind.money),
                Column("customers", "customers", Kind.integer),
                Column("spend_minor", "spend", Kind.money),
            ),
            totals=("customers", "spend_minor"),
        ),
        _spend_rows,
    ),
    (
        Section(
            "payment_outcomes",
            "Payment outcomes",
            "How payments for the sessions ended: captured, declined, failed or voided, with "
            "the processor's reason, and how many captures were above the session's price.",
            (
                Column("status", "status", Kind.text),
                Column("reason", "reason", Kind.text),
                Column("payments", "payments", Kind.integer),
                Column("authorised_minor", "authorised", Kind.money),
                Column("captured_minor", "captured", Kind.money),
                Column("overcharged", "overcharged", Kind.integer),
            ),
            compact=("status", "reason", "payments", "captured_minor"),
            totals=("payments", "authorised_minor", "captured_minor", "overcharged"),
        ),
        _select(
            "SELECT status, COALESCE(failure_reason, '') AS reason, COUNT(*) AS payments, "
            "COALESCE(SUM(authorised_minor), 0) AS authorised_minor, "
            "COALESCE(SUM(captured_minor), 0) AS captured_minor, "
            "COUNT(*) FILTER (WHERE discrepancy_minor > 0) AS overcharged "
            "FROM p GROUP BY ALL ORDER BY payments DESC, status, reason"
        ),
    ),
    (
        Section(
            "trial_balance",
            "Trial balance",
            "Every posting of the whole ledger in this currency, per account (not filtered by "
            "date or station): the books balance when debits equal credits.",
            (
                Column("account", "account", Kind.text),
                Column("debit_minor", "debit", Kind.money),
                Column("credit_minor", "credit", Kind.money),
                Column("balance_minor", "balance", Kind.money),
            ),
            totals=("debit_minor", "credit_minor", "balance_minor"),
        ),
        _trial_balance_rows,
    ),
)

SECTION_NAMES = tuple(section.name for section, _ in _SECTIONS)
