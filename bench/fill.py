"""Read models filled at scale in SQL, for the query and API benchmarks: N payments (and one
refund per REFUND_EVERY payments) in a fresh PostgreSQL schema, and N sessions with their
payments, line items, refunds and postings in a DuckDB analytics file.

Rows are generated inside the database (generate_series / range): a million payments in
about a minute, where building them through the ledger would take an hour. The tables are
the read models' own (their DDL and indexes), so the queries run as in production.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from domain.vocabulary import RefundStatus
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.postgres import PostgresDatabase
from projections.payment_history import PaymentHistory, fill_summary_texts
from projections.refund_status import RefundStatusView

CHUNK = 100_000
REFUND_EVERY = 20
REFUND_STATUSES = [status.value for status in RefundStatus]

_PAYMENTS = """
INSERT INTO payment_history (
    payment_key, payment_id, session_key, session_id, customer_id, station_id, connector_id,
    session_started_at, session_ended_at, energy_wh, energy_kwh, tariff_id, tariff_version,
    line_items, session_currency, session_subtotal_minor, session_vat_minor,
    session_total_minor, method, currency, authorised_minor, captured_minor, released_minor,
    status, reconciliation, discrepancy_minor, created_at, authorised_at, captured_at)
SELECT
    'pk-' || g, 'P-' || g, 'sk-' || g, 'S-' || g,
    'C-' || (g %% %(customers)s), 'ST-' || (g %% %(stations)s), '1',
    t, t + interval '40 minutes', 20000, 20.000, 'T1', 1,
    '[{"component": "energy", "amount_minor": 780, "quantity": "20", "unit": "kWh"},
      {"component": "session_fee", "amount_minor": 50, "quantity": "1", "unit": "session"}]',
    'EUR', 830, 158, 988, 'card', 'EUR', 2000, 988, 1012,
    'captured', 'exact', 0, t, t, t + interval '41 minutes'
FROM (
    SELECT g, timestamptz '2024-01-01 00:00Z' + g * interval '31 seconds' AS t
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
) AS rows
"""

# One refund per REFUND_EVERY payments, its status cycling through every status.
_REFUNDS = """
INSERT INTO refund_status (
    refund_key, refund_id, payment_id, payment_key, session_id, session_key, customer_id,
    station_id, amount_minor, currency, reason, status, requested_at, automatic, closed_at)
SELECT
    'rk-' || g, 'R-' || g, 'P-' || g, 'pk-' || g, 'S-' || g, 'sk-' || g,
    'C-' || (g %% %(customers)s), 'ST-' || (g %% %(stations)s), 500, 'EUR', 'overcharge',
    (%(statuses)s::text[])[1 + (g / %(every)s) %% cardinality(%(statuses)s::text[])],
    t + interval '1 hour', false, t + interval '2 hours'
