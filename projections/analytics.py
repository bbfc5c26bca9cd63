"""The analytics read model in DuckDB: fact tables of sessions, line items, payments,
refunds, postings and rejections, and the views analysts start from.

Timestamps are UTC (``*_at``); ``started_at_local`` is the station's wall clock (the
tariff's zone), which is what "peak hours" and "per day" mean to an operator. Money is
BIGINT minor units and never summed across currencies: every view groups by currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from projections.analytics_snapshot import SnapshotPublisher
from projections.databases.port import Database, append, upsert
from projections.entities import Entity, Fact, LedgerEvent
from projections.fold import Rows
from projections.read_model import ReadModel
from projections.roaming_cdrs import ROAMING_CDRS
from projections.tables import Table, columns

FACT_TABLES: tuple[Table, ...] = (
    Table(
        "fact_sessions",
        Entity.SESSION,
        key=("session_key",),
        columns=columns(
            session_key="text",
            session_id="text",
            station_id="text",
            connector_id="text",
            customer_id="text",
            tariff_id="text",
            tariff_key="text",
            tariff_version="int",
            timezone="text",
            started_at="ts",
            started_at_local="local_ts",
            meter_start_wh="bigint",
            stopped_at="ts",
            charging_ended_at="ts",
            stop_reason="text",
            meter_stop_wh="bigint",
            currency="text",
            subtotal_minor="bigint",
            vat_rate="decimal",
            vat_minor="bigint",
            total_minor="bigint",
            energy_wh="bigint",
            energy_kwh="kwh",
            charging_seconds="bigint",
            idle_seconds="bigint",
            billable_idle_seconds="bigint",
            priced_at="ts",
        ),
    ),
    Table(
        "fact_line_items",
        Entity.LINE_ITEM,
        key=("session_key", "line_no"),
        append_only=True,
        columns=columns(
            session_key="text",
            line_no="int",
            component="text",
            window_name="text",
            quantity="decimal",
            unit="text",
            unit_price="decimal",
            amount_minor="bigint",
            currency="text",
        ),
    ),
    Table(
        "fact_payments",
        Entity.PAYMENT,
        key=("payment_key",),
        columns=columns(
            payment_key="text",
            payment_id="text",
            session_key="text",
            session_id="text",
            method="text",
            currency="text",
            authorised_minor="bigint",
            captured_minor="bigint",
            released_minor="bigint",
            status="text",
            failure_reason="text",
            reconciliation="text",
            reconciled_total_minor="bigint",
            discrepancy_minor="bigint",
            created_at="ts",
            authorised_at="ts",
            captured_at="ts",
            failed_at="ts",
            voided_at="ts",
        ),
    ),
    Table(
        "fact_refunds",
        Entity.REFUND,
        key=("refund_key",),
        columns=columns(
            refund_key="text",
            refund_id="text",
            payment_id="text",
            payment_key="text",
            session_id="text",
            session_key="text",
            amount_minor="bigint",
            currency="text",
            reason="text",
            note="text",
            status="text",
            requested_at="ts",
            decided_at="ts",
            decided_by="text",
            automatic="bool",
            decision_note="text",
            rejection_reason="text",
            issued_at="ts",
            issued_minor="bigint",
            processor_ref="text",
            failed_at="ts",
            failure_reason="text",
            closed_at="ts",
        ),
    ),
    Table(
        "fact_postings",
        Entity.POSTING,
        key=("notification_id", "line_no"),
        append_only=True,
        columns=columns(
            notification_id="bigint",
            line_no="int",
            recorded_at="ts",
            occurred_at="ts",
            event_type="text",
            aggregate_kind="text",
            aggregate_key="text",
            account="text",
            direction="text",
            amount_minor="bigint",
            currency="text",
        ),
    ),
    Table(
        "fact_rejections",
        Entity.REJECTION,
        key=("notification_id",),
        append_only=True,
        columns=columns(
            notification_id="bigint",
            aggregate_kind="text",
            aggregate_key="text",
            message_type="text",
            event_id="text",
            reason="text",
            occurred_at="ts",
        ),
    ),
    # Every rejected message, one row each, whether or not it named a known aggregate
    # (fact_rejections holds those that did, with the aggregate).
    Table(
        "fact_rejected_messages",
        Entity.REJECTED_MESSAGE,
        key=("event_id",),
        columns=columns(
            event_id="text",
            message_type="text",
            reason="text",
            recorded_at="ts",
        ),
    ),
    Table(
        "dim_tariff_versions",
        Entity.TARIFF_VERSION,
        key=("tariff_key", "tariff_version"),
        columns=columns(
            tariff_key="text",
            tariff_version="int",
            tariff_id="text",
            currency="text",
            price_per_kwh="decimal",
            price_per_minute="decimal",
            session_fee_minor="bigint",
            idle_fee_per_minute="decimal",
            vat_rate="decimal",
            timezone="text",
            published_at="ts",
        ),
    ),
    replace(ROAMING_CDRS, name="fact_roaming_cdrs"),
)


def divided(numerator: str, denominator: str, places: int, sql_type: str) -> str:
    """SQL for ``numerator / denominator`` rounded half up (away from zero) to ``places``
    decimals, in integer arithmetic: DuckDB divides even DECIMALs as DOUBLE, which is not
    exact enough for money. Both operands are integers, the denominator never negative;
    NULL when it is zero."""
    divisor = f"NULLIF({denominator}, 0)"
    scaled = f"abs({numerator}) * {10**places}"
    rounded = f"sign({numerator}) * ((2 * {scaled} + {divisor}) // (2 * {divisor}))"
    if places:
        rounded = f"{rounded} * 0.{'0' * (places - 1)}1"
    return f"CAST({rounded} AS {sql_type})"


def utilisation_ctes(sessions: str) -> str:
    """Common table expressions ending in ``utilisation``: per station, occupied connector
    time over the time observed in ``sessions`` (a relation shaped as fact_sessions), and a
    band against the fleet average. Shared by the view and the filtered report."""
    return f"""
        observed AS (
            SELECT date_diff('second', MIN(started_at), MAX(stopped_at)) AS span_seconds
            FROM {sessions} WHERE stopped_at IS NOT NULL),
        per_station AS (
            SELECT station_id, COUNT(DISTINCT connector_id) AS connectors,
                   COUNT(*) AS sessions,
                   SUM(date_diff('second', started_at, stopped_at)) AS occupied_seconds,
                   SUM(charging_seconds) AS charging_seconds,
                   SUM(idle_seconds) AS idle_seconds
            FROM {sessions} WHERE stopped_at IS NOT NULL GROUP BY station_id),
        rated AS (
            SELECT p.*, {
        divided("p.occupied_seconds", "p.connectors * o.span_seconds", 4, "DECIMAL(9,4)")
    } AS utilisation
            FROM per_station p, observed o),
        scaled AS (
            -- In ten-thousandths, to compare with the fleet average exactly.
            SELECT *, CAST(utilisation * 10000 AS BIGINT) AS utilisation_e4,
                   COUNT(utilisation) OVER () AS rated_stations,
                   SUM(CAST(utilisation * 10000 AS BIGINT)) OVER () AS fleet_e4
            FROM rated),
        utilisation AS (
            SELECT station_id, connectors, sessions,
                   {divided("occupied_seconds", "3600", 2, "DECIMAL(12,2)")} AS occupied_hours,
                   {divided("charging_seconds", "3600", 2, "DECIMAL(12,2)")} AS charging_hours,
                   {divided("idle_seconds", "3600", 2, "DECIMAL(12,2)")} AS idle_hours,
                   utilisation,
                   {divided("utilisation_e4 * rated_stations", "fleet_e4", 2, "DECIMAL(9,2)")}
                       AS vs_fleet_average,
                   CASE WHEN 2 * utilisation_e4 * rated_stations < fleet_e4 THEN 'under-used'
                        WHEN 2 * utilisation_e4 * rated_stations > 3 * fleet_e4 THEN 'over-used'
                        ELSE 'normal' END AS band
            FROM scaled)"""


# No view divides with ``/`` (DOUBLE in DuckDB): money stays integer minor units or DECIMAL.
_VIEWS: dict[str, str] = {
    # Each session's identity and money with the payment made for it and what was refunded
    # (issued) on it: the money columns only, as the whole session row is in fact_sessions
    # (carrying its 27 columns through two joins of every session cost half as much CPU
    # again). Joined on the upstream ids, which name the same rows as the keys (a key is a
    # UUID derived from its id, both written together) and are returned anyway: the keys,
    # 36 characters each, are then neither read nor hashed.
    "session_money": """
        SELECT s.session_id, s.station_id, s.customer_id, s.tariff_id, s.tariff_version,
               s.started_at_local, s.currency, s.energy_kwh, s.subtotal_minor, s.vat_minor,
               s.total_minor, p.payment_id, p.status AS payment_status, p.captured_minor,
               COALESCE(r.refunded_minor, 0) AS refunded_minor
        FROM fact_sessions s
        LEFT JOIN fact_payments p ON p.session_id = s.session_id
        LEFT JOIN (SELECT payment_id, SUM(issued_minor) AS refunded_minor FROM fact_refunds
                   WHERE status = 'issued' GROUP BY payment_id) r
               ON r.payment_id = p.payment_id""",
    "revenue_by_station_day": """
        SELECT station_id, CAST(started_at_local AS DATE) AS local_day, currency,
               COUNT(*) AS sessions, SUM(energy_kwh) AS energy_kwh,
               SUM(subtotal_minor) AS net_revenue_minor, SUM(vat_minor) AS vat_minor,
               SUM(total_minor) AS gross_revenue_minor
        FROM fact_sessions WHERE total_minor IS NOT NULL
        GROUP BY ALL ORDER BY local_day, station_id, currency""",
    # About a row per session (a station rarely starts two in one hour), so in no order:
    # sorting them cost as much as grouping them; a query over it says what order it wants.
    "revenue_by_station_hour": """
        SELECT station_id, date_trunc('hour', started_at_local) AS local_hour, currency,
               COUNT(*) AS sessions, SUM(energy_kwh) AS energy_kwh,
               SUM(subtotal_minor) AS net_revenue_minor,
               SUM(total_minor) AS gross_revenue_minor
        FROM fact_sessions WHERE total_minor IS NOT NULL GROUP BY ALL""",
    # When stations are busiest: sessions started per weekday (1 = Monday) and local hour.
    "peak_usage": """
        SELECT isodow(started_at_local) AS weekday, hour(started_at_local) AS local_hour,
               COUNT(*) AS sessions, SUM(energy_kwh) AS energy_kwh,
               rank() OVER (ORDER BY COUNT(*) DESC) AS busiest_rank
        FROM fact_sessions WHERE started_at_local IS NOT NULL
        GROUP BY ALL ORDER BY weekday, local_hour""",
    # Occupied connector time over the time observed; bands against the fleet average.
    "station_utilisation": f"""
        WITH {utilisation_ctes("fact_sessions")}
        SELECT * FROM utilisation ORDER BY utilisation DESC, station_id""",
    "tariffs": """
        SELECT v.tariff_key, first.tariff_id, v.tariff_version, v.currency, v.price_per_kwh,
               v.price_per_minute, v.session_fee_minor, v.idle_fee_per_minute, v.vat_rate,
               v.timezone, v.published_at
        FROM dim_tariff_versions v
        JOIN (SELECT tariff_key, MAX(tariff_id) AS tariff_id FROM dim_tariff_versions
              GROUP BY tariff_key) first ON first.tariff_key = v.tariff_key""",
    # What a kWh really earns on each tariff version, fees and time charges included.
    "pricing_by_tariff": f"""
        SELECT tariff_id, tariff_version, currency, COUNT(*) AS sessions,
               SUM(energy_kwh) AS energy_kwh, SUM(subtotal_minor) AS net_revenue_minor,
               {divided("SUM(subtotal_minor) * 1000", "SUM(energy_wh)", 2, "DECIMAL(18,2)")}
                   AS net_minor_per_kwh
        FROM fact_sessions WHERE total_minor IS NOT NULL
        GROUP BY ALL ORDER BY tariff_id, tariff_version, currency""",
    "pricing_by_component": """
        SELECT component, COALESCE(window_name, '') AS window_name, unit, currency,
               SUM(quantity) AS quantity, SUM(amount_minor) AS amount_minor
        FROM fact_line_items GROUP BY ALL ORDER BY component, window_name, currency""",
    "customer_behaviour": f"""
        SELECT customer_id, currency, COUNT(*) AS sessions,
               COUNT(DISTINCT station_id) AS stations, SUM(energy_kwh) AS energy_kwh,
               SUM(total_minor) AS spend_minor,
               {divided("SUM(total_minor)", "COUNT(*)", 0, "BIGINT")} AS average_spend_minor,
               MIN(started_at) AS first_session_at, MAX(started_at) AS last_session_at,
               COUNT(*) > 1 AS repeat_customer
        FROM fact_sessions WHERE total_minor IS NOT NULL
        GROUP BY ALL ORDER BY spend_minor DESC, customer_id""",
    "repeat_customers": f"""
        SELECT COUNT(*) AS customers,
               COUNT(*) FILTER (WHERE sessions > 1) AS repeat_customers,
               {divided("COUNT(*) FILTER (WHERE sessions > 1)", "COUNT(*)", 4, "DECIMAL(9,4)")}
                   AS repeat_share
        FROM (SELECT customer_id, COUNT(*) AS sessions FROM fact_sessions
              GROUP BY customer_id)""",
    # Refunds traced to the station of their session; a reason seen twice is recurring.
    "refunds_by_station_reason": f"""
        WITH traced AS (
            SELECT r.*, s.station_id
            FROM fact_refunds r
            LEFT JOIN fact_payments p ON p.payment_key = r.payment_key
            LEFT JOIN fact_sessions s
                   ON s.session_key = COALESCE(r.session_key, p.session_key)),
        station_sessions AS (
            SELECT station_id, COUNT(*) AS sessions FROM fact_sessions GROUP BY station_id)
        SELECT t.station_id, t.reason, COUNT(*) AS refunds,
               COUNT(*) FILTER (WHERE t.status = 'issued') AS issued,
               COUNT(*) FILTER (WHERE t.status = 'rejected') AS rejected,
               SUM(t.amount_minor) AS requested_minor,
               COALESCE(SUM(t.issued_minor), 0) AS issued_minor,
               {divided("COUNT(*)", "MAX(ss.sessions)", 4, "DECIMAL(9,4)")}
                   AS refunds_per_session,
               COUNT(*) > 1 AS recurring
        FROM traced t LEFT JOIN station_sessions ss ON ss.station_id = t.station_id
        GROUP BY t.station_id, t.reason ORDER BY refunds DESC, t.station_id, t.reason""",
    "popular_locations": """
        SELECT station_id, COUNT(*) AS sessions, COUNT(DISTINCT customer_id) AS customers,
               SUM(energy_kwh) AS energy_kwh,
               rank() OVER (ORDER BY COUNT(*) DESC) AS popularity_rank
        FROM fact_sessions GROUP BY station_id ORDER BY popularity_rank, station_id""",
    # Every rejected message with what is known of it: the aggregate it was recorded on,
    # when it occurred upstream, and the station and customer of its session.
    "rejections": """
        SELECT m.event_id, m.message_type, m.reason, m.recorded_at, r.occurred_at,
               r.aggregate_kind, r.aggregate_key, s.station_id, s.customer_id
        FROM fact_rejected_messages m
        LEFT JOIN fact_rejections r ON r.event_id = m.event_id
        LEFT JOIN fact_refunds f
               ON r.aggregate_kind = 'refund' AND f.refund_key = r.aggregate_key
        LEFT JOIN fact_payments p ON p.payment_key = CASE r.aggregate_kind
               WHEN 'payment' THEN r.aggregate_key WHEN 'refund' THEN f.payment_key END
        LEFT JOIN fact_sessions s ON s.session_key = CASE r.aggregate_kind
               WHEN 'session' THEN r.aggregate_key
               ELSE COALESCE(f.session_key, p.session_key) END
        ORDER BY m.recorded_at, m.event_id""",
    "payment_outcomes": """
        SELECT status, COALESCE(failure_reason, '') AS reason, COUNT(*) AS payments
        FROM fact_payments GROUP BY ALL ORDER BY payments DESC, status, reason""",
    # Per OCPI party and currency: CDRs received, what they billed and what re-pricing gives,
    # and how often and by how much they disagree (reversed and credit CDRs counted apart).
    "roaming_partners": """
        SELECT country_code, party_id, currency,
               COUNT(*) FILTER (WHERE NOT credit) AS cdrs,
               COUNT(*) FILTER (WHERE credit) AS credit_cdrs,
               COUNT(*) FILTER (WHERE status = 'reversed') AS reversed,
               COUNT(*) FILTER (WHERE status = 'rejected') AS rejected,
               COALESCE(SUM(billed_minor) FILTER (WHERE status = 'reconciled'), 0)
                   AS billed_minor,
               COALESCE(SUM(repriced_incl_vat_minor) FILTER (WHERE status = 'reconciled'), 0)
                   AS repriced_incl_vat_minor,
               COUNT(*) FILTER (WHERE reconciliation = 'overcharge' AND status = 'reconciled')
                   AS overcharges,
               COUNT(*) FILTER (WHERE reconciliation = 'undercharge' AND status = 'reconciled')
                   AS undercharges,
               COALESCE(SUM(difference_minor) FILTER (
                   WHERE reconciliation <> 'exact' AND status = 'reconciled'), 0)
                   AS disagreement_minor
        FROM fact_roaming_cdrs GROUP BY ALL ORDER BY country_code, party_id, currency""",
    "trial_balance": """
        SELECT currency, account,
               COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'debit'), 0) AS debit_minor,
               COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'credit'), 0)
                   AS credit_minor,
               COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'debit'), 0)
                 - COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'credit'), 0)
                 AS balance_minor
        FROM fact_postings GROUP BY ALL ORDER BY currency, account""",
    "trial_balance_check": """
        SELECT currency,
               COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'debit'), 0) AS debits_minor,
               COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'credit'), 0)
                   AS credits_minor,
               COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'debit'), 0)
                 = COALESCE(SUM(amount_minor) FILTER (WHERE direction = 'credit'), 0)
                 AS balanced
        FROM fact_postings GROUP BY currency ORDER BY currency""",
}

VIEW_NAMES = tuple(_VIEWS)


class Analytics(ReadModel):
    """Fact tables and analysts' views in DuckDB."""

    name = "analytics"
    entities = tuple(table.entity for table in FACT_TABLES)
    ddl = (
        *(table.ddl() for table in FACT_TABLES),
        *(f"CREATE OR REPLACE VIEW {view} AS {body}" for view, body in _VIEWS.items()),
    )
    tables = {table.name: table.order for table in FACT_TABLES}

    def __init__(self, db: Database, publisher: SnapshotPublisher | None = None) -> None:
        super().__init__(db)
        # The live projector's model publishes the readers' copy; rebuilds do not.
        self.publisher = publisher

    def create(self) -> None:
        super().create()
        if self.publisher is not None:
            self.publisher.changed()

    def apply(self, batch: Sequence[LedgerEvent], facts: Sequence[Fact] | None = None) -> None:
        super().apply(batch, facts)
        if self.publisher is not None and batch:
            self.publisher.changed()

    def after_batch(self, caught_up: bool) -> None:
        if self.publisher is not None:
            self.publisher.after_batch(caught_up)

    def finish(self) -> None:
        # The last batches' copy may have been held back to keep copying cheap; readers
        # must see everything a finished `project --until-idle` or a stopped `run` wrote.
        if self.publisher is not None:
            self.publisher.publish_pending()

    def write(self, rows: dict[Entity, Rows]) -> None:
        for table in FACT_TABLES:
            # Every row with all the table's columns, None where its batch's facts said
            # nothing, so a table takes one statement per batch instead of one per set of
            # columns (DuckDB spends most of a small upsert preparing it).
            write = append if table.append_only else upsert
            write(self.db, table.name, table.key, rows[table.entity], table.value_columns)

    def drop_statements(self) -> Sequence[str]:
        return [
            *(f"DROP VIEW IF EXISTS {view}" for view in reversed(_VIEWS)),
            *(f"DROP TABLE IF EXISTS {table}" for table in self.tables),
        ]
