"""A small run of bench/queries_bench.py: the history and refund queries' plans scan their
indexes in order (planned as for a large table), and every analytics view answers on the
filled data. No time is asserted."""

from __future__ import annotations

import json
from pathlib import Path

from projections.analytics import VIEW_NAMES
from tests.e2e.benches import run_bench


def test_queries_bench_plans_use_the_indexes_and_every_view_answers(
    pg_dsn: str, tmp_path: Path
) -> None:
    figures_path = tmp_path / "figures.json"
    out = run_bench(
        "queries_bench.py",
        pg_dsn,
        *("--rows", "4000", "--sessions", "4000", "--customers", "100"),
        *("--stations", "20", "--queries", "20", "--repeats", "1"),
        *("--plan-as-large", "--json", str(figures_path)),
    )
    figures = json.loads(figures_path.read_text())

    expected = {
        "history by customer": "payment_history_by_customer",
        "history by station": "payment_history_by_station",
        "history by station, next page": "payment_history_by_station",
        "refunds by status": "refund_status_by_status",
        "refunds by customer": "refund_status_by_customer",
    }
    assert set(figures["queries"]) == set(expected)
    for name, index in expected.items():
        plan = "\n".join(figures["queries"][name]["plan"])
        assert f"Index Scan using {index}" in plan, (name, plan)
        assert "Sort" not in plan, (name, plan)
        assert figures["queries"][name]["p99_ms"] > 0
    # The next page starts below the first page's last row, in the index condition.
    assert "ROW(created_at, payment_id) <" in "\n".join(
        figures["queries"]["history by station, next page"]["plan"]
    )
    assert "NOT ON ITS INDEX" not in out

    assert set(figures["views"]) == set(VIEW_NAMES)
    assert figures["sessions_read"]["rows"] == 4000
    for view, measured in figures["views"].items():
        assert measured["rows"] > 0, view
        assert measured["arrow_ms"] > 0, view
        assert measured["read_ms"] is not None, view
    # 4,000 sessions over 20 stations and 100 customers, as filled.
    assert figures["views"]["popular_locations"]["rows"] == 20
    assert figures["views"]["customer_behaviour"]["rows"] == 100