FROM (
    SELECT g, timestamptz '2024-01-01 00:00Z' + g * interval '31 seconds' AS t
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
    WHERE g %% %(every)s = 0
) AS rows
"""


def fill_postgres(dsn: str, schema: str, rows: int, customers: int, stations: int) -> None:
    """``rows`` payments (and a refund every REFUND_EVERY) in a new ``schema``, analysed."""
    db = PostgresDatabase(dsn, schema=schema)
    PaymentHistory(db).create()
    RefundStatusView(db).create()
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'SET search_path TO "{schema}"')
        for start in range(1, rows + 1, CHUNK):
            stop = min(rows, start + CHUNK - 1)
            bounds = {"customers": customers, "stations": stations, "start": start, "stop": stop}
            connection.execute(_PAYMENTS, bounds)
            connection.execute(
                _REFUNDS, {**bounds, "statuses": REFUND_STATUSES, "every": REFUND_EVERY}
            )
            print(f"  filled {stop:,} payments", file=sys.stderr, flush=True)
        print("  writing the payments' summary texts", file=sys.stderr, flush=True)
        fill_summary_texts(db)
        # The texts' update left a dead row each: compacted, as a projected table would be.
        connection.execute("VACUUM FULL payment_history")
        connection.execute("ANALYZE payment_history")
        connection.execute("ANALYZE refund_status")
    db.close()


# DuckDB: the same shape of traffic, one session a row of range(); a session's wall clock
# is UTC+1 (its tariff's zone), its payment captured, one refund per REFUND_EVERY. Keys
# ({sk}, {pk}, {rk}) are 36-character UUID strings, as the projection writes them (a UUID
# derived from the id): a join on them hashes and compares strings of that length.
_SESSIONS = """
INSERT INTO fact_sessions
SELECT {sk}, 'S-' || g, 'ST-' || (g % {stations}), CAST(1 + g % 4 AS VARCHAR),
       'C-' || (g % {customers}), 'T' || (g % 3), 'tk-' || (g % 3), 1, 'Europe/Berlin',
       t, t + INTERVAL 1 HOUR, 0, t + INTERVAL 40 MINUTE, t + INTERVAL 35 MINUTE, 'local',
       20000, 'EUR', 830, 0.190000, 158, 988, 20000, 20.000, 2100, 300, 0,
       t + INTERVAL 40 MINUTE
FROM (SELECT range AS g, TIMESTAMP '2024-01-01' + range * INTERVAL 31 SECOND AS t
      FROM range({start}, {stop}))
"""
_LINE_ITEMS = """
INSERT INTO fact_line_items
SELECT {sk}, line_no, CASE line_no WHEN 1 THEN 'energy' ELSE 'session_fee' END, NULL,
       CASE line_no WHEN 1 THEN 20.000000 ELSE 1.000000 END,
       CASE line_no WHEN 1 THEN 'kWh' ELSE 'session' END,
       CASE line_no WHEN 1 THEN 0.390000 ELSE 0.500000 END,
       CASE line_no WHEN 1 THEN 780 ELSE 50 END, 'EUR'
FROM range({start}, {stop}) AS r(g), (VALUES (1), (2)) AS l(line_no)
"""
_PAYMENTS_DUCK = """
INSERT INTO fact_payments
SELECT {pk}, 'P-' || g, {sk}, 'S-' || g, 'card', 'EUR', 2000, 988, 1012,
       'captured', NULL, 'exact', 988, 0, t, t, t + INTERVAL 41 MINUTE, NULL, NULL
FROM (SELECT range AS g, TIMESTAMP '2024-01-01' + range * INTERVAL 31 SECOND AS t
      FROM range({start}, {stop}))
"""
_REFUNDS_DUCK = """
INSERT INTO fact_refunds
SELECT {rk}, 'R-' || g, 'P-' || g, {pk}, 'S-' || g, {sk}, 500, 'EUR',
       CASE WHEN g % 3 = 0 THEN 'overcharge' ELSE 'station_fault' END, NULL,
       CASE WHEN g % 2 = 0 THEN 'issued' ELSE 'rejected' END, t + INTERVAL 1 HOUR, NULL,
       NULL, false, NULL, NULL, NULL, CASE WHEN g % 2 = 0 THEN 500 END, NULL, NULL, NULL,
       t + INTERVAL 2 HOUR
FROM (SELECT range AS g, TIMESTAMP '2024-01-01' + range * INTERVAL 31 SECOND AS t
      FROM range({start}, {stop}) WHERE range % {every} = 0)
"""
# Two postings a session (customer debit, revenue credit), balanced.
_POSTINGS = """
INSERT INTO fact_postings
SELECT g, line_no, t, t, 'ChargingSession.Priced', 'session', {sk},
       CASE line_no WHEN 1 THEN 'customer_receivable' ELSE 'charging_revenue' END,
       CASE line_no WHEN 1 THEN 'debit' ELSE 'credit' END, 988, 'EUR'
FROM (SELECT range AS g, TIMESTAMP '2024-01-01' + range * INTERVAL 31 SECOND AS t
      FROM range({start}, {stop})), (VALUES (1), (2)) AS l(line_no)
