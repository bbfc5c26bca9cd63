"""Where a benchmarked server's wall time goes, from Linux's own accounts: for each process,
the time its threads ran on a CPU (/proc/PID/stat, exited threads included) and the time
they were ready to run but waited for one (/proc/PID/task/*/schedstat), and how many client
connections each worker holds (its sockets in /proc/net/tcp). On a machine whose cores are
all busy, a request's latency is mostly its worker's (and its PostgreSQL backend's) wait for
a core, which no profile of the code shows.

Linux only; elsewhere (or for a PostgreSQL on another host) the processes are not found and
the report says so.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_ESTABLISHED = "01"


@dataclass(frozen=True)
class Times:
    """A process's run time and run-queue wait, in seconds, since it started."""

    running: float
    waiting: float

    def __sub__(self, other: Times) -> Times:
        return Times(self.running - other.running, self.waiting - other.waiting)


def times(pid: int) -> Times | None:
    """Every thread's: /proc/PID/schedstat is the main thread's alone (a worker's thread pool
    and a spinning thread were missing). Run time comes from /proc/PID/stat, which keeps the
    time of threads that have exited; the wait is summed over the threads alive now."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        running = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        waiting = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                waiting += int((task / "schedstat").read_text().split()[1])
            except FileNotFoundError:
                continue  # a thread that has just exited
    except (OSError, ValueError, IndexError):
        return None
    return Times(running, waiting / 1e9)


def children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return sorted(found)


def _tcp_table() -> dict[str, tuple[int, int]]:
    """Established TCP connections by socket inode: (local port, remote port)."""
    table: dict[str, tuple[int, int]] = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == _ESTABLISHED:
                local, remote = (int(end.rsplit(":", 1)[1], 16) for end in fields[1:3])
                table[fields[9]] = (local, remote)
    return table


def connections(pid: int) -> list[tuple[int, int]]:
    """A process's established TCP connections: (local port, remote port)."""
    table = _tcp_table()
    found = []
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            ports = table.get(target[8:-1])
            if ports is not None:
                found.append(ports)
    return found


def clients_per_worker(workers: list[int], server_port: int) -> list[int]:
    """How many client connections each worker holds (accepted on ``server_port``)."""
    return [
        sum(1 for local, _ in connections(worker) if local == server_port) for worker in workers
    ]


def backend_pids(postgres_ports: list[int], client_ports: set[int]) -> list[int]:
    """PostgreSQL's server processes on this machine for connections from ``client_ports``:
    whichever process holds the other end (a PostgreSQL elsewhere: none)."""
    wanted = {(port, client) for port in postgres_ports for client in client_ports}
    table = {inode: ports for inode, ports in _tcp_table().items() if ports in wanted}
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in table:
                found.append(int(fd_dir.parent.name))
                break
    return sorted(found)


def _started(pid: int) -> float | None:
    """When a process started, in seconds since boot."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


class Watch:
    """Run and wait times of a server's workers and their PostgreSQL backends over a run.

    The backends are picked again at every sample (each second, and at the end), so the
    connections a pool opens during the run are counted too: from their start when they
    started during it, as a backend is forked for its connection.
    """

    def __init__(self, server: int, server_port: int, postgres_port: int) -> None:
        # One worker is the server process itself; several are its children.
        self.workers = [pid for pid in children(server) if connections(pid)] or [server]
        self.server_port = server_port
        self.postgres_port = postgres_port
        self.backends: list[int] = []
        self._client_ports: set[int] | None = None
        self.clients: list[int] = []
        # Counted once the load generator is connected, a moment into the run.
        self._counter = threading.Timer(
            1.0, lambda: self.clients.extend(clients_per_worker(self.workers, server_port))
        )
        self._counter.start()
        self._began = _uptime()
        self._first: dict[int, Times] = {}
        self._last: dict[int, Times] = {}
        self._lock = threading.Lock()
        self._sample()
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._every_second, daemon=True)
        self._sampler.start()

    def _every_second(self) -> None:
        while not self._done.wait(1.0):
            self._sample()

    def _sample(self) -> None:
        client_ports = {
            local
            for worker in self.workers
            for local, remote in connections(worker)
            if remote == self.postgres_port
        }
        with self._lock:
            if client_ports != self._client_ports:  # a connection opened or closed
                self._client_ports = client_ports
                picked = backend_pids([self.postgres_port], client_ports)
                self.backends = sorted({*self.backends, *picked})
            for pid in [*self.workers, *self.backends]:
                value = times(pid)
                if value is None:
                    continue  # gone: its last sample stands
                if pid not in self._first:
                    started = _started(pid)
                    new = bool(self._last) and started is not None and started >= self._began
                    self._first[pid] = Times(0.0, 0.0) if new else value
                self._last[pid] = value

    def report(self, seconds: float, requests: int) -> str:
        self._done.set()
        self._sampler.join()
        self._sample()
        self._counter.cancel()
        spent = {pid: self._last[pid] - self._first[pid] for pid in self._last}

        def share(pids: list[int], label: str) -> str:
            known = [spent[pid] for pid in pids if pid in spent]
            if not known:
                return f"{label}: not on this machine"
            running = sum(t.running for t in known)
            waiting = sum(t.waiting for t in known)
            return (
                f"{label} x{len(known)}: {running / requests * 1000:.2f} ms on a CPU and "
                f"{waiting / requests * 1000:.2f} ms waiting for one per request"
            )

        each = [
            f"{spent[pid].running / seconds:.0%} running, {spent[pid].waiting / seconds:.0%} ready"
            for pid in self.workers
            if pid in spent
        ]
        return (
            f"connections per worker {'/'.join(map(str, self.clients)) or '?'}; "
            f"{share(self.workers, 'workers')} (each: {'; '.join(each)}); "
            f"{share(self.backends, 'PostgreSQL backends')}"
        )
