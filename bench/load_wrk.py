"""Closed-loop HTTP load with wrk (Debian's `wrk` package, `scripts/bench-tools` installs
it): C keep-alive connections, each sending its next request as soon as the previous one
is answered, for D seconds; a Lua script picks the path of each request and reports
wrk's own latency percentiles as JSON.

wrk is a small C program on one event loop: it leaves the server the cores that a Python
load generator would take from it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
local kind = "%(kind)s"
local customers, stations = %(customers)d, %(stations)d
local links = { %(links)s }
wrk.headers["Authorization"] = "Bearer %(key)s"

function init(args)
  math.randomseed(%(seed)d)
end

function request()
  local path
  if kind == "customer" then
    path = "/v1/customers/C-" .. math.random(0, customers - 1) .. "/payments?limit=20"
  elseif kind == "station" then
    path = "/v1/stations/ST-" .. math.random(0, stations - 1) .. "/payments?limit=20"
  else
    path = links[math.random(#links)]
  end
  return wrk.format(nil, path)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d,' ..
    ' "non_2xx": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
"""


@dataclass(frozen=True)
class Figures:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    failed: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: run scripts/bench-tools (apt-get install wrk)")
    return found


def run_wrk(
    url: str,
    key: str,
    *,
    kind: str,
    connections: int,
    seconds: float,
    customers: int,
    stations: int,
    links: list[str],
    work: Path,
    seed: int = 1,
) -> Figures:
    """One closed-loop run on one kind of page: customer, station or next (``links``)."""
    script = work / f"wrk-{kind}.lua"
    script.write_text(
        _SCRIPT
        % {
            "kind": kind,
            "customers": customers,
            "stations": stations,
            "links": ", ".join(json.dumps(link) for link in links),
            "key": key,
            "seed": seed,
        }
    )
    done = subprocess.run(
        [
            wrk_path(),
            "--threads",
            "1",
            "--connections",
            str(connections),
            "--duration",
            f"{seconds:g}s",
            "--timeout",
            "10s",
            "--script",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Figures(
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        failed=result["non_2xx"] + result["socket_errors"],
    )