"""
# One rejected message per REFUND_EVERY sessions: every other one on a known payment (a
# capture beyond its hold), the rest naming no aggregate (a capture without authorisation).
_REJECTED_MESSAGES = """
INSERT INTO fact_rejected_messages
SELECT 'x-' || g, 'payment.captured',
       CASE WHEN g % 2 = 0 THEN 'capture_exceeds_hold' ELSE 'unknown_payment' END, t
FROM (SELECT range AS g, TIMESTAMP '2024-01-01' + range * INTERVAL 31 SECOND AS t
      FROM range({start}, {stop}) WHERE range % {every} = 0)
"""
_REJECTIONS = """
INSERT INTO fact_rejections
SELECT g, 'payment', {pk}, 'payment.captured', 'x-' || g, 'capture_exceeds_hold', t
FROM (SELECT range AS g, TIMESTAMP '2024-01-01' + range * INTERVAL 31 SECOND AS t
      FROM range({start}, {stop}) WHERE range % {every} = 0 AND range % 2 = 0)
"""
# One roaming CDR per REFUND_EVERY sessions from three OCPI parties, one in seven overcharged.
_ROAMING_CDRS = """
INSERT INTO fact_roaming_cdrs (cdr_key, country_code, party_id, cdr_id, session_id,
    location_id, currency, started_at, ended_at, received_at, credit, tariff_id, time_zone,
    energy_kwh, status, billed_minor, repriced_excl_vat_minor, repriced_incl_vat_minor,
    difference_minor, tolerance_minor, reconciliation, reason)
SELECT 'ck-' || g, 'NL', 'P' || (g % 3), 'CDR-' || g, 'OS-' || g, 'L-' || (g % 50), 'EUR',
       t, t + INTERVAL 1 HOUR, t + INTERVAL 2 HOUR, false, 'OT' || (g % 3), 'Europe/Amsterdam',
       20.000, 'reconciled', 988 + over, 830, 988, over, 0,
       CASE WHEN over = 0 THEN 'exact' ELSE 'overcharge' END, 'bench'
FROM (SELECT range AS g, TIMESTAMP '2024-01-01' + range * INTERVAL 31 SECOND AS t,
             CASE WHEN range % 7 = 0 THEN 25 ELSE 0 END AS over
      FROM range({start}, {stop}) WHERE range % {every} = 0)
"""


def _uuid_key(kind: str) -> str:
    """SQL for row ``g``'s key of ``kind``: a UUID string, distinct per kind and row."""
    return f"CAST(CAST(md5('{kind}-' || g) AS UUID) AS VARCHAR)"


def fill_duckdb(path: Path, sessions: int, customers: int, stations: int) -> None:
    """``sessions`` sessions with their facts in a new analytics file at ``path``."""
    db = DuckDatabase(path)
    Analytics(db).create()
    db.execute(
        "INSERT INTO dim_tariff_versions SELECT 'tk-' || t, 1, 'T' || t, 'EUR', 0.39, 0, 50,"
        " 0, 0.19, 'Europe/Berlin', TIMESTAMP '2023-12-01' FROM range(3) AS r(t)"
    )
    for start in range(0, sessions, CHUNK):
        stop = min(sessions, start + CHUNK)
        bounds = {
            "start": start,
            "stop": stop,
            "customers": customers,
            "stations": stations,
            "every": REFUND_EVERY,
            **{kind: _uuid_key(kind) for kind in ("sk", "pk", "rk")},
        }
        with db.transaction():
            for statement in (
                _SESSIONS,
                _LINE_ITEMS,
                _PAYMENTS_DUCK,
                _REFUNDS_DUCK,
                _POSTINGS,
                _REJECTED_MESSAGES,
                _REJECTIONS,
                _ROAMING_CDRS,
            ):
                db.execute(statement.format(**bounds))
        print(f"  filled {stop:,} sessions", file=sys.stderr, flush=True)
    db.execute("CHECKPOINT")
    db.close()
