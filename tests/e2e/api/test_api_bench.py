"""A small run of bench/api_bench.py (wrk closed loop, httpx open loop) against a real
server, so the API benchmark keeps working. No time is asserted."""

from __future__ import annotations

import re

from tests.e2e.benches import run_bench


def test_api_bench_runs_both_load_models_on_a_few_thousand_payments(pg_dsn: str) -> None:
    out = run_bench(
        "api_bench.py",
        pg_dsn,
        *("--rows", "3000", "--customers", "100", "--stations", "20"),
        *("--clients", "4", "--duration", "2", "--repeats", "1", "--workers", "1"),
        *("--open-rate", "5"),
    )
    assert "closed loop (wrk, 1 thread): 4 connections" in out
    assert "open loop (httpx): 4 clients each sending 5 request/s" in out
    for endpoint in ("customer page", "station page", "next page"):
        line = next(line for line in out.splitlines() if line.startswith(endpoint))
        requests = int(line.split()[2])
        assert requests > 0, line
    # wrk's runs count non-2xx answers and socket errors; the open loop has a row for them.
    assert "failed 0" in out and not re.search(r"failed [1-9]", out)
    assert not any(line.startswith("failed") for line in out.splitlines())
    assert out.count("server side (/metrics of one worker,") == 2
    assert "arithmetic: the server spends" in out
    # Where the time went: each worker's clients, and run time against run-queue wait.
    watched = [line for line in out.splitlines() if "connections per worker 4;" in line]
    assert len(watched) == 3, out
    assert all("workers x1:" in line and "waiting for one per request" in line for line in watched)
    # The load generator's own CPU per request (it shares the cores): some, for every run.
    wrk_ms = [float(re.findall(r"; wrk ([0-9.]+) ms$", line)[0]) for line in watched]
    assert all(ms > 0 for ms in wrk_ms), watched
